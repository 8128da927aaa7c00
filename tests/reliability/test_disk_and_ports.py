"""A registry that cannot be written, and ports that are all taken: clear errors, nothing left running."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import nbboard
from nbboard import registry
from tests.helpers import tensorboards_serving
from tests.reliability.figures import record

FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a full disk: every write fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
from nbboard.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_leaves_no_unrecorded_board(isolated: Path, demo_logs: Path) -> None:
    """The registry cannot be written (a file-size limit of 0 makes every write fail, as on a full disk).

    Root bypasses permission bits, so a read-only directory cannot be staged here; a full disk can."""
    registry.ensure_home()
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "start", "--logdir", str(demo_logs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    left = tensorboards_serving(demo_logs)
    record(
        "disk trouble: registry unwritable (every write fails, as on a full disk)",
        f"exit {result.returncode} with a one-line reason, {len(left)} TensorBoard left running",
    )
    assert result.returncode == 1
    assert "nbboard: error:" in result.stderr and "Traceback" not in result.stderr
    assert "free some disk space" in result.stderr or "writable" in result.stderr
    assert left == []


def test_every_requested_port_taken(isolated: Path, demo_logs: Path) -> None:
    holders = []
    for _ in range(5):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        holders.append(s)
    try:
        messages = []
        for s in holders:
            port = s.getsockname()[1]
            try:
                nbboard.start(str(demo_logs), port=port)
            except nbboard.NbboardError as e:
                messages.append(str(e))
        running = tensorboards_serving(demo_logs)
        record(
            "port conflicts: 5 requested ports each held by another program",
            f"{len(messages)} clear errors, {len(running)} TensorBoard left running",
        )
        assert len(messages) == 5 and all("is in use" in m for m in messages)
        assert running == []
        # Without --port, a free one is used even so:
        assert nbboard.start(str(demo_logs)).status == "running"
    finally:
        for s in holders:
            s.close()
