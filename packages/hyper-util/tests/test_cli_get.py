"""``get`` in process: :func:`run_get` against the ``serve`` server, on asyncio and trio.

The command's code runs in the test's event loop with in-memory stdout and
stderr, against the serve command's server on a loopback port: the same
paths as the subprocess tests, on both backends, plus the pieces that are
awkward from outside (the progress bar on a pretend terminal, the
``--max-time`` exit).
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from hyper_core.body import Full, Incoming, StreamBody
from hyper_core.http import Request, Response
from hyper_core.service import Service
from hyper_util.cli import build_parser, main
from hyper_util.cli._echo import echo
from hyper_util.cli._get import Exit, GetOptions, UsageError, prepare, run_get
from hyper_util.cli._serve import ServeOptions, run_serve
from hyper_util.cli._static import StaticFiles

pytestmark = pytest.mark.anyio

BIG = bytes(range(251)) * 2000  # 502,000 bytes


@pytest.fixture(params=[False, True], ids=["http1", "http2"])
def http2(request: pytest.FixtureRequest) -> bool:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"Hello, files!\n")
    (root / "big.bin").write_bytes(BIG)
    return root


@asynccontextmanager
async def running(service: Service[Any]) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            partial(run_serve, service, ServeOptions(port=0), out=io.StringIO(), signals=False)
        )
        yield address
        tg.cancel_scope.cancel()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def run(options: GetOptions, stderr: io.StringIO | None = None) -> tuple[int, bytes, str]:
    out = io.BytesIO()
    err = stderr if stderr is not None else io.StringIO()
    status = await run_get(options, stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


async def test_fetch_to_stdout(site: Path, http2: bool) -> None:
    async with running(StaticFiles(site)) as base:
        status, out, err = await run(GetOptions(base + "/big.bin", http2=http2))
    assert (status, err) == (Exit.OK, "")
    assert out == BIG


async def test_output_file_and_progress_on_a_terminal(
    site: Path, http2: bool, tmp_path: Path
) -> None:
    target = tmp_path / "out.bin"
    terminal = FakeTerminal()
    async with running(StaticFiles(site)) as base:
        status, out, err = await run(
            GetOptions(base + "/big.bin", output=str(target), http2=http2), terminal
        )
    assert status == Exit.OK
    assert out == b""
    assert target.read_bytes() == BIG
    assert "\r" in err
    assert "490.2 KiB / 490.2 KiB" in err
    assert "100%" in err
    assert err.endswith("\n")


async def test_no_progress_when_asked(site: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    async with running(StaticFiles(site)) as base:
        status, _, err = await run(
            GetOptions(base + "/big.bin", output=str(target), progress=False), FakeTerminal()
        )
    assert (status, err) == (Exit.OK, "")
    assert target.read_bytes() == BIG


async def test_verbose(site: Path, http2: bool) -> None:
    async with running(StaticFiles(site)) as base:
        status, out, err = await run(
            GetOptions(base + "/hello.txt", verbose=True, http2=http2, headers=["X-A: b"])
        )
    assert status == Exit.OK
    assert out == b"Hello, files!\n"
    lines = err.splitlines()
    version = "HTTP/2" if http2 else "HTTP/1.1"
    assert lines[0] == f"> GET /hello.txt {version}"
    assert "> X-A: b" in lines
    assert "> user-agent: hyper_util/0.1.0" in lines
    assert ("< HTTP/2 200" if http2 else "< HTTP/1.1 200 OK") in lines
    assert "< content-type: text/plain" in lines


async def test_post_data_to_echo(http2: bool, tmp_path: Path) -> None:
    upload = tmp_path / "up.bin"
    upload.write_bytes(BIG)
    async with running(echo) as base:
        text = await run(GetOptions(base + "/t", data="x=1", http2=http2))
        filed = await run(GetOptions(base + "/f", data=f"@{upload}", method="put", http2=http2))
    status, out, _ = text
    assert status == Exit.OK
    assert out.startswith(b"POST /t ")
    assert out.endswith(b"\r\n\r\nx=1")
    status, out, _ = filed
    assert status == Exit.OK
    assert out.startswith(b"PUT /f ")
    assert b"content-length: 502000" in out
    assert out.endswith(BIG)


async def test_http_error_status(site: Path, http2: bool, tmp_path: Path) -> None:
    target = tmp_path / "err.txt"
    async with running(StaticFiles(site)) as base:
        to_stdout = await run(GetOptions(base + "/missing", http2=http2))
        to_file = await run(GetOptions(base + "/missing", http2=http2, output=str(target)))
    assert to_stdout[:2] == (Exit.HTTP_ERROR, b"404 Not Found\n")
    assert to_stdout[2] == ("get: HTTP/2 404\n" if http2 else "get: HTTP/1.1 404 Not Found\n")
    assert to_file[0] == Exit.HTTP_ERROR
    assert target.read_bytes() == b"404 Not Found\n"
    assert "404" in to_file[2]


async def test_redirect_is_not_followed_and_is_success(site: Path) -> None:
    (site / "dir").mkdir()
    async with running(StaticFiles(site)) as base:
        status, out, _ = await run(GetOptions(base + "/dir"))
    assert status == Exit.OK
    assert out.startswith(b"301 Moved Permanently")


async def test_connect_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # now nothing listens there
    status, out, err = await run(GetOptions(f"http://127.0.0.1:{port}/"))
    assert status == Exit.CONNECT
    assert out == b""
    assert f"cannot connect to 127.0.0.1:{port}" in err
    # One line, and the operating system's words (errno 111, ECONNREFUSED)
    # said once, not once by the error and again by its cause.
    assert err.count("\n") == 1
    assert err.count("[Errno 111]") == 1, err


async def test_http1_request_to_an_http2_only_server_says_so() -> None:
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            partial(
                run_serve, echo, ServeOptions(port=0, http="2"), out=io.StringIO(), signals=False
            )
        )
        with anyio.fail_after(10):
            status, out, err = await run(GetOptions(address + "/"))
        tg.cancel_scope.cancel()
    assert status == Exit.TRANSFER
    assert out == b""
    assert err.count("\n") == 1
    assert "the server speaks HTTP/2 only" in err
    assert "not ready" not in err


def test_backend_trio_without_trio_is_one_line_naming_the_extra() -> None:
    # trio made unimportable, as on a machine without it.
    script = (
        "import sys; sys.modules['trio'] = None\n"
        "from hyper_util.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for command in (
        ["get", "--backend", "trio", "http://127.0.0.1:1/"],
        ["serve", "--backend", "trio"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", script, *command], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert "hyper-util[trio]" in done.stderr
        assert "Traceback" not in done.stderr


async def test_max_time() -> None:
    async def slow(request: Request[Incoming]) -> Response[StreamBody]:
        async def forever() -> AsyncIterator[bytes]:
            yield b"first"
            await anyio.sleep_forever()

        return Response(200, body=StreamBody(forever()))

    async with running(slow) as base:
        with anyio.fail_after(10):
            status, out, err = await run(GetOptions(base + "/", max_time=0.3))
    assert status == Exit.TRANSFER
    assert out == b"first"
    assert "--max-time" in err


async def test_response_cut_short() -> None:
    async def liar(request: Request[Incoming]) -> Response[Full]:
        # Claims 100 bytes, sends 5: the connection is aborted mid-body.
        return Response(200, headers={"content-length": "100"}, body=Full(b"short"))

    async with running(liar) as base:
        status, _, err = await run(GetOptions(base + "/"))
    assert status == Exit.TRANSFER
    assert err.startswith("get: ")


async def test_local_file_errors(site: Path, tmp_path: Path) -> None:
    async with running(StaticFiles(site)) as base:
        unreadable = await run(GetOptions(base + "/hello.txt", data=f"@{tmp_path}/missing"))
        unwritable = await run(GetOptions(base + "/hello.txt", output=str(tmp_path / "a" / "b")))
    assert unreadable[0] == Exit.LOCAL_IO
    assert "cannot read" in unreadable[2]
    assert unwritable[0] == Exit.LOCAL_IO
    assert "cannot write" in unwritable[2]


@pytest.mark.parametrize(
    ("url", "headers", "message"),
    [
        ("http://u:p@example.com/", [], "user:password"),
        ("/relative", [], "http://"),
        ("http://example.com/", ["bad"], "Name: value"),
        ("http://example.com/", ["Bad Name: x"], "Bad Name"),
    ],
)
def test_prepare_usage_errors(url: str, headers: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        prepare(GetOptions(url, headers=headers))


def test_prepare_defaults_and_overrides() -> None:
    plain = prepare(GetOptions("http://example.com:8080/x"))
    assert plain.method == "GET"
    assert plain.headers["host"] == "example.com:8080"
    assert plain.headers["accept"] == "*/*"
    posted = prepare(GetOptions("http://example.com/", data="x", headers=["Host: other"]))
    assert posted.method == "POST"
    assert posted.headers.get_all("host") == ["other"]
    h2 = prepare(GetOptions("http://example.com/", http2=True, method="delete"))
    assert h2.method == "DELETE"
    assert "host" not in h2.headers


def test_main_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "ftp://example.com/"]) == Exit.USAGE
    assert "http://" in capsys.readouterr().err


def test_https_without_hyper_tls_is_a_usage_error_that_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # hyper-util does not depend on hyper-tls; None in sys.modules makes the
    # import fail exactly as it does when the package is not installed.
    monkeypatch.setitem(sys.modules, "hyper_tls", None)
    with pytest.raises(UsageError, match="pip install hyper-tls"):
        prepare(GetOptions("https://example.com/"))
    assert main(["get", "https://example.com/"]) == Exit.USAGE
    assert "hyper-tls" in capsys.readouterr().err


def test_parser_rejects_bad_options() -> None:
    parser = build_parser()
    for argv in (["serve", "--port", "70000"], ["serve", "--http", "3"], ["get"], []):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(argv)
        assert exc.value.code == 2
