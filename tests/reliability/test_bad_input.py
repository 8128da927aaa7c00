"""Bad input through every door (CLI, Python API, `%board` in a real kernel): a clear one-line reason, never a
traceback, an exit 3 or a TensorBoard started.

CLI cases run ``cli.main`` in-process (the same code the ``nbboard`` command runs; a few also run as the real
command) because a NUL byte cannot travel through a real argv; the magic runs in a real IPython kernel.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import nbboard
from nbboard import cli
from nbboard.errors import UsageError
from tests.helpers import nbboard_cli, tensorboards_under
from tests.kernel import Kernel
from tests.reliability.figures import record


@dataclass
class Bad:
    """One bad input, as each door takes it; ``says`` must be in the message."""

    name: str
    says: str
    cli: list[str] | None = None
    api: dict[str, object] | None = None
    magic: str | None = None
    real_cli: bool = False  # also run the real `nbboard` command (argv can carry it)


FILE_HINT = "is a file, not a directory; --logdir takes the directory your training writes to"


def cases(tmp: Path) -> list[Bad]:
    afile = tmp / "events.out.tfevents.123.host"
    afile.write_text("x")
    escape_file = tmp / "\x1b[2Jevil\nname"
    escape_file.write_text("x")
    loop = tmp / "loop"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    long_name = str(tmp / ("a" * 300))
    too_long = str(tmp / "/".join(["é" * 100] * 21))  # ~2100 characters, over 4200 bytes
    gs = "gs://bucket/" + "r" * 100_000
    return [
        Bad("NUL byte in the logdir", "contains a NUL byte", api={"logdir": "logs\0x"}, magic="--logdir $nul"),
        Bad(
            "NUL byte in --logdir_spec",
            "contains a NUL byte",
            api={"logdir_spec": "a:/x\0y"},
            magic="--logdir_spec $nul_spec",
        ),
        Bad(
            "NUL byte in a TensorBoard flag",
            "contains a NUL byte",
            api={"logdir": str(tmp), "extra_args": ["--reload_interval=5\0"]},
            magic=f"--logdir {tmp} --reload_interval=$nul",
        ),
        Bad(
            "a name longer than 255 bytes",
            "this file system allows at most 255",
            cli=["start", long_name],
            api={"logdir": long_name},
            magic=f"--logdir {long_name}",
            real_cli=True,
        ),
        Bad(
            "a logdir longer than the OS allows",
            "this system allows paths up to",
            cli=["start", too_long],
            api={"logdir": too_long},
            magic=f"--logdir {too_long}",
            real_cli=True,
        ),
        Bad(
            "a lone surrogate in the logdir",
            "cannot put in a path",
            api={"logdir": "logs\ud800"},
            magic="--logdir $surrogate",
        ),
        Bad(
            "--timeout nan",
            "finite number of seconds",
            cli=["start", str(tmp), "--timeout", "nan"],
            api={"logdir": str(tmp), "timeout": math.nan},
            magic=f"--logdir {tmp} --timeout nan",
            real_cli=True,
        ),
        Bad(
            "--timeout inf",
            "finite number of seconds",
            cli=["start", str(tmp), "--timeout", "inf"],
            api={"logdir": str(tmp), "timeout": math.inf},
            magic=f"--logdir {tmp} --timeout inf",
        ),
        Bad(
            "--timeout -1",
            "seconds > 0",
            cli=["start", str(tmp), "--timeout", "-1"],
            api={"logdir": str(tmp), "timeout": -1},
        ),
        Bad(
            "--timeout 0", "seconds > 0", cli=["start", str(tmp), "--timeout", "0"], magic=f"--logdir {tmp} --timeout 0"
        ),
        Bad(
            "a gs:// logdir longer than a record may hold",
            "characters long; nbboard accepts up to",
            cli=["start", gs],
            api={"logdir": "gs://bucket/" + "r" * 300_000},
            magic="--logdir $gs",
            real_cli=True,
        ),
        Bad(
            "a --logdir_spec longer than a record may hold",
            "characters long; nbboard accepts up to",
            cli=["start", "--logdir_spec", "a:/" + "x" * 5000],
            api={"logdir_spec": "a:/" + "x" * 5000},
        ),
        Bad(
            "TensorBoard flags longer than a record may hold",
            "nbboard accepts up to",
            cli=["start", str(tmp), "--", "--window_title=" + "x" * 9000],
            api={"logdir": str(tmp), "extra_args": ["--window_title=" + "x" * 9000]},
        ),
        Bad(
            "a file given as the logdir",
            f"{afile} {FILE_HINT}",
            cli=["start", str(afile)],
            api={"logdir": str(afile)},
            magic=f"--logdir {afile}",
            real_cli=True,
        ),
        Bad(
            "a path under a file",
            f"{afile} {FILE_HINT}",
            cli=["start", str(afile / "logs")],
            api={"logdir": str(afile / "logs")},
        ),
        Bad(
            "a device as the logdir",
            "/dev/null is not a directory",
            cli=["start", "/dev/null"],
            api={"logdir": "/dev/null"},
        ),
        Bad("a symlink loop", "Too many levels of symbolic links", cli=["start", str(loop)], api={"logdir": str(loop)}),
        Bad(
            "a file whose name holds an escape sequence and a newline",
            "\\x1b[2Jevil\\nname is a file",
            cli=["start", str(escape_file)],
            api={"logdir": str(escape_file)},
        ),
        Bad(
            "--port abc",
            "'abc': expected a number",
            cli=["start", str(tmp), "--port", "abc"],
            magic=f"--logdir {tmp} --port abc",
        ),
        Bad(
            "--port 99999",
            "from 1 to 65535",
            cli=["start", str(tmp), "--port", "99999"],
            api={"logdir": str(tmp), "port": 99999},
            magic=f"--logdir {tmp} --port 99999",
            real_cli=True,
        ),
        Bad("--port 0", "from 1 to 65535", cli=["start", str(tmp), "--port", "0"], api={"logdir": str(tmp), "port": 0}),
        Bad(
            "--port 1.5",
            "expected a number",
            cli=["start", str(tmp), "--port", "1.5"],
            magic=f"--logdir {tmp} --port 1.5",
        ),
        Bad("kill --pid abc", "expected a number", cli=["kill", "--pid", "abc"], magic="kill --pid abc"),
        Bad("an empty logdir", "no logdir given", cli=["start", ""], api={"logdir": ""}, magic='--logdir ""'),
        Bad("start without a logdir", "no logdir given", cli=["start"], api={}, real_cli=True),
        Bad("two logdirs", "two logdirs given", cli=["start", "a", "--logdir", "b"]),
        Bad(
            "a logdir and a --logdir_spec",
            "not both",
            cli=["start", "a", "--logdir_spec", "b:/c"],
            api={"logdir": "a", "logdir_spec": "b:/c"},
            magic="--logdir a --logdir_spec b:/c",
        ),
        Bad(
            "nbboard's own flag after --",
            "is an nbboard option",
            cli=["start", str(tmp), "--", "--port", "5"],
            api={"logdir": str(tmp), "extra_args": ["--logdir=/elsewhere"]},
        ),
        Bad(
            "a typo of an option",
            "did you mean --logdir?",
            cli=["start", "--logidr", "x"],
            magic="--logidr x",
            real_cli=True,
        ),
        Bad("--height 5", "invalid --height", magic=f"--logdir {tmp} --height 5"),
        Bad("an unknown tunnel provider", "unknown tunnel provider", magic=f"--logdir {tmp} --tunnel=pigeon"),
        Bad("an unclosed quote", "close the quote", magic='--logdir "unclosed'),
    ]


KERNEL_VARS = (
    "nul = 'logs\\x00x'; nul_spec = 'a:/x\\x00y'; surrogate = 'logs\\ud800'; gs = 'gs://bucket/' + 'r' * 100000"
)


@pytest.fixture
def kernel(kernel: Kernel) -> Kernel:
    """conftest's kernel, with the variables the cases refer to."""
    kernel.text(KERNEL_VARS)
    return kernel


def test_bad_inputs_through_every_door(kernel: Kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-cwd"  # `start` with no logdir looks for event files here, and finds none
    empty.mkdir()
    monkeypatch.chdir(empty)
    tried: dict[str, int] = {"CLI": 0, "nbboard command": 0, "Python API": 0, "%board": 0}
    inputs = cases(tmp_path)
    for bad in inputs:
        if bad.cli is not None:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(bad.cli)
            text = err.getvalue()
            assert code == 2, (bad.name, code, text)
            assert "nbboard: error: " in text and bad.says in text, (bad.name, text)
            assert "Traceback" not in text and "internal error" not in text, (bad.name, text)
            assert "\x1b" not in text
            tried["CLI"] += 1
        if bad.real_cli:
            result = nbboard_cli(*bad.cli or [])
            assert result.returncode == 2 and bad.says in result.stderr, (bad.name, result.stderr)
            assert "Traceback" not in result.stderr
            tried["nbboard command"] += 1
        if bad.api is not None:
            with pytest.raises(UsageError) as raised:
                nbboard.start(**bad.api)  # type: ignore[arg-type]
            assert bad.says in str(raised.value), (bad.name, str(raised.value))
            tried["Python API"] += 1
        if bad.magic is not None:
            reply, outputs = kernel.execute(f"%board {bad.magic}")
            assert reply["status"] == "error" and reply["ename"] == "UsageError", (bad.name, reply)
            assert not [o for o in outputs if o["type"] == "error"], bad.name  # no traceback shown
            message = "".join(o.get("text", "") for o in outputs if o["type"] == "stream")
            assert message.startswith("UsageError: nbboard: ") and bad.says in message, (bad.name, message)
            tried["%board"] += 1
    assert nbboard.list() == [] and tensorboards_under(tmp_path) == []
    total = sum(tried.values())
    record(
        f"bad input: {len(inputs)} kinds (NUL bytes, names over 255 bytes, paths over the OS limit, nan/inf timeouts, "
        "huge gs:// logdirs and flags, files and devices as logdirs, symlink loops, escape sequences, bad ports, typos…) "
        "through the CLI, the `nbboard` command, the Python API and `%board` in a kernel",
        f"{total} tries ({', '.join(f'{n} {door}' for door, n in tried.items())}): {total} one-line errors "
        "(exit 2 / UsageError / a failed cell), 0 tracebacks, 0 TensorBoards started",
    )


def test_relative_logdir_in_a_deleted_directory(isolated: Path, tmp_path: Path, kernel: Kernel) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    os.chdir(gone)
    try:
        gone.rmdir()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert cli.main(["start", "logs"]) == 2
        assert "the current directory is gone" in err.getvalue() and "give an absolute path" in err.getvalue()
        with pytest.raises(UsageError, match="current directory is gone"):
            nbboard.start("logs")
    finally:
        os.chdir(here)
    gone.mkdir()
    kernel.text(f"import os; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})")
    reply, outputs = kernel.execute("%board --logdir logs")
    assert reply["status"] == "error" and "current directory is gone" in "".join(o.get("text", "") for o in outputs)


def test_a_record_the_readers_would_refuse_is_never_written(isolated: Path) -> None:
    """Belt and braces behind the logdir limit: a record over the size cap is refused when written, with a
    reason, instead of being written, skipped by every reader, and duplicated by every later start."""
    from nbboard import registry
    from nbboard.errors import RegistryError

    huge = registry.BoardRecord(
        pid=os.getpid(), port=1, logdir="gs://b/" + "r" * 300_000, create_time=0.0, cache_key="k", argv=(), start_time=0
    )
    with pytest.raises(RegistryError, match="over the registry's limit"):
        registry.write(huge)
    assert list(registry.boards_dir().iterdir()) == []
