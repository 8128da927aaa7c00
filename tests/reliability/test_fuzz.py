"""Random %board lines and CLI argv: every rejection is a clear message, never a traceback."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbboard import cli, magic_args
from nbboard.errors import NbboardError
from tests.reliability.figures import record

WORDS = ["--logdir", "--port", "--height", "--restart", "--tunnel", "--no-display", "--pid", "list", "kill", "stop", "help",
         "logs", "6006", "—", "–", "--", "-", "=", "'", '"', "$x", "{x}", "--logdir=", "ngrok", "localtunnel", "-1", "0", "99999", " "]  # fmt: skip
token = st.one_of(st.sampled_from(WORDS), st.text(min_size=0, max_size=8))
line = st.lists(token, max_size=8).map(" ".join)

counts = {"lines": 0, "rejected": 0, "argv": 0, "argv_rejected": 0}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line)
def test_random_board_lines(text: str) -> None:
    counts["lines"] += 1
    try:
        magic_args.parse(text)
    except NbboardError as e:
        counts["rejected"] += 1
        assert str(e).strip() and "Traceback" not in str(e)


CLI_WORDS = ["start", "list", "kill", "demo", "--logdir", "--port", "--pid", "--json", "--restart", "--timeout", "--",
             "--logdir_spec", "x", "1", "-1", "abc", "70000", "--samples_per_plugin", "a=b", "--bogus", ""]  # fmt: skip
argv = st.lists(st.one_of(st.sampled_from(CLI_WORDS), st.text(max_size=6)), max_size=7)


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> object:
    home = tmp_path_factory.mktemp("fuzz")
    old = {k: os.environ.get(k) for k in ("NBBOARD_HOME", "NBBOARD_TENSORBOARD")}
    os.environ["NBBOARD_HOME"] = str(home / "home")
    # Any start the fuzzer composes fails fast and for real (no TensorBoard at this path), exercising that path too.
    os.environ["NBBOARD_TENSORBOARD"] = str(home / "no-tensorboard-here")
    cwd = os.getcwd()
    os.chdir(home)
    yield home
    os.chdir(cwd)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(argv)
def test_random_cli_argv(fuzz_env: Path, args: list[str]) -> None:
    if args[:1] == ["demo"]:
        args = ["demo", "--no-start", *args[1:]]
    counts["argv"] += 1
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    assert code in (0, 1, 2), (args, err.getvalue())
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), (args, err.getvalue())
    if code:
        counts["argv_rejected"] += 1
        assert "error" in err.getvalue() or "usage" in (err.getvalue() + out.getvalue())


def test_zz_record_fuzz_figures() -> None:
    record(
        "input fuzzing (hypothesis)",
        f"{counts['lines']} random `%board` lines ({counts['rejected']} rejected with a message), {counts['argv']} random CLI argv ({counts['argv_rejected']} rejected with a message): 0 tracebacks",
    )
