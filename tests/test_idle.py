"""--idle-timeout on real boards: a forgotten board stops itself, says why in `list`, and needs no kernel.

Real TensorBoards through nbboard's entry point, real HTTP requests, a real kernel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest
import requests

import nbboard
from nbboard import liveness
from tests.helpers import nbboard_cli, tensorboards_serving
from tests.kernel import Kernel


def _start(logdir: Path, idle: str) -> dict:
    result = nbboard_cli("start", "--logdir", str(logdir), "--idle-timeout", idle, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_an_idle_board_stops_itself_and_list_says_why(isolated: Path, demo_logs: Path) -> None:
    board = _start(demo_logs, "2s")
    assert board["idle_timeout_s"] == 2
    family = [board["pid"], *(c.pid for c in psutil.Process(board["pid"]).children(recursive=True))]
    assert len(family) >= 2  # TensorBoard and its data server
    assert _gone(board["pid"], within=15)
    assert all(_gone(pid, within=5) for pid in family)  # the data server went with it
    assert tensorboards_serving(demo_logs) == []
    listed = nbboard_cli("list")
    assert f"ended {board['port']}: stopped after 2 s idle" in listed.stdout
    rows = json.loads(nbboard_cli("list", "--json").stdout)
    assert [(r["status"], r["reason"], r["port"]) for r in rows] == [("ended", "stopped after 2 s idle", board["port"])]
    assert nbboard.list() == []  # no record left: nothing stale to clear
    killed = nbboard_cli("kill")
    assert f"cleared the note of port {board['port']} (stopped after 2 s idle)" in killed.stdout
    assert "ended" not in nbboard_cli("list").stdout


def test_requests_keep_it_alive_and_nbboards_own_probes_do_not(isolated: Path, demo_logs: Path) -> None:
    board = _start(demo_logs, "3s")
    assert "stops itself after 3 s without a request" in nbboard_cli("list").stdout
    until = time.monotonic() + 6
    while time.monotonic() < until:  # someone is looking at the dashboard
        assert requests.get(f"{board['url']}data/runs", timeout=5).ok
        time.sleep(0.5)
    assert psutil.pid_exists(board["pid"])
    probes = 0
    while psutil.pid_exists(board["pid"]) and probes < 40:  # only nbboard checking that it is alive
        liveness.answers(board["port"])
        probes += 1
        time.sleep(0.25)
    assert _gone(board["pid"], within=5), "nbboard's own liveness probes kept the board alive"


def test_the_board_needs_no_kernel(isolated: Path, tmp_path: Path, demo_logs: Path) -> None:
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%load_ext nbboard")
        reply, _ = kernel.execute(f"%board --logdir {demo_logs} --idle-timeout 3s --no-display")
        assert reply["status"] == "ok"
        (inst,) = nbboard.list()
        assert inst.record.idle_timeout == 3
        assert inst.record.from_standby  # the standby %load_ext started became this board, and enforces it too
    finally:
        kernel.shutdown()  # the notebook is closed; the board runs on, detached
    assert psutil.pid_exists(inst.pid)
    assert _gone(inst.pid, within=15)
    (note,) = nbboard.scan().ended
    assert (note.pid, note.reason) == (inst.pid, "stopped after 3 s idle")


def test_configured_in_ipython(isolated: Path, tmp_path: Path, demo_logs: Path) -> None:
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%load_ext nbboard")
        kernel.text("%config BoardMagics.idle_timeout = '2h'")
        kernel.text(f"%board --logdir {demo_logs} --no-display")
        (inst,) = nbboard.list()
        assert inst.record.idle_timeout == 7200
    finally:
        kernel.shutdown()


@pytest.mark.parametrize("value", ["0", "abc", "-5", "2x", "nan", "0.5s"])
def test_bad_values_are_one_clear_line(isolated: Path, demo_logs: Path, value: str) -> None:
    result = nbboard_cli("start", "--logdir", str(demo_logs), "--idle-timeout", value)
    assert result.returncode == 2
    assert f"argument --idle-timeout: invalid value '{value}'" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(nbboard.NbboardError, match="invalid --idle-timeout"):
        nbboard.start(str(demo_logs), idle_timeout=value)
    assert nbboard.list() == []


def test_another_tensorboard_command_cannot_enforce_it(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex
    import sys

    monkeypatch.setenv("NBBOARD_TENSORBOARD", shlex.join([sys.executable, "-m", "tensorboard.main"]))
    result = nbboard_cli("start", "--logdir", str(demo_logs), "--idle-timeout", "1h")
    assert result.returncode == 2 and "NBBOARD_TENSORBOARD names another command" in result.stderr
    assert nbboard.list() == []
