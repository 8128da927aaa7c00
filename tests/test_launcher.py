"""Failures at start: each gives one clear message, and nothing is left running or recorded."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

import nbboard
from nbboard import registry
from nbboard.errors import PortInUseError, StartFailedError, StartTimedOutError
from tests.helpers import nbboard_cli, tensorboards_serving


def _no_records() -> bool:
    return list(registry.boards_dir().glob("*.json")) == []


def test_port_taken_by_another_program(isolated: Path, demo_logs: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = nbboard_cli("start", "--logdir", str(demo_logs), "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert tensorboards_serving(demo_logs) == [] and _no_records()


def test_port_taken_by_one_of_our_boards_names_it(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    first = nbboard.start(str(demo_logs))
    with pytest.raises(PortInUseError) as err:
        nbboard.start(str(tmp_path), port=first.port)
    assert f"nbboard kill --port {first.port}" in str(err.value)
    assert [i.pid for i in nbboard.list()] == [first.pid]


def test_tensorboard_exiting_early_shows_its_output(isolated: Path, demo_logs: Path) -> None:
    with pytest.raises(StartFailedError) as err:
        nbboard.start(str(demo_logs), extra_args=["--no_such_flag=1"])
    assert "no_such_flag" in str(err.value)
    assert err.value.exit_code not in (0, None)
    assert tensorboards_serving(demo_logs) == [] and _no_records()


def test_timeout_stops_the_child_instead_of_leaving_it(isolated: Path, demo_logs: Path) -> None:
    # A real TensorBoard needs about a second to import and bind: 0.2 s is too short.
    with pytest.raises(StartTimedOutError) as err:
        nbboard.start(str(demo_logs), timeout=0.2)
    assert "did not answer within 0.2 s and was stopped" in str(err.value)
    assert tensorboards_serving(demo_logs) == [] and _no_records()
    assert list(registry.logs_dir().iterdir()) == []


def test_tensorboard_not_installed(isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBBOARD_TENSORBOARD", "/nonexistent/tensorboard")
    result = nbboard_cli("start", "--logdir", str(demo_logs))
    assert result.returncode == 1
    assert "TensorBoard is not installed" in result.stderr and "pip install tensorboard" in result.stderr
    assert _no_records()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["start", "--logdir", "x", "--port", "abc"], 2, "argument --port: invalid value 'abc'"),
        (["start", "--logdir", "x", "--port", "70000"], 2, "argument --port: invalid value 70000"),
        (["start"], 2, "no logdir given"),
        (["start", "--logdir", "x", "--", "--port", "1"], 2, "--port is an nbboard option"),
        (["start", "--logdir", "x", "--", "stray"], 2, "unexpected argument 'stray'"),
        (["kill", "--pid", "abc"], 2, "argument --pid: invalid value 'abc'"),
        (["list", "--bogus"], 2, "unknown option '--bogus'"),
        (["frobnicate"], 2, "unknown command 'frobnicate'; the commands are start, list, kill, demo, tunnel"),
        (["strat", "--logdir", "x"], 2, "unknown command 'strat': did you mean start?"),
        (["lsit"], 2, "unknown command 'lsit': did you mean list?"),
        (["--version", "kil"], 2, "did you mean kill?"),
        (["list", "--", "--x"], 2, "does not start"),
    ],
)
def test_bad_input_is_one_clear_message(isolated: Path, args: list[str], code: int, message: str) -> None:
    empty = isolated / "empty-cwd"  # `start` with no logdir looks for event files here, and finds none
    empty.mkdir()
    result = nbboard_cli(*args, cwd=empty)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_and_empty_logdirs_start_with_a_note(isolated: Path, tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    result = nbboard_cli("start", "--logdir", str(missing))
    assert result.returncode == 0, result.stderr
    assert f"{missing} does not exist yet" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = nbboard_cli("start", "--logdir", str(empty))
    assert result.returncode == 0
    assert "No dashboards are active" in result.stderr and str(empty) in result.stderr
    assert len(nbboard.list()) == 2


def test_log_file_is_private(isolated: Path, demo_logs: Path) -> None:
    inst = nbboard.start(str(demo_logs))
    assert stat.S_IMODE(os.stat(inst.log_path).st_mode) == 0o600
    assert "TensorBoard" in Path(inst.log_path).read_text()
