"""The authenticating gate on its own: it forwards nothing without the secret, and everything with it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import nbboard
from nbboard.tunnels import gate as gate_mod
from nbboard.tunnels.gate import COOKIE, Gate, cookie_value
from nbboard.tunnels.secrets import new_secret

SECRET = new_secret()


class GateThread:
    """A Gate on its own event loop in a thread, as the helper runs it."""

    def __init__(self, upstream_port: int, secret: str | None = SECRET) -> None:
        self.loop = asyncio.new_event_loop()
        self.gate = Gate(upstream_port, secret)
        self.requests = 0
        self.gate.on_request = self._count
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.gate.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.gate.port}"

    def _count(self) -> None:
        self.requests += 1

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gate.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Echo(BaseHTTPRequestHandler):
    """Upstream stand-in that reports what reached it (TensorBoard cannot show us its request headers)."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {"path": self.path, "headers": dict(self.headers), "body": body.decode()}
        Echo.seen.append(record)
        data = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def echo() -> Iterator[int]:
    Echo.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def echo_gate(echo: int) -> Iterator[GateThread]:
    g = GateThread(echo)
    yield g
    g.close()


@pytest.fixture
def tb_gate(isolated: Path, demo_logs: Path) -> Iterator[GateThread]:
    board = nbboard.start(str(demo_logs))
    g = GateThread(board.port)
    yield g
    g.close()


def _raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_token_then_cookie_then_tensorboard_data(tb_gate: GateThread) -> None:
    s = requests.Session()
    assert s.get(tb_gate.url + "/data/runs", timeout=10).status_code == 401
    login = s.get(tb_gate.url + f"/?{gate_mod.TOKEN_PARAM}={SECRET}&x=1", allow_redirects=False, timeout=10)
    assert login.status_code == 302 and login.headers["Location"] == "/?x=1"
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and SECRET not in cookie
    assert sorted(s.get(tb_gate.url + "/data/runs", timeout=10).json()) == ["eval", "train"]
    # TensorBoard's POST data requests, a large static file, and keep-alive on one connection:
    series = s.post(
        tb_gate.url + "/data/plugin/timeseries/timeSeries",
        data={"requests": json.dumps([{"plugin": "scalars", "tag": "loss", "run": "train"}])},
        timeout=10,
    )
    assert series.status_code == 200 and series.json()[0]["runToSeries"]["train"][-1]["step"] == 49
    big = s.get(tb_gate.url + "/index.js", timeout=30)
    assert big.status_code == 200 and len(big.content) > 1_000_000


def test_secure_cookie_behind_https(echo_gate: GateThread) -> None:
    resp = requests.get(
        echo_gate.url + f"/?{gate_mod.TOKEN_PARAM}={SECRET}",
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=10,
    )
    assert "Secure" in resp.headers["Set-Cookie"] and "SameSite=None" in resp.headers["Set-Cookie"]


def test_credentials_are_not_forwarded(echo_gate: GateThread) -> None:
    cookie = cookie_value(SECRET)
    requests.get(echo_gate.url + "/a", cookies={COOKIE: cookie, "other": "kept"}, timeout=10)
    requests.get(echo_gate.url + "/b", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
    (a, b) = Echo.seen
    assert a["headers"]["Cookie"] == "other=kept"
    assert "Authorization" not in b["headers"]
    assert all(SECRET not in json.dumps(r) and cookie not in json.dumps(r) for r in Echo.seen)


@pytest.mark.parametrize(
    "how",
    ["none", "wrong", "truncated", "case", "in_path", "wrong_cookie", "wrong_bearer", "basic", "two_tokens", "empty"],
)
def test_nothing_is_forwarded_without_the_secret(echo_gate: GateThread, how: str) -> None:
    url = echo_gate.url + "/data/runs"
    kwargs: dict = {}
    if how == "wrong":
        url += f"?{gate_mod.TOKEN_PARAM}={new_secret()}"
    elif how == "truncated":
        url += f"?{gate_mod.TOKEN_PARAM}={SECRET[:-1]}"
    elif how == "case":
        url += f"?{gate_mod.TOKEN_PARAM}={SECRET.swapcase()}"
    elif how == "in_path":
        url = echo_gate.url + f"/{SECRET}/data/runs"
    elif how == "wrong_cookie":
        kwargs["cookies"] = {COOKIE: cookie_value(SECRET)[:-1] + "0"}
    elif how == "wrong_bearer":
        kwargs["headers"] = {"Authorization": f"Bearer {SECRET[:-1]}"}
    elif how == "basic":
        kwargs["auth"] = ("nbboard", SECRET)
    elif how == "two_tokens":
        url += f"?{gate_mod.TOKEN_PARAM}={SECRET}&{gate_mod.TOKEN_PARAM}=x"
    elif how == "empty":
        url += f"?{gate_mod.TOKEN_PARAM}="
    resp = requests.get(url, timeout=10, allow_redirects=False, **kwargs)
    assert resp.status_code in (401, 403)
    assert Echo.seen == []


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET http://127.0.0.1:1/data/runs HTTP/1.1",
        b"GET //evil.example/data HTTP/1.1",
        b"CONNECT 127.0.0.1:22 HTTP/1.1",
        b"GET * HTTP/1.1",
        b"GET /data/runs HTTP/2.0",
        b"get /data/runs HTTP/1.1",
        b"GET /data/runs",
    ],
)
def test_odd_request_targets_are_refused_even_with_the_secret(echo_gate: GateThread, request_line: bytes) -> None:
    reply = _raw(
        echo_gate.gate.port, request_line + b"\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode() + b"\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 400")
    assert Echo.seen == []


def test_path_tricks_do_not_bypass_the_gate(echo_gate: GateThread) -> None:
    for path in ("/..", "/../data/runs", "/%2e%2e/data", "/data%2Fruns", "/.%2F..%2F", f"/?x=1&{gate_mod.TOKEN_PARAM}"):
        reply = _raw(echo_gate.gate.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert reply.split(b" ")[1] in (b"401", b"403", b"400"), (path, reply[:80])
    assert Echo.seen == []
    # With the secret, odd paths reach TensorBoard unchanged (it serves only its own routes).
    requests.get(echo_gate.url + "/data%2Fruns", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
    assert Echo.seen[-1]["path"] == "/data%2Fruns"


def test_smuggling_and_huge_headers(echo_gate: GateThread) -> None:
    both = (
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer "
        + SECRET.encode()
        + b"\r\n\r\n0\r\n\r\n"
    )
    assert _raw(echo_gate.gate.port, both).startswith(b"HTTP/1.1 400")
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (gate_mod.MAX_HEAD + 10) + b"\r\n\r\n"
    assert _raw(echo_gate.gate.port, huge).startswith(b"HTTP/1.1 431")
    assert Echo.seen == []


def test_refused_requests_keep_the_connection_usable(echo_gate: GateThread) -> None:
    """A visitor without the secret, then one with it, over the same socket (tunnels multiplex visitors)."""
    raw = (
        b"GET /data/runs HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        + b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + SECRET.encode() + b"\r\n\r\n"
    )  # fmt: skip
    reply = _raw(echo_gate.gate.port, raw)
    assert reply.count(b"HTTP/1.1 401") == 2 and reply.count(b"HTTP/1.1 200") == 1
    assert [r["path"] for r in Echo.seen] == ["/ok"]


def test_slow_clients_are_dropped(echo_gate: GateThread, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate_mod, "HEAD_TIMEOUT", 0.5)
    with socket.create_connection(("127.0.0.1", echo_gate.gate.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        t0 = time.monotonic()
        assert s.recv(100) == b""  # closed by the gate
        assert time.monotonic() - t0 < 4
    assert Echo.seen == []


def test_no_auth_gate_forwards_everything(echo: int) -> None:
    g = GateThread(echo, secret=None)
    try:
        assert requests.get(g.url + "/anything", timeout=10).json()["path"] == "/anything"
    finally:
        g.close()


def test_upstream_down_is_a_502(isolated: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    g = GateThread(dead)
    try:
        resp = requests.get(g.url + "/", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
        assert resp.status_code == 502 and "not answering" in resp.text
    finally:
        g.close()


def test_weak_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        Gate(1, "short")
