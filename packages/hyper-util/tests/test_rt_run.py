"""``hyper_util.rt.run`` and ``loop_backend``: ``loop="auto"`` takes uvloop when it is installed."""

from __future__ import annotations

import asyncio
import importlib.util
from importlib.machinery import ModuleSpec

import pytest
import sniffio

from hyper_util.cli import build_parser, main
from hyper_util.rt import LOOPS, loop_backend, run


async def running_loop() -> str:
    if sniffio.current_async_library() == "trio":
        return "trio"
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "uvloop" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_auto_runs_on_uvloop_when_installed() -> None:
    # uvloop is a test dependency, so "auto" must pick it here.
    assert run(running_loop) == "uvloop"
    assert loop_backend() == ("asyncio", {"use_uvloop": True})


@pytest.mark.parametrize(
    ("loop", "expected"), [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("trio", "trio")]
)
def test_each_explicit_choice_is_honoured(loop: str, expected: str) -> None:
    assert run(running_loop, loop=loop) == expected


def test_run_passes_arguments_and_returns_the_result() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    assert run(add, 2, 3, loop="asyncio") == 5


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    without_uvloop(monkeypatch)
    assert loop_backend("auto") == ("asyncio", {})
    assert run(running_loop) == "asyncio"


def test_uvloop_insists(monkeypatch: pytest.MonkeyPatch) -> None:
    without_uvloop(monkeypatch)
    with pytest.raises(ValueError, match="uvloop is not installed"):
        loop_backend("uvloop")


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event loop 'tokio'"):
        loop_backend("tokio")
    assert LOOPS == ("auto", "asyncio", "uvloop", "trio")


def test_command_line_defaults_to_auto() -> None:
    assert build_parser().parse_args(["serve"]).backend == "auto"
    assert build_parser().parse_args(["get", "http://x/"]).backend == "auto"


def test_command_line_backend_uvloop_without_uvloop_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_uvloop(monkeypatch)
    assert main(["get", "--backend", "uvloop", "http://127.0.0.1:9/"]) == 2
    assert "uvloop is not installed" in capsys.readouterr().err
