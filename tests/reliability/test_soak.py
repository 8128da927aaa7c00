"""Soak: a board served through the gate and a loopback localtunnel while the server keeps dropping connections.

The default run lasts NBBOARD_SOAK_SECONDS (30 s); `pytest --soak` runs the 10-minute variant."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
import requests

from nbboard import cli
from tests.localtunnel_server import LocaltunnelServer
from tests.reliability.figures import record


@pytest.mark.timeout(900)  # the --soak variant runs for 10 minutes
def test_soak_through_a_dropping_tunnel(
    isolated: Path, demo_logs: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    seconds = 600 if request.config.getoption("--soak") else float(os.environ.get("NBBOARD_SOAK_SECONDS", "30"))
    server = LocaltunnelServer(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "nbboard", "tunnel", "--logdir", str(demo_logs), "--provider", "localtunnel", "--host", server.url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        url = result.stdout.strip()
        secret = parse_qs(urlsplit(url).query)["nbboard_token"][0]
        host = urlsplit(url).netloc
        from nbboard import api

        (inst,) = api.list_instances()
        helper = psutil.Process(inst.tunnel.helper_pid)
        rss = [helper.memory_info().rss]
        ok = failed = dropped = 0
        stop = time.monotonic() + seconds
        outage = threading.Event()

        def dropper() -> None:
            nonlocal dropped
            while time.monotonic() < stop - 5:
                time.sleep(10)
                outage.set()
                server.restart()  # every tunnel socket dies and the server forgets the tunnel
                dropped += 1

        t = threading.Thread(target=dropper, daemon=True)
        t.start()
        s = requests.Session()
        headers = {"Host": host, "Authorization": f"Bearer {secret}"}
        while time.monotonic() < stop:
            try:
                r = s.get(server.url + "/data/plugin/scalars/scalars?run=train&tag=loss", headers=headers, timeout=10)
                good = r.status_code == 200 and len(r.json()) == 50
            except (requests.RequestException, ValueError):
                good = False
            if good:
                ok += 1
                outage.clear()
            elif outage.is_set():
                time.sleep(0.05)  # reconnecting after a drop: not counted until the tunnel is back
            else:
                failed += 1
            if ok % 200 == 0:
                rss.append(helper.memory_info().rss)
        t.join()
        rss.append(helper.memory_info().rss)
        growth = (rss[-1] - rss[1 if len(rss) > 2 else 0]) / 2**20
        record(
            f"soak: {seconds:.0f} s of scraping through gate + loopback localtunnel, server restarted {dropped}×",
            f"{ok} requests served, {failed} failed after reconnection, helper RSS {rss[0] / 2**20:.0f} → {rss[-1] / 2**20:.0f} MiB",
        )
        assert failed == 0 and ok > 0
        assert growth < 20
    finally:
        cli.main(["kill"])
        server.stop()
