"""Hostile visitors at a public URL: 10 000 requests with no or wrong secrets get no TensorBoard data, and
visitors that stall cannot starve the owner or the tunnel helper."""

from __future__ import annotations

import json
import os
import random
import socket
import string
import subprocess
import sys
import time
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
STALLED = 24
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


# ---------------------------------------------------------------------------
# Issue 10 item 1: tokenless visitors that stall cannot starve the owner or the helper's descriptors

SCALARS = "/data/plugin/scalars/scalars?run=train&tag=loss"


def _stall(server_port: int, host: str, n: int, first_byte: bool = False) -> list[socket.socket]:
    """``n`` tokenless POSTs through the localtunnel server that announce a body and never send it
    (``first_byte``: send one byte of it, then stall)."""
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server_port), timeout=30)
        head = f"POST {SCALARS} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n\r\n".encode()
        s.sendall(head + (b"x" if first_byte else b""))
        held.append(s)
    return held


def _owner_requests(server: LocaltunnelServer, host: str, secret: str, n: int) -> tuple[int, list[float]]:
    s = requests.Session()
    ok, took = 0, []
    for _ in range(n):
        t0 = time.monotonic()
        try:
            r = s.get(server.url + SCALARS, headers={"Host": host, "Authorization": f"Bearer {secret}"}, timeout=15)
            ok += r.status_code == 200 and len(r.json()) == 50
        except (requests.RequestException, ValueError):
            pass
        took.append(time.monotonic() - t0)
    return ok, took


def test_tokenless_stalled_requests_do_not_starve_the_owner(tunnel: tuple[LocaltunnelServer, str]) -> None:
    """localtunnel gives the client 10 sockets, and its server reserves one for each request whose body has
    not begun without forwarding a byte of it. 24 tokenless requests that announce a body and never send it
    (and 12 that send one byte, then stall) are held open by the attacker; the owner's requests are still
    served. On main the first ten took every socket for good and the owner's requests timed out."""
    server, url = tunnel
    secret = parse_qs(urlsplit(url).query)["nbboard_token"][0]
    host = urlsplit(url).netloc
    silent = _stall(server.port, host, STALLED)
    started = _stall(server.port, host, STALLED // 2, first_byte=True)
    try:
        ok, took = _owner_requests(server, host, secret, 20)
        refused = dropped = 0
        for s in started:  # their heads reached the gate: a 401 at once, nothing read
            s.settimeout(10)
            refused += s.recv(65536).startswith(b"HTTP/1.1 401")
        for s in silent:  # never seen by the gate; the server drops them once their socket is replaced
            s.settimeout(10)
            try:
                dropped += s.recv(65536) == b""
            except ConnectionError:
                dropped += 1
            except TimeoutError:
                pass
    finally:
        for s in silent + started:
            s.close()
    record(
        f"tokenless stalled requests (Content-Length: 1000000, body never sent) held open through gate + "
        f"loopback localtunnel (10 tunnel sockets): {STALLED} silent + {STALLED // 2} after one body byte",
        f"owner's requests meanwhile: {ok}/20 served, first after {took[0]:.1f} s, then at most "
        f"{max(took[1:]) * 1000:.0f} ms; {refused}/{STALLED // 2} byte-senders refused 401 at once, "
        f"{dropped}/{STALLED} silent ones dropped by the server once their tunnel socket was replaced",
    )
    assert ok == 20 and refused == STALLED // 2 and dropped == STALLED


def test_helper_descriptors_stay_flat_under_hundreds_of_tokenless_connections(
    tunnel: tuple[LocaltunnelServer, str],
) -> None:
    """500 tokenless connections straight at the gate's port (a local user, or an agent that opens one per
    visitor), half with half a request head, half with a stalled body, all held open; plus 200 stalled
    requests through the localtunnel server. The helper's descriptors stay bounded by the gate's cap (on main
    they grew by one per connection), the owner is served meanwhile, and they fall back afterwards."""
    from nbboard import api
    from nbboard.tunnels.gate import MAX_PENDING

    server, url = tunnel
    secret = parse_qs(urlsplit(url).query)["nbboard_token"][0]
    host = urlsplit(url).netloc
    (inst,) = api.list_instances()
    helper = psutil.Process(inst.tunnel.helper_pid)
    fds = helper.num_fds if hasattr(helper, "num_fds") else helper.num_handles  # Windows: handles
    gate = f"http://127.0.0.1:{inst.tunnel.gate_port}"
    owner = {"Authorization": f"Bearer {secret}"}
    base = fds()
    peak = base
    held: list[socket.socket] = []
    try:
        for i in range(500):
            s = socket.create_connection(("127.0.0.1", inst.tunnel.gate_port), timeout=30)
            s.sendall(
                b"GET /data/runs HTTP/1.1\r\nHost: x\r\n"
                if i % 2
                else b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
            )
            held.append(s)
            peak = max(peak, fds())
        held += _stall(server.port, host, 200)
        time.sleep(1.5)  # the gate's linger after each refusal
        settled = fds()
        served = sum(requests.get(gate + SCALARS, headers=owner, timeout=10).status_code == 200 for _ in range(5))
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 15
    while (after := fds()) > base + 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    record(
        "helper file descriptors with 500 tokenless connections held open at the gate + 200 stalled requests "
        "through the loopback localtunnel server",
        f"{base} before, {settled} while they are held (peak {peak}; cap {MAX_PENDING} pending connections), "
        f"{after} after; the owner was served {served}/5 meanwhile",
    )
    assert served == 5
    assert settled <= base + MAX_PENDING + 24, (base, settled)  # the cap, plus the tunnel's own connections
    # Never one per visitor (700 here). What may briefly hold a descriptor: the gate's pending connections (up to
    # twice the cap until the trim 0.1 s later), two accepted batches (asyncio accepts `backlog` = the cap at a time
    # and admits them two loop turns later), up to two evicted batches whose sockets close on the next loop turn,
    # and the tunnel's own connections. CI saw 360 (base 17) under a concurrent browser benchmark; 205-277 quiet.
    assert peak <= base + 6 * MAX_PENDING + 24, (base, peak)
    assert after <= base + 4, (base, after)


FLOOD_OWNER_REQUESTS = int(os.environ.get("NBBOARD_FLOOD_OWNER_REQUESTS", "600"))
#: One flooding process: opens connections that send nothing as fast as it can, holding the newest 150.
FLOOD = """
import socket, sys
held = []
while True:
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
    except OSError:
        continue
    print(flush=True)
    if len(held) > 150:
        held.pop(0).close()
"""


def test_the_owner_gets_in_during_a_connection_flood(tunnel: tuple[LocaltunnelServer, str]) -> None:
    """Issue 17 item 5: a local user (or a provider's agent opening one connection per visitor) floods the gate
    with connections that send nothing, far past its 64 pending slots, from two processes, while the owner keeps
    opening fresh connections to it. When the gate pushed out simply the oldest pending connection, 0.6-2.5 % of
    the owner's came back empty; it now pushes out silent ones before any whose request has begun to arrive."""
    from nbboard import api

    _server, url = tunnel
    secret = parse_qs(urlsplit(url).query)["nbboard_token"][0]
    (inst,) = api.list_instances()
    gate_port = inst.tunnel.gate_port
    floods = [
        subprocess.Popen([sys.executable, "-c", FLOOD, str(gate_port)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    failed: list[str] = []
    t0 = time.monotonic()
    try:
        time.sleep(1.0)  # the flood is in full swing before the owner comes
        for _ in range(FLOOD_OWNER_REQUESTS):
            try:
                # a fresh connection each time (no session): what a browser's new tab, or a script, opens
                r = requests.get(f"http://127.0.0.1:{gate_port}{SCALARS}", headers={"Authorization": f"Bearer {secret}"}, timeout=30)  # fmt: skip
                if r.status_code != 200 or len(r.json()) != 50:
                    failed.append(f"HTTP {r.status_code}")
            except (requests.RequestException, ValueError) as e:
                failed.append(repr(e))
    finally:
        for p in floods:
            p.kill()
        opened = sum(len(p.communicate()[0]) for p in floods)  # one newline per connection
    took = time.monotonic() - t0
    record(
        "connection flood at the gate: 2 processes opening connections that send nothing (far past the 64 pending "
        f"slots) while the owner opens {FLOOD_OWNER_REQUESTS} fresh connections",
        f"{opened} flood connections in {took:.0f} s; owner served {FLOOD_OWNER_REQUESTS - len(failed)}/{FLOOD_OWNER_REQUESTS}",
    )
    assert failed == [], f"{len(failed)} of the owner's {FLOOD_OWNER_REQUESTS} requests failed: {sorted(set(failed))}"
