"""What the tunnel tests share: opening a localtunnel link through the real CLI, logging in through it, and
finding the tunnel helpers of this test's registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil

from tests.helpers import nbboard_cli
from tests.localtunnel_server import LocaltunnelServer

SCALARS = "/data/plugin/scalars/scalars?run=train&tag=loss"


def open_tunnel(demo_logs: Path, *extra: str) -> dict:
    result = nbboard_cli("tunnel", "--logdir", str(demo_logs), "--provider", "localtunnel", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def helper_processes() -> list[psutil.Process]:
    """Tunnel helpers of this test's registry (their argv names a spec file inside it)."""
    home = os.environ["NBBOARD_HOME"]
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if "nbboard.tunnels.helper" in " ".join(p.info["cmdline"] or []) and home in " ".join(p.info["cmdline"] or [])
    ]


def secret_in(url: str) -> str:
    return parse_qs(urlsplit(url).query)["nbboard_token"][0]


def login(lt: LocaltunnelServer, url: str) -> dict[str, str]:
    """Visit the printed link once; returns the cookie the gate set."""
    resp = lt.get(url, "/?" + urlsplit(url).query)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    name, _, rest = resp.headers["Set-Cookie"].partition("=")
    return {name: rest.split(";", 1)[0]}
