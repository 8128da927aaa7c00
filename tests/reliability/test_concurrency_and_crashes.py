"""Concurrency and crash loops: exactly one board per logdir, no dead board reused, nothing orphaned."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

import nbboard
from nbboard import registry
from tests.helpers import nbboard_cli, tensorboards_serving
from tests.reliability.figures import record

CRASH_CYCLES = int(os.environ.get("NBBOARD_CRASH_CYCLES", "50"))


def _start_procs(logdirs: list[Path]) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "nbboard", "start", "--logdir", str(d), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in logdirs
    ]


def test_eight_processes_one_logdir_make_one_board(isolated: Path, demo_logs: Path) -> None:
    procs = _start_procs([demo_logs] * 8)
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    pids = {json.loads(o[0])["pid"] for o in outs}
    boards = len(tensorboards_serving(demo_logs))
    record("concurrency: 8 processes start one logdir", f"{boards} TensorBoard, {len(pids)} distinct pid reported")
    assert (boards, len(pids)) == (1, 1)


def test_eight_processes_eight_logdirs_make_eight_boards(isolated: Path, tmp_path: Path) -> None:
    dirs = []
    for i in range(8):
        d = tmp_path / f"run{i}"
        d.mkdir()
        dirs.append(d)
    procs = _start_procs(dirs)
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    ports = {json.loads(o[0])["port"] for o in outs}
    records = list(registry.boards_dir().glob("pid-*.json"))
    listed = nbboard.list()
    record(
        "concurrency: 8 processes start 8 logdirs",
        f"{len(listed)} boards, {len(records)} records, {len(ports)} distinct ports",
    )
    assert (len(listed), len(records), len(ports)) == (8, 8, 8)
    assert all(i.status == "running" for i in listed)


def _orphans(root: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "tensorboard" in cmd and str(root) in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(p)
    return out


def _kill_and_count(logdir: Path, scenario: str, what: str, bad: int) -> None:
    """`nbboard kill`, then count what is left: orphan processes and records must be 0, like ``bad``."""
    nbboard.kill()
    orphans = _orphans(logdir)
    leftover_records = list(registry.boards_dir().glob("*.json"))
    record(scenario, f"{bad} {what}, {len(orphans)} orphan processes, {len(leftover_records)} orphan records")
    assert (bad, len(orphans), len(leftover_records)) == (0, 0, 0), [p.name for p in leftover_records]


def test_crash_loop_never_reuses_a_dead_board(isolated: Path, demo_logs: Path) -> None:
    reused_dead = 0
    previous = None
    for _ in range(CRASH_CYCLES):
        inst = nbboard.start(str(demo_logs))
        if previous is not None and inst.pid == previous:
            reused_dead += 1
        if inst.reused:
            reused_dead += 1
        os.kill(inst.pid, signal.SIGKILL)
        psutil.Process(inst.pid).wait(5)
        previous = inst.pid
    final = nbboard.start(str(demo_logs))
    assert not final.reused
    _kill_and_count(
        demo_logs,
        f"crash loop: {CRASH_CYCLES} × start → SIGKILL TensorBoard → start",
        "reuses of a dead board",
        reused_dead,
    )


def test_starter_killed_mid_start(isolated: Path, demo_logs: Path) -> None:
    """SIGKILL the `nbboard start` process at a random moment of its start-up, then start again."""
    rng = random.Random(7)
    cycles = max(10, CRASH_CYCLES // 2)
    broken = 0
    for _ in range(cycles):
        starter = subprocess.Popen(
            [sys.executable, "-m", "nbboard", "start", "--logdir", str(demo_logs)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 1.2))
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        inst = nbboard.start(str(demo_logs))
        if inst.status != "running":
            broken += 1
        os.kill(inst.pid, signal.SIGKILL)  # and crash the board too, to leave the worst state each time
        psutil.Process(inst.pid).wait(5)
    _kill_and_count(
        demo_logs, f"crash loop: {cycles} × SIGKILL `nbboard start` mid-start → start", "unusable boards", broken
    )


#: A writer of a board record stopped between writing its temp file and renaming it over the record: the moment
#: when a SIGKILL to `nbboard start` leaves a `.tmp-<pid>-….json` behind.
_STUCK_WRITER = """
import os, sys, time
from nbboard import registry
def stuck(src, dst):
    print(src, flush=True)
    time.sleep(600)
os.replace = stuck
registry.write(registry.BoardRecord(pid=os.getpid(), port=0, logdir=sys.argv[1], create_time=0.0, cache_key="k",
                                    argv=(), start_time=0, state="starting"))
"""


def _stuck_writer(logdir: Path) -> tuple[subprocess.Popen[str], Path]:
    writer = subprocess.Popen([sys.executable, "-c", _STUCK_WRITER, str(logdir)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    temp = Path(writer.stdout.readline().strip())
    assert temp.is_file() and temp.parent == registry.boards_dir(), temp
    return writer, temp


def test_a_record_write_killed_midway_is_ignored_by_list_and_removed_by_kill_and_start(
    isolated: Path, demo_logs: Path
) -> None:
    """The leftover of a starter killed mid-write (the cause of the orphan record in the crash loop above)."""
    registry.ensure_home()
    writer, in_progress = _stuck_writer(demo_logs)
    try:
        # A write in progress is left alone by kill, and list shows nothing for it.
        listed = nbboard_cli("list")
        assert (listed.returncode, listed.stderr) == (0, "") and "no TensorBoard running" in listed.stdout
        assert nbboard_cli("kill").returncode == 0
        assert in_progress.exists(), "kill removed the temp file of a write still in progress"
    finally:
        writer.kill()
        writer.wait()
    # Its writer is gone: list still changes nothing and says nothing, kill removes it.
    listed = nbboard_cli("list")
    assert (listed.returncode, listed.stderr) == (0, "") and "no TensorBoard running" in listed.stdout
    assert in_progress.exists()
    killed = nbboard_cli("kill")
    assert killed.returncode == 0, killed.stderr
    assert not in_progress.exists()
    # The same leftover is removed by the next start too; an old one named by an earlier nbboard (no pid) as well.
    writer, left = _stuck_writer(demo_logs)
    writer.kill()
    writer.wait()
    unnamed = registry.boards_dir() / ".tmp-k3j4h5g6.json"
    unnamed.write_text("{")
    os.utime(unnamed, (time.time() - 3600, time.time() - 3600))
    started = nbboard_cli("start", "--logdir", str(demo_logs))
    assert started.returncode == 0, started.stderr
    assert [p.name for p in registry.boards_dir().iterdir()] == [f"pid-{nbboard.list()[0].pid}.json"]
