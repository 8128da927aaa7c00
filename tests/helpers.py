"""Helpers the tests share: finding real TensorBoard processes, running the real CLI, writing records.

Fixtures live in conftest.py; everything here is a plain function or constant.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


def tensorboards_under(root: Path) -> list[psutil.Process]:
    """Every process with "tensorboard" in its command line that names a path under ``root``."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "tensorboard" in cmd and str(root) in cmd:
            found.append(p)
    return found


def tensorboards_serving(logdir: str | Path) -> list[psutil.Process]:
    """Live TensorBoard processes (not their data-server children) serving ``logdir``."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any("tensorboard" in c for c in cmd[:3]) and any(str(logdir) in c for c in cmd):
            out.append(p)
    pids = {p.pid for p in out}
    return [p for p in out if p.ppid() not in pids]  # the data server is TensorBoard's child, not a second board


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
