"""The gate's HTTP/1.1 framing: h11 parses and frames, and the gate's own rules sit on top (no I/O here).

h11 (a sans-I/O HTTP/1.1 state machine) reads visitors' request heads and
bodies and TensorBoard's answers, and frames the gate's requests to
TensorBoard; what goes back to a visitor is framed here (``Answer``), from
what h11 read; ``gate.py`` moves the bytes. Where framing is at stake, the gate is stricter
than h11, which accepts (and the rules here refuse, each tested in
tests/test_gate_http.py): bare LF line ends, obs-fold, control characters in
header values, ``Content-Length: 5, 5`` or the same Content-Length twice,
Content-Length beside Transfer-Encoding, any ``HTTP/x.y``, any token as a
method, any visible target (absolute-form, authority-form, ``*``),
whitespace after a chunk size, bare LF and any number of lines in a chunked
body's trailers, and a head larger than ``MAX_HEAD`` that arrived in one
piece. What h11 refuses stays refused (a repeated Host, and a missing one in
HTTP/1.1, too). Only origin-form targets pass, so the gate is no open proxy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import h11

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "BadRequest",
    "Request",
    "UpstreamError",
    "Answer",
    "Visitor",
    "answer",
    "decoded",
    "connection_options",
    "end_to_end",
    "interim",
    "upstream",
]

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
#: TensorBoard's own requests carry at most a few KiB; uploads are not a thing it does.
MAX_BODY = 32 * 1024 * 1024

_METHOD = re.compile(r"[A-Z]{1,20}")
_TARGET = re.compile(r"/[\x21-\x7e]*")  # origin-form, visible ASCII only: no space, tab, CR, LF or NUL
#: The bytes a header value may hold; h11 lets other control characters (\x01, \x7f, ...) through.
_VALUE_BYTES = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
_DIGITS = re.compile(rb"[0-9]{1,15}")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([^\r]*?)[ \t]*(?=\r\n)", re.IGNORECASE)
_EMPTY_LINES = re.compile(rb"(?:\r\n)*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:;[^\r\n]*)?")  # h11 also allows whitespace before the CRLF
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "expect",
    "content-length",
}
_REASONS = {
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    413: "Content Too Large",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
}


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UpstreamError(Exception):
    """TensorBoard broke off or answered something that is not HTTP."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    @cached_property
    def _first(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for k, v in self.headers:
            first.setdefault(k.lower(), v)
        return first

    def header(self, name: str) -> str | None:
        """The first value of a header (the gate's rules leave one where it matters)."""
        return self._first.get(name.lower())

    @property
    def chunked(self) -> bool:
        return self.header("transfer-encoding") is not None

    @property
    def length(self) -> int:
        value = self.header("content-length")
        return int(value) if value is not None else 0

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0

    @property
    def keep_alive(self) -> bool:
        """h11's rule: HTTP/1.1 without a ``close`` option in any Connection line (an HTTP/1.0 connection ends
        after one answer). Not just the first line: ``Connection: keep-alive`` then ``Connection: close`` kept
        the connection open, against RFC 9112 9.6."""
        return self.version == "HTTP/1.1" and "close" not in connection_options(self.headers)


def _refusal(e: h11.ProtocolError) -> BadRequest:
    """h11's verdict as a fixed sentence: its messages quote the visitor's bytes, which are not echoed back."""
    status = e.error_status_hint
    if status == 431:
        return BadRequest(431, "headers too large")
    if status == 501:
        return BadRequest(501, "only Transfer-Encoding: chunked is supported")
    return BadRequest(400, "malformed request")


def _checked(event: h11.Request, head: bytes) -> Request:
    """The gate's rules on a head h11 accepted; ``head`` is its bytes as they arrived, blank line included."""
    if len(head) > MAX_HEAD:
        raise BadRequest(431, "headers too large")  # h11 bounds only heads that are still arriving
    if b"\0" in head or head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\r\n"):
        raise BadRequest(400, "bare CR, LF or NUL in the request head")
    if b"\r\n " in head or b"\r\n\t" in head:
        raise BadRequest(400, "obsolete header folding")
    method, target = event.method.decode("latin-1"), event.target.decode("latin-1")
    if event.http_version not in (b"1.0", b"1.1"):
        raise BadRequest(400, "malformed request line")
    if not _METHOD.fullmatch(method):
        raise BadRequest(400, "malformed method")
    if method == "CONNECT" or not _TARGET.fullmatch(target) or target.startswith("//"):
        raise BadRequest(400, "only origin-form request targets are accepted")
    raw = event.headers.raw_items()
    if len(raw) > MAX_HEADERS:
        raise BadRequest(431, "too many header lines")
    if b"".join(v for _, v in raw).translate(None, _VALUE_BYTES):  # what is left is not allowed
        raise BadRequest(400, "control character in a header value")
    names = [k.lower() for k, _ in raw]
    # h11 merges repeated and comma-listed lengths into one: count them in the head as it arrived.
    lengths = _CONTENT_LENGTH.findall(head) if b"content-length" in names else []
    if len(lengths) > 1 or (lengths and b"transfer-encoding" in names):
        raise BadRequest(400, "ambiguous message length")  # request smuggling
    if lengths and not _DIGITS.fullmatch(lengths[0]):
        raise BadRequest(400, "bad Content-Length")
    if b"transfer-encoding" in names and event.http_version == b"1.0":
        raise BadRequest(400, "chunked bodies need HTTP/1.1")
    req = Request(
        method,
        target,
        "HTTP/" + event.http_version.decode(),
        decoded(raw),
    )
    if req.length > MAX_BODY:
        raise BadRequest(413, "request body too large")
    return req


class Visitor:
    """One visitor connection's framing: feed it what arrives, take its events (the checked Request, then
    h11's Data and EndOfMessage); ``next_request`` before the next one.

    Each request gets a fresh h11 connection (carrying over bytes already received), so an answer the gate
    wrote itself (a login redirect) needs no bookkeeping in h11. h11 reads chunked bodies; at their end the
    framing it skipped is checked against the gate's stricter rule (``_check_chunks``).
    """

    def __init__(self, received: bytes = b"") -> None:
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.request: Request | None = None
        self.ended = False
        self._raw = bytearray()  # what h11 was fed of this request's head, or of its chunked body
        self._sizes: list[int] = []  # the chunk sizes h11 read
        self._chunk = 0
        self._body = 0
        self._blank = 0  # empty lines skipped before the request line
        self._searched = 0  # how much of the head has been searched for its end
        if received:
            self.feed(received)

    def feed(self, data: bytes) -> None:
        if self.request is None and not self._raw:
            # RFC 9112 2.2: empty lines before a request line are ignored (h11 refuses them; the gate accepted
            # them before it used h11). They count towards MAX_HEAD: a stream of them is no head that never ends.
            blank = _EMPTY_LINES.match(data).end()
            self._blank += blank
            if self._blank > MAX_HEAD:
                raise BadRequest(431, "headers too large")
            data = data[blank:]
            if not data:
                return
        self.conn.receive_data(data)
        if self.request is None or self.request.chunked:
            self._raw += data
            if len(self._raw) > 2 * MAX_BODY:
                raise BadRequest(413, "request body too large")
        if self.request is None:
            self._count_lines()

    def _count_lines(self) -> None:
        """Refuse a head of more than MAX_HEADERS lines once it is whole, before h11 parses them one by one:
        64 KiB of ``a:b`` lines cost h11 34 ms of the event loop's CPU, counting them costs nothing (the
        hand-written parser counted first too). Only bytes not yet searched are searched for the blank line."""
        start = max(0, self._searched - 2)
        self._searched = len(self._raw)
        ends = [i for i in (self._raw.find(b"\n\n", start), self._raw.find(b"\n\r\n", start)) if i >= 0]
        if ends and self._raw.count(b"\n", 0, min(ends)) > MAX_HEADERS:
            raise BadRequest(431, "too many header lines")

    def next_event(self) -> Request | h11.Data | h11.EndOfMessage | type[h11.NEED_DATA]:
        """The next event; BadRequest on anything malformed. NEED_DATA: feed more."""
        try:
            event = self.conn.next_event()
        except h11.RemoteProtocolError as e:
            raise _refusal(e) from None
        if event is h11.NEED_DATA:
            return h11.NEED_DATA
        if isinstance(event, h11.Request):
            end = len(self._raw) - len(self.conn.trailing_data[0])
            self.request = _checked(event, bytes(self._raw[:end]))
            del self._raw[: end if self.request.chunked else len(self._raw)]
            return self.request
        if isinstance(event, h11.Data):
            self._chunk += len(event.data)
            self._body += len(event.data)
            if self._body > MAX_BODY:
                raise BadRequest(413, "request body too large")
            if event.chunk_end:
                self._sizes.append(self._chunk)
                self._chunk = 0
            return event
        if isinstance(event, h11.EndOfMessage):
            if self.request is not None and self.request.chunked:
                self._check_chunks(len(self._raw) - len(self.conn.trailing_data[0]))
            self.ended = True
            return event
        raise BadRequest(400, "malformed request")  # PAUSED or ConnectionClosed mid-request: not expected here

    def _check_chunks(self, end: int) -> None:
        """The chunked framing h11 read, held to the gate's rule: size lines without whitespace, and at most
        MAX_HEADERS trailer lines (dropped), each ending in CRLF. h11 chose the chunks; this only checks them
        (each size line ends at the first CRLF, as in h11, and must name the size h11 read)."""
        raw, at = self._raw, 0
        for size in [*self._sizes, 0]:
            line_end = raw.find(b"\r\n", at)
            line = _CHUNK_SIZE.fullmatch(raw, at, line_end)
            if line is None or int(line.group(1), 16) != size:
                raise BadRequest(400, "malformed chunk size")
            at = line_end + 2 + size + (2 if size else 0)
        trailers = bytes(raw[at:end])  # the trailer lines, then the blank line
        if trailers.count(b"\r\n") > MAX_HEADERS + 1:
            raise BadRequest(400, "too many trailer lines")
        if trailers.count(b"\n") != trailers.count(b"\r\n") or trailers.count(b"\r") != trailers.count(b"\r\n"):
            raise BadRequest(400, "bare CR or LF in the trailers")
        if trailers.startswith((b" ", b"\t")) or b"\r\n " in trailers or b"\r\n\t" in trailers:
            raise BadRequest(400, "obsolete header folding")

    def next_request(self) -> Visitor:
        """The framing of the next request on this connection: a fresh h11 connection, fed what arrived
        after this request."""
        return Visitor(self.conn.trailing_data[0])


class Answer:
    """TensorBoard's answer as the visitor gets it: h11 read and checked it (no CR, LF or NUL can be in its
    status line or headers), and the gate frames it for the visitor by hand, as h11's server side would:
    by TensorBoard's Content-Length, else chunked for HTTP/1.1 and until close for HTTP/1.0; no body after
    HEAD, 204 or 304, and no Content-Length on a 204 (which h11 passed on). Framing it with h11 too was a
    fifth of the gate's CPU per request."""

    def __init__(self, req: Request, event: h11.Response) -> None:
        headers = decoded(event.headers.raw_items())
        out = end_to_end(headers)
        length = None
        if all(k.lower() != "transfer-encoding" for k, _ in headers):  # h11 left at most one, of digits
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
        if length is not None and event.status_code != 204:  # RFC 9110 8.6: never a length on a 204
            out.append(("Content-Length", length))
        if req.method == "HEAD" or event.status_code in (204, 304):
            self.framing = "none"
        elif length is not None:
            self.framing = "length"
        elif req.version == "HTTP/1.1":
            self.framing = "chunked"
            out.append(("Transfer-Encoding", "chunked"))
        else:
            self.framing = "close"
        #: May the visitor's connection carry another request after this answer?
        self.keep_alive = req.keep_alive and self.framing != "close"
        if not self.keep_alive:
            out.append(("Connection", "close"))
        self.head = head_bytes(_status_line(event), out)

    def body(self, data: bytes) -> list[bytes]:
        if not data or self.framing == "none":
            return []
        if self.framing == "chunked":
            return [b"%x\r\n" % len(data), data, b"\r\n"]
        return [data]

    def end(self) -> list[bytes]:
        return [b"0\r\n\r\n"] if self.framing == "chunked" else []


def interim(event: h11.InformationalResponse) -> bytes:
    """An interim answer (103 Early Hints, ...) passed on to an HTTP/1.1 visitor."""
    return head_bytes(_status_line(event), end_to_end(decoded(event.headers.raw_items())))


def _status_line(event: h11.Response | h11.InformationalResponse) -> str:
    return f"HTTP/1.1 {event.status_code} {event.reason.decode('latin-1')}"


def head_bytes(line: str, headers: list[tuple[str, str]]) -> bytes:
    return "\r\n".join([line, *(f"{k}: {v}" for k, v in headers), "", ""]).encode("latin-1")


def upstream() -> h11.Connection:
    """The client side of one request to TensorBoard (its answer's head bounded like a visitor's)."""
    return h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)


def end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers without hop-by-hop ones, including those the Connection header names (but never Host: a
    request without it cannot be sent on, ``Connection: host`` made h11 refuse the gate's own request)."""
    named = connection_options(headers) - {"host"}
    return [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() not in named]


def connection_options(headers: list[tuple[str, str]]) -> set[str]:
    """Every option of every Connection line, lowercased (``close``, ``keep-alive``, header names)."""
    return {
        token.strip().lower()
        for k, v in headers
        if k.lower() == "connection"
        for token in v.split(",")
        if token.strip()
    }


def decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """h11's headers (``raw_items()``) as the (name as sent, value) strings the auth rules and TensorBoard see."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


def answer(
    status: int,
    body: str,
    *,
    close: bool,
    html: bool = False,
    head: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    """One of the gate's own answers (a refusal, a login redirect, a 502), written whole."""
    data = body.encode()
    headers = [("Content-Length", str(len(data))), ("Cache-Control", "no-store")]
    headers += [("Content-Type", f"{'text/html' if html else 'text/plain'}; charset=utf-8"), *(extra or [])]
    if close:
        headers.append(("Connection", "close"))
    return head_bytes(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", headers) + (b"" if head else data)
