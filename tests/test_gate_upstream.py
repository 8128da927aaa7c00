"""The gate's connections to TensorBoard: one per request, never carrying bytes from one answer into the
next, and all of them ended when the gate closes.

The upstreams here are scripted raw sockets on loopback (TensorBoard itself cannot be made to misbehave
on cue).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from nbboard.tunnels.gate import TOKEN_PARAM
from tests.gates import BEARER, SECRET, GateThread, connect, read_body, read_head, until_closed
from tests.helpers import wait_until

AUTH = {"Authorization": f"Bearer {SECRET}"}


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + b"".join(extra) + b"\r\n" + body


class Scripted:
    """An upstream whose answers come from ``script(connection number, request number on it, method, path)``:
    bytes to send (then the connection is closed if they start with ``HTTP/1.0``), or None to close it
    without an answer. ``seen`` lists (connection, method, path)."""

    def __init__(self, script: Callable[[int, int, str, str], bytes | None]) -> None:
        self.script = script
        self.seen: list[tuple[int, str, str]] = []
        self.open: set[socket.socket] = set()
        self.socks: dict[int, socket.socket] = {}
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                sock, _ = self.server.accept()
                self._conns += 1
                self.open.add(sock)
                self.socks[self._conns - 1] = sock
                threading.Thread(target=self._serve, args=(sock, self._conns - 1), daemon=True).start()

    def _serve(self, sock: socket.socket, conn: int) -> None:
        with contextlib.suppress(OSError), sock:
            self._answer(sock, conn)
        self.open.discard(sock)

    def _answer(self, sock: socket.socket, conn: int) -> None:
        buf = b""
        for n in range(1000):
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            method, path = (part.decode() for part in head.split(b" ")[:2])
            lines = head.lower().split(b"\r\n")
            length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), 0)
            while len(buf) < length:
                buf += sock.recv(65536)
            buf = buf[length:]
            self.seen.append((conn, method, path))
            answer = self.script(conn, n, method, path)
            if answer is None:
                return
            sock.sendall(answer)
            if answer.startswith(b"HTTP/1.0"):  # an answer framed by closing the connection
                return

    def close(self) -> None:
        self.server.close()
        for sock in list(self.open):
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def gate_before(script: Callable[[int, int, str, str], bytes | None]) -> Iterator[tuple[GateThread, Scripted]]:
    upstream = Scripted(script)
    gate = GateThread(upstream.port)
    try:
        yield gate, upstream
    finally:
        gate.close()
        upstream.close()


def get(gate: GateThread, session: requests.Session, path: str, method: str = "GET") -> requests.Response:
    return session.request(method, gate.url + path, headers=AUTH, timeout=10, data=b"x" if method == "POST" else None)


def test_bytes_after_an_answer_never_reach_the_next_request() -> None:
    """An upstream that sends a second, unasked-for answer right behind the first (a desync attempt): the
    connection ends with the first answer, and the next request gets its own answer from a new connection
    (a guard for anyone who adds keep-alive towards TensorBoard: werkzeug closes after every answer today)."""

    def script(conn: int, n: int, method: str, path: str) -> bytes:
        return ok(path.encode()) + (ok(b"POISON") if path == "/one" else b"")

    with gate_before(script) as (gate, upstream), requests.Session() as s:
        assert get(gate, s, "/one").content == b"/one"
        assert get(gate, s, "/two").content == b"/two"
        assert [c for c, _, _ in upstream.seen] == [0, 1]


def test_a_visitor_that_leaves_mid_answer_leaves_nothing_for_the_next() -> None:
    """A visitor that closes while its 4 MiB answer is still coming: the next visitor gets its own answer,
    never the rest of that one."""
    big = b"y" * (4 * 1024 * 1024)
    with gate_before(lambda conn, n, m, path: ok(big) if path == "/big" else ok(path.encode())) as (gate, upstream):
        with connect(gate) as s:
            s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
            s.recv(1024)
        with connect(gate) as s:
            buf = bytearray()
            s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
            status, headers = read_head(s, buf)
            assert status == 200 and read_body(s, buf, headers) == b"/next"


def test_closing_the_gate_ends_a_request_that_waits_for_tensorboard() -> None:
    """A tunnel closed while TensorBoard is still thinking: the visitor's connection and the one to
    TensorBoard both end at once (before, the request waited out its 300 s for TensorBoard's answer)."""
    release = threading.Event()

    def script(conn: int, n: int, method: str, path: str) -> bytes:
        release.wait(30)
        return ok(path.encode())

    with gate_before(script) as (gate, upstream):
        with connect(gate) as s:
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
            wait_until(lambda: upstream.seen, "the request to reach the upstream", 10)
            gate.close()
            gate.close = lambda: None  # type: ignore[method-assign]
            assert until_closed(s) == b""
        release.set()
        wait_until(lambda: not upstream.open, "the upstream connection to end", 10)


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
UNTIL_CLOSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabcde"
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde"


@pytest.mark.parametrize(
    ("version", "answer", "framing"),
    [
        ("1.1", CHUNKED, "transfer-encoding"),
        ("1.1", UNTIL_CLOSE, "transfer-encoding"),
        ("1.1", LENGTH, "content-length"),
        ("1.0", CHUNKED, "close"),
        ("1.0", UNTIL_CLOSE, "close"),
        ("1.0", LENGTH, "content-length"),
    ],
    ids=["chunked", "until-close", "length", "1.0-chunked", "1.0-until-close", "1.0-length"],
)
def test_an_answer_is_framed_anew_for_the_visitor(version: str, answer: bytes, framing: str) -> None:
    """Whatever framing TensorBoard's answer had, the visitor gets the same body, framed for its own HTTP
    version (chunked for 1.1 when there is no length, until close for 1.0), and an HTTP/1.1 connection
    carries the next request."""
    with gate_before(lambda conn, n, m, path: answer) as (gate, _upstream), connect(gate) as s:
        buf = bytearray()
        request = f"GET /a HTTP/{version}\r\nHost: x\r\n".encode() + BEARER + b"\r\n"
        s.sendall(request)
        status, headers = read_head(s, buf)
        if framing == "close":
            assert status == 200 and headers["connection"] == "close" and "transfer-encoding" not in headers
            assert bytes(buf) + until_closed(s) == b"abcde"
            return
        assert status == 200 and framing in headers and read_body(s, buf, headers) == b"abcde"
        if version == "1.0":
            assert headers["connection"] == "close" and until_closed(s) == b""
            return
        s.sendall(request)
        status, headers = read_head(s, buf)
        assert status == 200 and read_body(s, buf, headers) == b"abcde"


@pytest.mark.parametrize("case", ["HEAD", "204", "304"])
def test_an_answer_without_a_body_sends_none_and_the_connection_goes_on(case: str) -> None:
    """HEAD, 204 and 304 answers carry no body (TensorBoard's Content-Length after a HEAD is passed on as
    the size a GET would have): nothing after the head, and the next request on the connection is answered."""
    answers = {
        "HEAD": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde",  # a body after HEAD: never passed on
        "204": b"HTTP/1.1 204 No Content\r\n\r\n",
        "304": b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
    }

    def script(conn: int, n: int, method: str, path: str) -> bytes:
        return answers[case] if path == "/first" else ok(b"next")

    method = "HEAD" if case == "HEAD" else "GET"
    with gate_before(script) as (gate, _upstream), connect(gate) as s:
        buf = bytearray()
        s.sendall(f"{method} /first HTTP/1.1\r\nHost: x\r\n".encode() + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == int(case) if case != "HEAD" else status == 200
        assert "transfer-encoding" not in headers and headers.get("content-length") in (None, "5")
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 200 and read_body(s, buf, headers) == b"next"


def test_a_204_never_carries_a_content_length() -> None:
    """RFC 9110 8.6: a 204 has no Content-Length. One from an upstream that lies (``Content-Length: 5`` and five
    bytes) was passed on, and an intermediary that trusts it would take five bytes of the next answer as the
    204's body; the next answer on the connection is intact."""

    def script(conn: int, n: int, method: str, path: str) -> bytes:
        return b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nabcde" if path == "/first" else ok(b"next")

    with gate_before(script) as (gate, _upstream), connect(gate) as s:
        buf = bytearray()
        s.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 204 and "content-length" not in headers and "transfer-encoding" not in headers
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 200 and read_body(s, buf, headers) == b"next"


@pytest.mark.parametrize("how", ["forwarded", "login"])
def test_close_in_a_second_connection_line_ends_the_connection(how: str) -> None:
    """RFC 9112 9.6: a request with the ``close`` option ends its connection after the answer. The gate read only
    the first Connection line, so ``Connection: keep-alive`` then ``Connection: close`` got an answer without
    ``Connection: close`` and a connection held open (h11's server side, which framed answers before, read
    every line). Both the answers TensorBoard gives and the gate's login redirect."""
    target, auth = ("/a", BEARER) if how == "forwarded" else (f"/a?{TOKEN_PARAM}={SECRET}", b"")
    with gate_before(lambda conn, n, m, path: ok(b"abc")) as (gate, _upstream), connect(gate) as s:
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n".encode()
            + auth
            + b"\r\n"
        )
        buf = bytearray()
        status, headers = read_head(s, buf)
        assert status == (200 if how == "forwarded" else 302) and headers.get("connection") == "close"
        assert bytes(buf) + until_closed(s) == (b"abc" if how == "forwarded" else b"")


def test_the_gates_own_502_to_a_head_request_has_no_body() -> None:
    """RFC 9110 9.3.2: no content in an answer to HEAD, the gate's own included (its refusals had none, its
    502s had a sentence)."""
    with gate_before(lambda conn, n, m, path: b"not HTTP\r\n\r\n") as (gate, _upstream), connect(gate) as s:
        s.sendall(b"HEAD /a HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        head, _, body = until_closed(s).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 502 ") and b"Content-Length: 48" in head and body == b""


def test_an_answer_cut_off_resets_an_http_1_0_visitors_connection() -> None:
    """An HTTP/1.0 visitor's answer is framed by the end of its connection, so a clean end says "that was all":
    the first half of an answer TensorBoard broke off looked whole. The connection is reset instead, which
    clients report as an error."""
    cut = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"  # then Scripted closes
    with gate_before(lambda conn, n, m, path: cut) as (gate, _upstream), connect(gate) as s:
        s.sendall(b"GET /a HTTP/1.0\r\n" + BEARER + b"\r\n")
        with pytest.raises(ConnectionResetError):
            until_closed(s)


def test_closing_the_gate_ends_a_request_still_connecting_to_tensorboard() -> None:
    """A TensorBoard that stopped accepting (its backlog full, so a connection to it hangs) while the tunnel
    closes: the request waiting to connect ends with the gate. Before, close() waited 5 s for it and returned
    with it still connecting, to send its request after the tunnel had closed or wait out BODY_TIMEOUT."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as stalled:
        port = stalled.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]  # fill the backlog: the next connection's SYN is dropped
        for q in queued:
            q.setblocking(False)
            q.connect_ex(("127.0.0.1", port))
        gate = GateThread(port)
        try:
            with connect(gate) as s:
                s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
                wait_until(lambda: gate.requests == 1, "the request to reach the gate", 10)
                gate.close()
                gate.close = lambda: None  # type: ignore[method-assign]
                assert until_closed(s) == b""
            assert asyncio.all_tasks(gate.loop) == set() and gate.errors == []
        finally:
            for q in queued:
                q.close()


def test_an_upstreams_length_is_passed_on_only_when_unambiguous() -> None:
    """Transfer-Encoding beside Content-Length (a smuggling classic): the chunked framing counts, the length is
    not passed on, and the next answer on the connection is intact. Two lengths that differ are a 502."""
    answers = {
        "/both": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "/two": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    }
    with gate_before(lambda conn, n, m, path: answers.get(path, ok(b"next"))) as (gate, _upstream), connect(gate) as s:
        buf = bytearray()
        s.sendall(b"GET /both HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 200 and "content-length" not in headers and read_body(s, buf, headers) == b"abc"
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 200 and read_body(s, buf, headers) == b"next"
        s.sendall(b"GET /two HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 502 and headers["connection"] == "close"


def test_obs_text_in_tensorboards_answer_reaches_the_visitor_byte_for_byte() -> None:
    """Bytes 0x80-0xFF in a reason phrase or header value (obs-text, which h11 reads): passed on as they came.
    When h11 framed the visitor's answer from text headers, it could not encode them: no answer, a traceback."""
    answer = b"HTTP/1.1 200 Tr\xe8s bien\r\nX-Label: caf\xe9 \xff\r\nContent-Length: 2\r\n\r\nok"
    with gate_before(lambda conn, n, m, path: answer) as (gate, _upstream), connect(gate) as s:
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + BEARER + b"\r\n")
        reply = until_closed(s)
    assert reply.startswith(b"HTTP/1.1 200 Tr\xe8s bien\r\n") and b"\r\nX-Label: caf\xe9 \xff\r\n" in reply
    assert reply.endswith(b"\r\n\r\nok") and gate.errors == []
