"""Stopping a tunnel helper takes its whole trace with it: record, secret and log (issue 20, item 8).

Real files in a real registry, and a real helper process (a sleeper carrying the
argv its record names), stopped by the same call ``close_tunnels``, ``kill``
and a replaced tunnel use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from nbboard import registry
from nbboard.tunnels import lifecycle


def _tunnel(helper: subprocess.Popen[bytes]) -> registry.TunnelRecord:
    secret = registry.ensure_home() / "secrets" / "tunnel-0123456789ab.secret"
    registry.write_private(secret, "s3cret")
    log = Path(registry.new_log_path("tunnel"))
    log.write_text("helper output\n")
    return registry.write_tunnel(
        registry.TunnelRecord(
            provider="localtunnel",
            public_url="https://example.invalid",
            helper_pid=helper.pid,
            helper_create_time=psutil.Process(helper.pid).create_time(),
            helper_argv=tuple(psutil.Process(helper.pid).cmdline()),
            gate_port=0,
            board_pid=4242,
            secret_file=str(secret),
            log_path=str(log),
        )
    )


def test_stopping_a_helper_removes_its_record_secret_and_log(isolated: Path) -> None:
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        tunnel = _tunnel(helper)
        assert lifecycle.stop_helper(tunnel) is True
        assert helper.wait(timeout=30) is not None
        assert not Path(tunnel.path).exists()
        assert not Path(tunnel.secret_file).exists()
        assert not Path(tunnel.log_path).exists(), "the helper's log outlived it"
    finally:
        helper.kill()
        helper.wait()


def test_a_failed_open_keeps_the_log_until_its_tail_is_read(isolated: Path) -> None:
    """``manager.open_tunnel`` shows the log's tail as the error after stopping the helper: it may keep it."""
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        tunnel = _tunnel(helper)
        lifecycle.stop_helper(tunnel, keep_log=True)
        assert not Path(tunnel.path).exists()
        assert registry.output_tail(tunnel.log_path) == "helper output"
    finally:
        helper.kill()
        helper.wait()
