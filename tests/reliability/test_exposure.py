"""Hostile visitors at a public URL: 10 000 requests with no or wrong secrets get no TensorBoard data."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
import requests

from nbboard import cli
from tests.localtunnel_server import LocaltunnelServer
from tests.reliability.figures import record

HOSTILE = int(os.environ.get("NBBOARD_HOSTILE_REQUESTS", "10000"))
PATHS = [
    "/data/runs",
    "/data/plugin/scalars/scalars?run=train&tag=loss",
    "/data/plugin/scalars/tags",
    "/",
    "/index.js",
    "/data/environment",
]


@pytest.fixture
def tunnel(isolated: Path, demo_logs: Path, tmp_path: Path) -> Iterator[tuple[LocaltunnelServer, str]]:
    server = LocaltunnelServer(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "nbboard", "tunnel", "--logdir", str(demo_logs), "--provider", "localtunnel", "--host", server.url, "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    yield server, json.loads(result.stdout)["url"]
    cli.main(["kill"])
    server.stop()


def _mutations(secret: str, rng: random.Random) -> list[tuple[str, dict[str, str]]]:
    """(path+query, headers) of requests that must all be refused."""
    alphabet = string.ascii_letters + string.digits + "-_"
    wrong = "".join(rng.choice(alphabet) for _ in range(len(secret)))
    cut = secret[: rng.randrange(0, len(secret))]
    flipped = secret.swapcase()
    one_off = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    path = rng.choice(PATHS)
    sep = "&" if "?" in path else "?"
    candidates = [
        (path, {}),
        (f"{path}{sep}nbboard_token={wrong}", {}),
        (f"{path}{sep}nbboard_token={cut}", {}),
        (f"{path}{sep}nbboard_token={flipped}", {}),
        (f"{path}{sep}nbboard_token={one_off}", {}),
        (f"/{secret}{path}", {}),
        (f"{path}{sep}token={secret}", {}),
        (path, {"Authorization": f"Bearer {one_off}"}),
        (path, {"Authorization": f"Basic {secret}"}),
        (path, {"Cookie": f"nbboard_auth={secret}"}),  # the secret is not the cookie value
        (path, {"Cookie": f"nbboard_auth={wrong}"}),
        (path, {"X-Nbboard-Token": secret}),
    ]
    return [rng.choice(candidates)]


def test_ten_thousand_hostile_requests(tunnel: tuple[LocaltunnelServer, str]) -> None:
    server, url = tunnel
    secret = parse_qs(urlsplit(url).query)["nbboard_token"][0]
    host = urlsplit(url).netloc
    rng = random.Random(1234)
    attempts = [m for _ in range(HOSTILE) for m in _mutations(secret, rng)]

    def send(chunk: list[tuple[str, dict[str, str]]]) -> tuple[int, int, list[int]]:
        s = requests.Session()
        leaked = refused = 0
        odd = []
        for target, headers in chunk:
            r = s.get(server.url + target, headers={"Host": host, **headers}, allow_redirects=False, timeout=30)
            body = r.text
            if r.status_code in (401, 403):
                refused += 1
            else:
                odd.append(r.status_code)
            if "train" in body or "loss" in body or "tf-tensorboard" in body or "data_location" in body:
                leaked += 1
        return leaked, refused, odd

    chunks = [attempts[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, chunks))
    leaked = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    odd = [c for r in results for c in r[2]]
    record(
        f"public exposure: {len(attempts)} requests through the gate and a loopback localtunnel with no/wrong secrets (random, truncated, case-changed, in path/query/header/cookie)",
        f"{leaked} answered with TensorBoard data, {refused} refused with 401/403",
    )
    assert leaked == 0 and odd == [] and refused == len(attempts)

    # And the secret is nowhere a bystander could read it:
    for proc in psutil.process_iter(["cmdline"]):
        assert secret not in " ".join(proc.info["cmdline"] or [])
    home = Path(os.environ["NBBOARD_HOME"])
    for log in (home / "logs").iterdir():
        assert secret not in log.read_text(errors="replace")
    listed = subprocess.run(
        [sys.executable, "-m", "nbboard", "list", "--json"], capture_output=True, text=True, timeout=60
    )
    assert secret not in listed.stdout + listed.stderr
