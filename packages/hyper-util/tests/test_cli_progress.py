"""The progress bar of ``get -o``, driven by a fake clock."""

from __future__ import annotations

import io

import pytest

from hyper_util.cli._progress import REDRAW_INTERVAL, Progress, format_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**4, "3.0 TiB"),
        (2 * 1024**5, "2048.0 TiB"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


def test_known_total_bar_percentage_and_rate() -> None:
    clock = Clock()
    out = io.StringIO()
    progress = Progress(out, 2048, clock=clock, width=80)
    clock.now += 1.0
    progress.update(1024)
    line = out.getvalue()
    assert line.startswith("\r[")
    assert "1.0 KiB / 2.0 KiB" in line
    assert " 50%" in line
    assert "1.0 KiB/s" in line
    assert "#" * 10 + "." * 10 in line
    assert len(line) == 80  # "\r" + padded to width - 1


def test_unknown_total_has_no_bar() -> None:
    clock = Clock()
    out = io.StringIO()
    progress = Progress(out, None, clock=clock, width=80)
    clock.now += 2.0
    progress.update(4096)
    assert progress.render(clock.now) == "4.0 KiB  2.0 KiB/s"


def test_redraws_are_throttled_and_finish_draws_once() -> None:
    clock = Clock()
    out = io.StringIO()
    progress = Progress(out, 1000, clock=clock, width=80)
    for _ in range(50):
        progress.update(10)  # no time passes: only the first update draws
    assert out.getvalue().count("\r") == 1
    clock.now += 2 * REDRAW_INTERVAL
    progress.update(10)
    assert out.getvalue().count("\r") == 2
    progress.finish()
    progress.finish()
    text = out.getvalue()
    assert text.count("\r") == 3
    assert text.endswith("\n")
    assert "510 B / 1000 B" in text


def test_narrow_terminal_drops_the_bar() -> None:
    clock = Clock()
    progress = Progress(io.StringIO(), 1000, clock=clock, width=30)
    progress.received = 500
    assert not progress.render(clock.now + 1).startswith("[")


def test_zero_length_total_is_complete() -> None:
    clock = Clock()
    progress = Progress(io.StringIO(), 0, clock=clock, width=80)
    assert "100%" in progress.render(clock.now)
