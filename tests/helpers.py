"""Helpers the tests share: finding real TensorBoard processes, running the real CLI, writing records.

Fixtures live in conftest.py; everything here is a plain function or constant.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from nbboard import procs

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"

T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, timeout: float = 60, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail naming ``what`` after ``timeout``.

    The one way the tests wait for something another process does: a deadline, never a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"gave up after {timeout:g} s waiting for {what}"
        time.sleep(interval)
    return value


#: nbboard's entry points: for boards (``python -m nbboard.serve <TensorBoard args>``) and for the standby
#: (``python -m nbboard.standby``, whose command line names no logdir).
SERVE = "nbboard.serve"
STANDBY = "nbboard.standby"


def crash(pid: int) -> None:
    """End a board's process as a crash would (SIGKILL: no clean-up of its own), and return once it is dead.

    Dead, not gone: a board the kernel started stays its zombie until reaped, which may take seconds.
    """
    proc = psutil.Process(pid)
    proc.kill()
    assert not procs.wait_gone([proc], timeout=30), f"process {pid} still alive 30 s after SIGKILL"


def tensorboards_under(root: Path) -> list[psutil.Process]:
    """Every TensorBoard whose command line names a path under ``root``, and every standby of a registry or
    temp dir under ``root`` that became a board serving a path under ``root`` (a standby's command line names no
    path). A standby still waiting serves nothing and is not a TensorBoard: see :func:`standbys_under`."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if ("tensorboard" in cmd or SERVE in cmd) and str(root) in cmd:
            found.append(p)
        elif STANDBY in cmd and _environment_under(p, root) and _served_by(p).startswith(str(root)):
            found.append(p)
    return found


def standbys_under(root: Path) -> list[psutil.Process]:
    """Every standby process (waiting or turned board) started for a registry or temp dir under ``root``."""
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if STANDBY in " ".join(p.info["cmdline"] or []) and _environment_under(p, root)
    ]


def _environment_under(proc: psutil.Process, root: Path) -> bool:
    try:
        env = proc.environ()
    except psutil.Error:
        return False
    return any(env.get(k, "").startswith(str(root)) for k in ("NBBOARD_HOME", "TMPDIR"))


def tensorboards_serving(logdir: str | Path) -> list[psutil.Process]:
    """Live TensorBoard processes (not their data-server children) serving ``logdir``.

    A board is a ``tensorboard`` or ``nbboard.serve`` process naming ``logdir``
    on its command line, or a standby of this test's registry that became a
    board: its command line names no logdir, so what it serves is read from
    the process itself (its data server's ``--logdir=``, or its HTTP answer),
    never from nbboard's registry.
    """
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        launched = any("tensorboard" in c or c == SERVE for c in cmd[:3])
        if launched and any(str(logdir) in c for c in cmd):
            out.append(p)
        elif STANDBY in cmd[:3] and _same_registry(p) and str(logdir) in _served_by(p):
            out.append(p)
    pids = {p.pid for p in out}
    return [p for p in out if p.ppid() not in pids]  # the data server is TensorBoard's child, not a second board


def _same_registry(proc: psutil.Process) -> bool:
    """A standby of this test's registry (others on the machine are none of its business)."""
    mine = os.environ.get("NBBOARD_HOME")
    try:
        return mine is None or proc.environ().get("NBBOARD_HOME") == mine
    except psutil.Error:
        return False


def _served_by(proc: psutil.Process) -> str:
    """What a standby turned board serves, as the process shows it: "" for a standby still waiting."""
    import requests

    try:
        children = proc.children()
        for child in children:
            for arg in child.cmdline():
                if arg.startswith("--logdir="):
                    return arg[len("--logdir=") :]
        # No data server: a board with --load_fast=false, or a standby still waiting (which drops the probe)
        ports = [c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    except psutil.Error:
        return ""
    for port in ports:
        try:
            return str(requests.get(f"http://127.0.0.1:{port}/data/environment", timeout=2).json()["data_location"])
        except (requests.RequestException, ValueError, KeyError, TypeError):
            continue
    return ""


def nbboard_cli(*args: str, cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``nbboard`` command in a child process (its own interpreter, as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "nbboard", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def concurrent_starts(logdir: Path, n: int, timeout: float = 180) -> list[dict]:
    """Run ``n`` real ``nbboard start --json`` commands at once for ``logdir``; each must succeed. Their JSON."""
    starters = [
        subprocess.Popen(
            [sys.executable, "-m", "nbboard", "start", "--logdir", str(logdir), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=timeout) for p in starters]
    assert all(p.returncode == 0 for p in starters), [o[1] for o in outs]
    return [json.loads(o[0]) for o in outs]


def plant_record(pid: int, create_time: float, argv: list[str], port: int = 1, logdir: str = "/planted") -> Path:
    """Write a board record the way nbboard would, for a process nbboard did not start."""
    from nbboard import registry

    record = registry.write(
        registry.BoardRecord(
            pid=pid,
            port=port,
            logdir=logdir,
            create_time=create_time,
            cache_key="planted",
            argv=tuple(argv),
            start_time=int(time.time()),
        )
    )
    return Path(record.path)


def nodelay_flags(pid: int) -> list[tuple[bool, bool]]:
    """(listening, TCP_NODELAY set) for each TCP socket of ``pid``, read through duplicates. Raises OSError.

    Only tests ask this, so it lives here rather than in nbboard.nodelay.
    """
    from nbboard import nodelay

    pidfd = nodelay._pidfd_open(pid)
    found = []
    try:
        for target in nodelay._socket_fds(pid):
            with socket.socket(fileno=nodelay._pidfd_getfd(pidfd, target)) as sock:
                if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                    listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
                    found.append((listening, bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))))
    finally:
        os.close(pidfd)
    return found
