"""The authenticating gate on its own: it forwards nothing without the secret, and everything with it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import nbboard
from nbboard.tunnels import gate as gate_mod
from nbboard.tunnels.gate import COOKIE, Gate
from nbboard.tunnels.secrets import new_secret
from tests.gates import (
    BEARER,
    SECRET,
    Echo,
    GateThread,
    connect,
    echo_server,
    raw,
    read_body,
    read_head,
    same_origin,
    until_closed,
)


@pytest.fixture
def echo() -> Iterator[int]:
    with echo_server() as port:
        yield port


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
    cookie = echo_gate.gate.auth.cookie
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
        right = echo_gate.gate.auth.cookie
        kwargs["cookies"] = {COOKIE: right[:-1] + ("1" if right.endswith("0") else "0")}  # always one char off
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
    reply = raw(
        echo_gate.gate.port, request_line + b"\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode() + b"\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 400")
    assert Echo.seen == []


def test_path_tricks_do_not_bypass_the_gate(echo_gate: GateThread) -> None:
    for path in ("/..", "/../data/runs", "/%2e%2e/data", "/data%2Fruns", "/.%2F..%2F", f"/?x=1&{gate_mod.TOKEN_PARAM}"):
        reply = raw(echo_gate.gate.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
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
    assert raw(echo_gate.gate.port, both).startswith(b"HTTP/1.1 400")
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (gate_mod.MAX_HEAD + 10) + b"\r\n\r\n"
    assert raw(echo_gate.gate.port, huge).startswith(b"HTTP/1.1 431")
    assert Echo.seen == []


def test_a_refusal_closes_the_connection_and_nothing_after_it_is_read(echo_gate: GateThread) -> None:
    """A refused request ends its connection: whatever follows on it (a body, a pipelined request with the
    secret) is never parsed, so no refused visitor can hold the connection or steer what comes next."""
    pipelined = (
        b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        + b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + SECRET.encode() + b"\r\n\r\n"
    )  # fmt: skip
    reply = raw(echo_gate.gate.port, pipelined)
    assert reply.count(b"HTTP/1.1 401") == 1 and b"Connection: close" in reply and b"HTTP/1.1 200" not in reply
    assert Echo.seen == []
    assert echo_gate.requests == 1


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


# ---------------------------------------------------------------------------
# Issue 10, item 1: tokenless visitors cannot hold connections


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 1000", b"Content-Length: 1000000", b"Content-Length: 30000000", b"Transfer-Encoding: chunked"],
)
def test_tokenless_request_with_a_stalled_body_is_answered_at_once_and_closed(
    echo_gate: GateThread, framing: bytes
) -> None:
    """The body is announced and never sent. The gate answers on the head alone, reads none of the body,
    and closes: the visitor holds nothing (today's main waits for the body forever)."""
    with connect(echo_gate) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /data/plugin/scalars/scalars HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
        reply = until_closed(s)
        took = time.monotonic() - t0
    assert reply.startswith(b"HTTP/1.1 401") and b"Connection: close" in reply
    assert took < gate_mod.LINGER + 2, f"closed after {took:.1f} s"
    assert Echo.seen == []


def test_tokenless_expect_continue_gets_no_100(echo_gate: GateThread) -> None:
    with connect(echo_gate) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reply = until_closed(s)
    assert reply.startswith(b"HTTP/1.1 401") and b" 100 " not in reply


def test_pending_connections_are_capped_and_the_owner_still_gets_in(echo_gate: GateThread) -> None:
    """300 tokenless connections, each holding half a request head. The gate keeps at most MAX_PENDING of
    them (the oldest make way), so the owner's request is served at once and descriptors stay bounded."""
    held = []
    try:
        for _ in range(300):
            s = connect(echo_gate)
            s.sendall(b"GET /data/runs HTTP/1.1\r\nHost: x\r\n")  # never finished
            held.append(s)
        time.sleep(0.3)
        assert len(echo_gate.gate._pending) <= gate_mod.MAX_PENDING
        assert echo_gate.gate.evicted >= 300 - gate_mod.MAX_PENDING
        t0 = time.monotonic()
        resp = requests.get(echo_gate.url + "/owner", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
        assert resp.status_code == 200 and resp.json()["path"] == "/owner"
        assert time.monotonic() - t0 < 2
        closed = 0
        for s in held:
            s.settimeout(0.01)
            try:
                closed += s.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionError:
                closed += 1
        assert closed >= 300 - gate_mod.MAX_PENDING
    finally:
        for s in held:
            s.close()
    assert echo_gate.errors == []


# ---------------------------------------------------------------------------
# Item 2: Expect: 100-continue and interim answers


def test_expect_100_continue_then_the_real_answer_then_the_next_request(echo_gate: GateThread) -> None:
    with connect(echo_gate) as s:
        buf = bytearray()
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        status, _ = read_head(s, buf)
        assert status == 100  # the visitor may now send the body
        s.sendall(b"hello")
        status, headers = read_head(s, buf)
        assert status == 200 and json.loads(read_body(s, buf, headers))["body"] == "hello"
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 200 and json.loads(read_body(s, buf, headers))["path"] == "/next"
    assert [r["path"] for r in Echo.seen] == ["/upload", "/next"]
    assert all("Expect" not in r["headers"] for r in Echo.seen)


class Interim:
    """An upstream that sends 103 Early Hints and an unasked-for 100 before every real answer."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            path = buf.split(b" ")[1]
            conn.sendall(
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                + b"HTTP/1.1 100 Continue\r\n\r\n"
                + b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(path), path)
            )

    def close(self) -> None:
        self.sock.close()


def test_interim_answers_pass_through_before_the_real_one() -> None:
    upstream = Interim()
    g = GateThread(upstream.port)
    try:
        with connect(g) as s:
            buf = bytearray()
            for path in (b"/first", b"/second"):
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
                statuses = []
                while True:
                    status, headers = read_head(s, buf)
                    statuses.append(status)
                    if status >= 200:
                        break
                assert statuses == [103, 100, 200]
                assert read_body(s, buf, headers) == path  # not a stale answer from the request before
    finally:
        g.close()
        upstream.close()
    assert g.errors == []


# ---------------------------------------------------------------------------
# Item 3: malformed chunked bodies


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"ffffffffffffffffffffff\r\n",
        b"5\r\nhello\r\n" * 1 + b"0\r\n" + b"X-Trailer: a\r\n" * 200 + b"\r\n",
        b"5\r\nhe\nlo\r\n0\r\n\r\n\xff\xfe",
    ],
)
def test_malformed_chunked_bodies_get_a_400(echo_gate: GateThread, body: bytes) -> None:
    head = b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Transfer-Encoding: chunked\r\n\r\n"
    reply = raw(echo_gate.gate.port, head + body)
    assert reply.startswith(b"HTTP/1.1 400") or (body.startswith(b"5\r\nhe\n") and reply.startswith(b"HTTP/1.1 200"))
    if reply.startswith(b"HTTP/1.1 400"):
        assert Echo.seen == []
    assert requests.get(echo_gate.url + "/after", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10).ok
    assert echo_gate.errors == []


def test_chunked_bodies_reach_tensorboard_with_a_length(echo_gate: GateThread) -> None:
    head = b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = raw(echo_gate.gate.port, head + b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    (seen,) = Echo.seen
    assert seen["body"] == "hello world" and seen["headers"]["Content-Length"] == "11"
    assert "Transfer-Encoding" not in seen["headers"] and "X-T" not in seen["headers"]


# ---------------------------------------------------------------------------
# Item 4: the login redirect stays on this origin


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "/\\\\evil.example/x",
        "/\\/evil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "/%2F%2Fevil.example",
        "/.//evil.example",
        "/%2e%2e//evil.example",
        "/%2E/%2F/evil.example",
        "/..//evil.example",
        "/x/../..//evil.example",
        "/x%0d%0aSet-Cookie:%20pwn=1",
        "/%09/evil.example",
        "/@evil.example",
        "/https:%2F%2Fevil.example",
    ],
)
def test_login_redirect_stays_on_this_origin(echo_gate: GateThread, target: str) -> None:
    line = f"GET {target}?{gate_mod.TOKEN_PARAM}={SECRET}&next=%0D%0ALocation:%20https://evil.example HTTP/1.1\r\n"
    reply = raw(echo_gate.gate.port, line.encode() + b"Host: x\r\nConnection: close\r\n\r\n")
    head = reply.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    assert head[0] == "HTTP/1.1 302 Found", head
    locations = [line[len("Location: ") :] for line in head if line.lower().startswith("location:")]
    assert len(locations) == 1 and same_origin(locations[0]), locations
    assert [line for line in head if line.lower().startswith("set-cookie:")] == [
        line for line in head if line.startswith(f"Set-Cookie: {COOKIE}=")
    ]
    assert "evil" not in locations[0].split("?")[0] or locations[0].startswith("/")
    assert Echo.seen == []


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /x\nSet-Cookie:pwn=1?nbboard_token=%s HTTP/1.1",
        b"GET /x\rSet-Cookie:pwn=1?nbboard_token=%s HTTP/1.1",
        b"GET /\t/evil.example?nbboard_token=%s HTTP/1.1",
        b"GET /\x00/evil.example?nbboard_token=%s HTTP/1.1",
        b"GET /\xff\xfe/evil.example?nbboard_token=%s HTTP/1.1",
        b"GET \\\\evil.example?nbboard_token=%s HTTP/1.1",
        b"GET //evil.example?nbboard_token=%s HTTP/1.1",
    ],
)
def test_raw_control_bytes_in_the_target_are_refused(echo_gate: GateThread, request_line: bytes) -> None:
    """CR, LF, TAB, NUL or non-ASCII bytes in a request target: 400, never a Location built from them."""
    reply = raw(echo_gate.gate.port, request_line % SECRET.encode() + b"\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400") and b"Location" not in reply and b"pwn" not in reply


# ---------------------------------------------------------------------------
# Item 5: the cookie


def _login_cookie(g: GateThread, **headers: str) -> str:
    resp = requests.get(
        g.url + f"/?{gate_mod.TOKEN_PARAM}={SECRET}", headers=headers, allow_redirects=False, timeout=10
    )
    assert resp.status_code == 302
    return resp.headers["Set-Cookie"]


def test_cookie_differs_per_tunnel_even_with_the_same_secret(echo: int) -> None:
    a, b = GateThread(echo), GateThread(echo)
    try:
        ca = _login_cookie(a).split(";")[0].split("=", 1)[1]
        cb = _login_cookie(b).split(";")[0].split("=", 1)[1]
        assert ca != cb and SECRET not in ca
        assert requests.get(a.url + "/in", cookies={COOKIE: ca}, timeout=10).status_code == 200
        assert requests.get(b.url + "/in", cookies={COOKIE: ca}, timeout=10).status_code == 403
    finally:
        a.close()
        b.close()


def test_cookie_expires_with_the_tunnel(echo: int) -> None:
    timed = GateThread(echo, expires_at=time.time() + 3600)
    open_ended = GateThread(echo)
    try:
        attrs = [a.strip() for a in _login_cookie(timed).split(";")]
        max_age = next(int(a.split("=")[1]) for a in attrs if a.startswith("Max-Age="))
        assert 3590 <= max_age <= 3600
        session = _login_cookie(open_ended)
        assert "Max-Age" not in session and "Expires" not in session  # a session cookie
    finally:
        timed.close()
        open_ended.close()


def test_nothing_passes_once_the_tunnel_has_expired(echo: int) -> None:
    g = GateThread(echo, expires_at=time.time() + 1.5)
    try:
        cookie = _login_cookie(g).split(";")[0].split("=", 1)[1]
        assert requests.get(g.url + "/in", cookies={COOKIE: cookie}, timeout=10).status_code == 200
        time.sleep(1.6)
        assert requests.get(g.url + "/in", cookies={COOKIE: cookie}, timeout=10).status_code == 403
        assert requests.get(g.url + "/in", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10).status_code == 403
    finally:
        g.close()
    assert [r["path"] for r in Echo.seen] == ["/in"]


def test_cookie_is_secure_when_the_public_url_is_https(echo: int) -> None:
    g = GateThread(echo, public_url="https://abc.loca.lt")
    try:
        cookie = _login_cookie(g)  # no X-Forwarded-Proto: localtunnel's client sends none
        assert "Secure" in cookie and "SameSite=None" in cookie and "HttpOnly" in cookie
        g.gate.public_url = "http://abc.lt.test"
        plain = _login_cookie(g)
        assert "Secure" not in plain and "SameSite=Lax" in plain
    finally:
        g.close()


# ---------------------------------------------------------------------------
# More hostile shapes


def test_too_many_header_lines_get_a_431() -> None:
    """Answered by the gate itself: the upstream here (unlike Python's http.server) takes any number."""
    upstream = Interim()
    g = GateThread(upstream.port)
    try:
        head = b"GET / HTTP/1.1\r\nHost: x\r\n" + BEARER + b"".join(b"X-%d: y\r\n" % i for i in range(150))
        assert raw(g.gate.port, head + b"\r\n").startswith(b"HTTP/1.1 431")
    finally:
        g.close()
        upstream.close()


def test_an_authorised_body_that_stalls_is_dropped_after_the_body_timeout(
    echo_gate: GateThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_mod, "BODY_TIMEOUT", 0.5)
    with connect(echo_gate) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Content-Length: 100\r\n\r\nonly part")
        until_closed(s)
        assert time.monotonic() - t0 < 5
    assert echo_gate.errors == []


def test_a_refusal_to_a_head_request_has_no_body(echo_gate: GateThread) -> None:
    reply = raw(echo_gate.gate.port, b"HEAD /data/runs HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401") and body == b""


# ---------------------------------------------------------------------------
# Issue 17 item 2: cookie tossing from a sibling tunnel


def test_a_tossed_cookie_does_not_lock_the_owner_out(echo: int) -> None:
    """loca.lt is no public suffix, so any other tunnel can set ``nbboard_auth=x; Domain=loca.lt; Path=/data``;
    the browser then sends that cookie first (its path is more specific) and the owner's own after it. The gate
    serves the owner as long as one of the first MAX_COOKIES values is valid (on the old code: 403 for every
    /data request, and logging in again did not help)."""
    from nbboard.tunnels.auth import MAX_COOKIES

    g = GateThread(echo)
    try:
        real = _login_cookie(g).split(";")[0].split("=", 1)[1]
        for tossed in (["x"], ["", "x" * 64, real[:-1] + "0"]):
            jar = "; ".join([f"{COOKIE}={v}" for v in tossed] + [f"{COOKIE}={real}", "other=kept"])
            resp = requests.get(g.url + "/data/runs", headers={"Cookie": jar}, timeout=10)
            assert resp.status_code == 200 and resp.json()["path"] == "/data/runs"
            assert resp.json()["headers"]["Cookie"] == "other=kept"  # none of them reaches TensorBoard
        # Only tossed ones: still refused; and the bound holds (a jar flooded beyond it is the provider's problem).
        only = "; ".join(f"{COOKIE}=x{i}" for i in range(3))
        assert requests.get(g.url + "/data/runs", headers={"Cookie": only}, timeout=10).status_code == 403
        flooded = "; ".join([f"{COOKIE}=x{i}" for i in range(MAX_COOKIES)] + [f"{COOKIE}={real}"])
        assert requests.get(g.url + "/data/runs", headers={"Cookie": flooded}, timeout=10).status_code == 403
    finally:
        g.close()
    assert [r["path"] for r in Echo.seen] == ["/data/runs", "/data/runs"]


def test_over_https_the_cookie_is_a_host_cookie(echo: int) -> None:
    """Over https the login cookie is ``__Host-nbboard_auth``: Secure, Path=/ and no Domain, so browsers let no
    other host set or shadow it. It opens the gate like the plain one, and is stripped before TensorBoard."""
    g = GateThread(echo, public_url="https://abc.loca.lt")
    try:
        attrs = [a.strip() for a in _login_cookie(g).split(";")]
        name, _, value = attrs[0].partition("=")
        assert name == "__Host-nbboard_auth" and value == g.gate.auth.cookie
        assert "Secure" in attrs and "Path=/" in attrs and not any(a.lower().startswith("domain") for a in attrs)
        from nbboard.tunnels.auth import MAX_COOKIES

        tossed = "; ".join(f"{COOKIE}=tossed{i}" for i in range(MAX_COOKIES + 5))  # however many plain ones
        jar = f"{tossed}; __Host-nbboard_auth={value}; other=kept"
        resp = requests.get(g.url + "/in", headers={"Cookie": jar}, timeout=10)
        assert resp.status_code == 200 and resp.json()["headers"]["Cookie"] == "other=kept"
    finally:
        g.close()


def test_a_token_behind_a_flood_of_query_fields_is_not_parsed_for(echo_gate: GateThread) -> None:
    """A 64 KiB target of 30 000 tiny fields, no secret needed, cost the gate's event loop 24 ms to parse (every
    visitor waited). Past ``MAX_QUERY_FIELDS`` the query is not read at all: a token hidden behind the flood is not
    seen (401, nothing forwarded), while the owner's own requests, with a few fields and the cookie, pass."""
    from nbboard.tunnels import auth

    flood = "a&" * 30_000
    resp = requests.get(f"{echo_gate.url}/data/runs?{flood}{gate_mod.TOKEN_PARAM}={SECRET}", timeout=30)
    assert resp.status_code == 401 and Echo.seen == []
    few = "&".join(f"f{i}=1" for i in range(auth.MAX_QUERY_FIELDS - 1))
    login = requests.get(f"{echo_gate.url}/data/runs?{few}&{gate_mod.TOKEN_PARAM}={SECRET}", allow_redirects=False)
    assert login.status_code == 302 and gate_mod.TOKEN_PARAM not in login.headers["Location"]
