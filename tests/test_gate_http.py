"""The gate on h11 stays at least as strict as its hand-written parser was (issue 20, item 6).

h11 accepts things the gate refuses: each case here is one such difference, sent with the secret (so it is
the framing rule that refuses, not the auth) to a real Gate in front of an upstream that records what
reaches it. Then the cases h11 adds or changes (Host, pipelining, upgrades, HTTP/1.0, slow heads).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from nbboard.tunnels import gate as gate_mod
from tests.gates import BEARER, Echo, GateThread, connect, echo_server, raw, read_body, read_head, until_closed


@pytest.fixture
def echo_gate() -> Iterator[GateThread]:
    with echo_server() as port:
        g = GateThread(port)
        yield g
        g.close()


def _refused(g: GateThread, data: bytes, status: bytes = b"400") -> None:
    reply = raw(g.gate.port, data)
    assert reply.startswith(b"HTTP/1.1 " + status), reply[:200]
    assert b"Connection: close" in reply
    assert Echo.seen == []
    assert g.errors == []


# ---------------------------------------------------------------------------
# What h11 accepts and the gate refuses (each held by a rule in gate_http)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /x HTTP/1.1\nHost: x\n" + BEARER.replace(b"\r\n", b"\n") + b"\n",  # LF only: old code hung, no answer
        b"GET /x HTTP/1.1\r\nHost: x\n" + BEARER + b"\r\n",  # one bare LF
        b"GET /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\n\r\n",  # a head ending in LF CRLF
        b"GET /x HTTP/1.1\r\nHost: x\rX: y\r\n" + BEARER + b"\r\n",  # a bare CR
    ],
)
def test_bare_line_feeds_and_carriage_returns_are_refused(echo_gate: GateThread, head: bytes) -> None:
    """h11 splits a head on LF and ends it at LF LF; a front proxy that splits on CRLF only would read a
    different request. The gate answers 400 (the hand-written parser refused or ignored these heads)."""
    _refused(echo_gate, head)


def test_obsolete_line_folding_is_refused(echo_gate: GateThread) -> None:
    """h11 unfolds ``X: a\\r\\n b`` into one header; the gate refuses folding, in heads and in trailers."""
    _refused(echo_gate, b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n" + BEARER + b"\r\n")
    _refused(echo_gate, b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n" + BEARER + b"\r\n")
    chunked = b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Transfer-Encoding: chunked\r\n\r\n"
    _refused(echo_gate, chunked + b"1\r\na\r\n0\r\nX-T: 1\r\n folded\r\n\r\n")


@pytest.mark.parametrize("byte", [b"\x01", b"\x08", b"\x1b", b"\x7f"])
def test_control_characters_in_header_values_are_refused(echo_gate: GateThread, byte: bytes) -> None:
    """h11 lets every byte but NUL, CR, LF and other whitespace through in a value; the gate only TAB, SP,
    visible ASCII and obs-text (an escape sequence must not reach TensorBoard's logs)."""
    _refused(echo_gate, b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a" + byte + b"b\r\n" + BEARER + b"\r\n")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5, 5\r\n",  # h11 reads one length of 5
        b"Content-Length: 5\r\nContent-Length: 5\r\n",  # h11 keeps the first
        b"Content-Length: 5,5\r\n",
        b"content-length: 5\r\nContent-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",  # h11 would go by the chunks
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 0000000000000005\r\n",  # 16 digits: h11 allows 20
    ],
)
def test_ambiguous_lengths_are_refused(echo_gate: GateThread, framing: bytes) -> None:
    """Request smuggling: two lengths that agree for h11 may not agree for the proxy in front."""
    _refused(echo_gate, b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + framing + b"\r\nhello")


@pytest.mark.parametrize(
    "line",
    [
        b"GET /x HTTP/1.2",
        b"GET /x HTTP/1.9",
        b"GET /x HTTP/0.9",
        b"GET /x HTTP/3.0",
        b"G-T /x HTTP/1.1",  # a token, so a method for h11
        b"Get /x HTTP/1.1",
        b"OPTIONS * HTTP/1.1",
        b"GET example.com:80 HTTP/1.1",
        b"GET https://example.com/x HTTP/1.1",
        b"CONNECT /x HTTP/1.1",
    ],
)
def test_only_http_1_0_and_1_1_and_origin_form_pass(echo_gate: GateThread, line: bytes) -> None:
    """h11 takes any ``HTTP/d.d``, any token as a method and any visible target: the gate, no open proxy,
    takes HTTP/1.0 and 1.1, upper-case methods and origin-form targets only."""
    _refused(echo_gate, line + b"\r\nHost: x\r\n" + BEARER + b"\r\n")


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
def test_a_second_host_header_is_refused(echo_gate: GateThread, version: bytes) -> None:
    """h11 refuses it (in HTTP/1.0 too), as the hand-written parser did; this keeps it so."""
    _refused(echo_gate, b"GET /x " + version + b"\r\nHost: x\r\nHost: evil.example\r\n" + BEARER + b"\r\n")


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_a_head_of_too_many_lines_is_counted_before_h11_parses_it(echo_gate: GateThread, eol: bytes) -> None:
    """A flood of tiny header lines: h11 parsed all of a 64 KiB head's ~13000 lines (34 ms of the event loop
    per refused head, 100x the hand-written parser, which counted first) before the gate counted them. The
    lines of a whole head are counted first now, so a line h11 would refuse as malformed, past the 100th, is
    never parsed: the answer is 431 for the count, not h11's 400."""
    lines = [b"X-%d: a" % i for i in range(gate_mod.MAX_HEADERS + 20)]
    lines[gate_mod.MAX_HEADERS + 10] = b"not a header line"
    head = eol.join([b"GET /x HTTP/1.1", b"Host: x", *lines, BEARER.rstrip(b"\r\n"), b"", b""])
    _refused(echo_gate, head, b"431")


def test_a_head_larger_than_the_cap_is_refused_even_when_it_arrives_whole(echo_gate: GateThread) -> None:
    """h11 bounds only a head still arriving; one that completes in the read that crosses MAX_HEAD passes
    h11, and the gate's own check answers 431."""
    pad = b"X-Pad: " + b"p" * 1000 + b"\r\n"
    head = b"GET /x HTTP/1.1\r\nHost: x\r\n" + BEARER + pad * (gate_mod.MAX_HEAD // len(pad) + 2) + b"\r\n"
    assert gate_mod.MAX_HEAD < len(head) < 2 * gate_mod.MAX_HEAD
    _refused(echo_gate, head, b"431")


@pytest.mark.parametrize(
    "body",
    [
        b"5\t\r\nhello\r\n0\r\n\r\n",  # h11 allows whitespace after the size
        b"5 ;ext=1\r\nhello\r\n0\r\n\r\n",
        b"0000000000000005\r\nhello\r\n0\r\n\r\n",  # 16 hex digits: h11 allows 20
        b"5\r\nhello\r\n0 \r\n\r\n",  # the last chunk too
        b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n",  # a bare LF in the trailers
        b"5\r\nhello\r\n0\r\nX-T: 1\n\n",  # trailers ended by LF LF
        b"5\r\nhello\r\n0\r\n" + b"X-T: 1\r\n" * (gate_mod.MAX_HEADERS + 1) + b"\r\n",
    ],
)
def test_chunk_framing_h11_tolerates_is_refused(echo_gate: GateThread, body: bytes) -> None:
    head = b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Transfer-Encoding: chunked\r\n\r\n"
    _refused(echo_gate, head + body)


def test_chunked_bodies_split_anywhere_still_arrive_whole(echo_gate: GateThread) -> None:
    """The chunk check follows h11 across reads: the same body sent a byte at a time reaches TensorBoard."""
    head = b"POST /x HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"5;a=b\r\nhello\r\n1\r\n \r\nA\r\n" + b"w" * 10 + b"\r\n0\r\nX-T: 1\r\n\r\n"
    with connect(echo_gate) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head)
        for i in range(len(body)):
            s.sendall(body[i : i + 1])
            time.sleep(0.002)
        reply = until_closed(s)
    assert reply.startswith(b"HTTP/1.1 200")
    (seen,) = Echo.seen
    assert seen["body"] == "hello " + "w" * 10 and seen["headers"]["Content-Length"] == "16"


# ---------------------------------------------------------------------------
# What h11 changes or adds


def test_http_1_1_without_host_is_refused(echo_gate: GateThread) -> None:
    """RFC 9112 3.2 (h11 enforces it): a request without Host is a 400. The hand-written parser forwarded it."""
    _refused(echo_gate, b"GET /x HTTP/1.1\r\n" + BEARER + b"\r\n")


def test_http_1_0_is_served_and_its_connection_closed(echo_gate: GateThread) -> None:
    """HTTP/1.0 may leave Host out; the gate names TensorBoard's. Its connection ends after one answer, even
    with ``Connection: keep-alive`` (h11's rule; the hand-written gate kept such connections open)."""
    with connect(echo_gate) as s:
        s.sendall(b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n" + BEARER + b"\r\n")
        reply = until_closed(s)
    assert reply.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding" not in reply
    assert Echo.seen[0]["path"] == "/ten" and Echo.seen[0]["headers"]["Host"].startswith("127.0.0.1:")


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_a_connection_header_naming_host_still_reaches_tensorboard(
    echo_gate: GateThread, version: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """``Connection: host`` names Host as hop-by-hop; dropping it left the gate's request to TensorBoard without
    Host, h11 refused to send it (LocalProtocolError), and the visitor got no answer while every such request
    logged a traceback. Host is never hop-by-hop: the visitor's goes on."""
    reply = raw(
        echo_gate.gate.port, b"GET /h HTTP/" + version + b"\r\nHost: x\r\nConnection: host\r\n" + BEARER + b"\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert Echo.seen[0]["headers"]["Host"] == "x"
    assert not [r for r in caplog.records if r.levelname == "ERROR"] and echo_gate.errors == []


def test_an_empty_line_before_a_request_is_ignored(echo_gate: GateThread) -> None:
    """RFC 9112 2.2 (a client may send a CRLF after a POST body), as before; h11 alone would answer 400."""
    reply = raw(echo_gate.gate.port, b"\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + BEARER + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 200") and Echo.seen[0]["path"] == "/after"


def test_a_stream_of_empty_lines_is_refused_like_a_head_over_the_cap(echo_gate: GateThread) -> None:
    """Empty lines before a request line are skipped, and were without bound: a visitor streaming CRLFs was
    read until HEAD_TIMEOUT, each 64 KiB read costing the gate's one event loop a quadratic strip (35 ms of CPU
    here, while every other visitor waits). They count towards MAX_HEAD now: 431 once past it, as a long head."""
    reply = raw(echo_gate.gate.port, b"\r\n" * (gate_mod.MAX_HEAD // 2 + 1), timeout=5)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert b"Connection: close" in reply and Echo.seen == [] and echo_gate.errors == []


def test_pipelined_requests_are_answered_in_order(echo_gate: GateThread) -> None:
    """Bytes after one request (the next request, already sent) carry over to the next h11 connection."""
    with connect(echo_gate) as s:
        s.sendall(
            b"POST /one HTTP/1.1\r\nHost: x\r\n" + BEARER + b"Content-Length: 3\r\n\r\nabc"
            b"GET /two HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n"
            b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + BEARER + b"\r\n"
        )  # fmt: skip
        buf = bytearray()
        paths = []
        for _ in range(3):
            status, headers = read_head(s, buf)
            assert status == 200
            paths.append(json.loads(read_body(s, buf, headers))["path"])
        assert until_closed(s) == b"" and buf == b""
    assert paths == ["/one", "/two", "/three"] and Echo.seen[0]["body"] == "abc"


def test_an_upgrade_request_is_served_as_plain_http(echo_gate: GateThread) -> None:
    """h11 pauses a connection that proposes an upgrade. The gate strips Upgrade and Connection (hop-by-hop),
    TensorBoard answers plain HTTP (the gate's own request to it names no Upgrade), and the connection goes on to the next request."""
    with connect(echo_gate) as s:
        buf = bytearray()
        s.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + BEARER + b"\r\n"
        )
        status, headers = read_head(s, buf)
        assert status == 200 and "upgrade" not in headers
        read_body(s, buf, headers)
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n" + BEARER + b"\r\n")
        status, headers = read_head(s, buf)
        assert status == 200 and json.loads(read_body(s, buf, headers))["path"] == "/next"
    assert (
        "Upgrade" not in Echo.seen[0]["headers"]
        and "upgrade" not in Echo.seen[0]["headers"].get("Connection", "").lower()
    )


def test_a_head_trickled_a_byte_at_a_time_is_dropped(echo_gate: GateThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slowloris: the whole head must arrive within HEAD_TIMEOUT, however steadily its bytes come."""
    monkeypatch.setattr(gate_mod, "HEAD_TIMEOUT", 0.5)
    with connect(echo_gate, timeout=5) as s:
        t0 = time.monotonic()
        closed = False
        for byte in b"GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.02)
            if time.monotonic() - t0 > 3:
                break
        if not closed:
            s.settimeout(3)
            try:
                closed = s.recv(100) == b""
            except ConnectionError:
                closed = True
        assert closed and time.monotonic() - t0 < 4
    assert Echo.seen == []


def test_a_header_value_with_obs_text_reaches_tensorboard_byte_for_byte(echo_gate: GateThread) -> None:
    """HTTP allows bytes 0x80-0xFF in a header value (obs-text), and h11 reads them; the gate forwarded headers as
    text, which h11 could not encode again, so the owner's request got no answer and the gate logged a traceback
    (found by the head fuzzer in a CI run)."""
    with connect(echo_gate) as s:
        s.sendall(
            b"GET /label HTTP/1.1\r\nHost: x\r\nX-Label: caf\xe9 \xff\r\nConnection: close\r\n" + BEARER + b"\r\n"
        )
        buf = bytearray()
        status, headers = read_head(s, buf)
        assert status == 200
        assert json.loads(read_body(s, buf, headers))["headers"]["X-Label"] == "caf\xe9 \xff"
    assert echo_gate.errors == []
