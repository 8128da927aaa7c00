"""The authenticating gate: a small HTTP/1.1 reverse proxy that a tunnel points at.

A public tunnel never reaches TensorBoard directly: every request must carry
the tunnel's secret (see nbboard.tunnels.auth for its three forms). Anything
else gets 401/403 and no byte from TensorBoard.

Every request is checked on its own, not every connection: tunnel servers
(localtunnel's especially) multiplex many visitors over the same sockets.

What a hostile visitor cannot do here:

- hold a connection without the secret: a refused request is answered as soon
  as its head has arrived, its body is never read, and its connection is
  closed; the head itself must arrive within ``HEAD_TIMEOUT``;
- exhaust connections: at most ``MAX_PENDING`` connections that have not yet
  made an authorised request are kept, so file descriptors stay bounded; a
  newcomer pushes out, in this order, one already refused, one that has sent
  nothing for ``FRESH`` s, one stuck in its head for that long, then the
  oldest fresh one (see ``Gate._victim``). A flood of silent connections thus
  cannot push out the owner's connection once its head has begun to arrive;
- smuggle or confuse framing: the request line and headers are parsed
  strictly (origin-form targets only, so the gate is no open proxy; one
  Content-Length of digits, or ``Transfer-Encoding: chunked`` alone; bad chunk
  sizes get a 400), request bodies reach TensorBoard re-framed, and the
  head is capped at ``MAX_HEAD`` bytes and ``MAX_HEADERS`` lines.

The gate answers ``Expect: 100-continue`` itself and passes TensorBoard's
interim 1xx responses through before the final one.

Why not tornado's HTTPServer (it has the timeouts and 100-continue built in)?
A prototype on it (HTTPServer + a streaming AsyncHTTPClient upstream),
measured side by side with this loop as in benchmarks/run.py section 9 on a
2-core machine, added 1.3-3.5 ms at p50 and kept 59-71 % of TensorBoard's
direct throughput; this loop adds 0.03-0.7 ms and keeps 71-94 % (below the
benchmark's 80 % target, tornado's margin would be gone). So it stays
hand-rolled, small, with each rule above tested on its own and its heads
fuzzed (tests/reliability/test_gate_fuzz.py); the auth rules live apart in
nbboard.tunnels.auth.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from .auth import COOKIE, TOKEN_PARAM, Auth, Verdict

__all__ = ["COOKIE", "TOKEN_PARAM", "Gate", "Request", "BadRequest", "parse_head"]

log = logging.getLogger("nbboard.gate")

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
#: TensorBoard's own requests carry at most a few KiB; uploads are not a thing it does.
MAX_BODY = 32 * 1024 * 1024
#: A connection that has made no authorised request must deliver a whole request head within this.
HEAD_TIMEOUT = 10.0
#: An authorised connection may wait this long for its next request.
IDLE_TIMEOUT = 120.0
#: Longest pause while reading an authorised request's body, or writing to a visitor.
BODY_TIMEOUT = 30.0
#: Longest wait for TensorBoard's answer to start.
UPSTREAM_TIMEOUT = 300.0
#: After a refusal, how long unread bytes are drained before the close (so the refusal is not lost to a reset).
LINGER = 1.0
#: Connections that have not (yet) made an authorised request; beyond this the oldest is dropped.
MAX_PENDING = 64
#: A pending connection younger than this is still arriving: it is evicted after every older one.
FRESH = 1.0
#: How long the pending connections may exceed MAX_PENDING (never twice it) before the surplus is pushed out.
TRIM_AFTER = 0.1
CHUNK = 256 * 1024

_TCHAR = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHOD = re.compile(r"^[A-Z]{1,20}$")
_TARGET = re.compile(r"^/[\x21-\x7e]*$")  # origin-form, visible ASCII only: no space, tab, CR, LF or NUL
_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
_DIGITS = re.compile(r"^[0-9]{1,15}$")
_HEX = re.compile(rb"^[0-9A-Fa-f]{1,15}$")
_STATUS = re.compile(r"^HTTP/1\.[01] ([1-5][0-9]{2})(?: .*)?$")
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


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

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
        conn = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


class _Reader(asyncio.StreamReader):
    """A StreamReader that remembers whether any byte has arrived, for the eviction order (Gate._victim)."""

    heard = False

    def feed_data(self, data: bytes) -> None:
        if data:
            self.heard = True
        super().feed_data(data)


def _bytes_waiting(writer: asyncio.StreamWriter) -> bool:
    """Has the visitor sent bytes that the event loop has not read yet? (A peek on a duplicate of the socket.)"""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with sock.dup() as peek:
            peek.setblocking(False)  # it already is: asyncio's sockets are non-blocking
            return bool(peek.recv(1, socket.MSG_PEEK))
    except OSError:  # nothing waiting (EAGAIN), or the connection is gone: either way, nothing to keep
        return False


@dataclass
class _Pending:
    """A connection without an authorised request yet."""

    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader
    since: float
    refused: bool = False


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UpstreamError(Exception):
    """TensorBoard broke off or answered something that is not HTTP."""


def parse_head(raw: bytes) -> Request:
    """A request head (without its final blank line), or BadRequest: strict wherever framing is at stake."""
    text = raw.decode("latin-1")
    while text.startswith("\r\n"):  # RFC 9112 2.2: ignore empty lines before the request line
        text = text[2:]
    lines = text.split("\r\n")
    if any("\n" in line or "\r" in line or "\0" in line for line in lines):
        raise BadRequest(400, "bare CR, LF or NUL in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not _METHOD.match(method):
        raise BadRequest(400, "malformed method")
    if method == "CONNECT" or not _TARGET.match(target) or target.startswith("//"):
        raise BadRequest(400, "only origin-form request targets are accepted")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many header lines")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            raise BadRequest(400, "empty header line")
        if line[0] in " \t":
            raise BadRequest(400, "obsolete header folding")
        name, sep, value = line.partition(":")
        if not sep or not _TCHAR.match(name):
            raise BadRequest(400, "malformed header name")
        value = value.strip(" \t")
        if not _VALUE.match(value):
            raise BadRequest(400, "control character in a header value")
        headers.append((name, value))
    names = [k.lower() for k, _ in headers]
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    codings = [v for k, v in headers if k.lower() == "transfer-encoding"]
    if len(lengths) > 1 or len(codings) > 1 or (lengths and codings):
        raise BadRequest(400, "ambiguous message length")  # request smuggling
    if lengths and not _DIGITS.match(lengths[0]):
        raise BadRequest(400, "bad Content-Length")
    if codings and codings[0].lower() != "chunked":
        raise BadRequest(501, "only Transfer-Encoding: chunked is supported")
    if codings and version == "HTTP/1.0":
        raise BadRequest(400, "chunked bodies need HTTP/1.1")
    if names.count("host") > 1:
        raise BadRequest(400, "more than one Host header")
    req = Request(method, target, version, headers)
    if req.length > MAX_BODY:
        raise BadRequest(413, "request body too large")
    return req


class Gate:
    """Serve on 127.0.0.1:``port`` (0: any free port), forwarding authorised requests upstream.

    ``public_url`` may be set once the provider has answered: an https URL
    makes the login cookie Secure. ``expires_at`` (epoch seconds, 0 for none)
    bounds the cookie's life and refuses everything after it.
    """

    def __init__(
        self,
        upstream_port: int,
        secret: str | None,
        *,
        upstream_host: str = "127.0.0.1",
        expires_at: float = 0.0,
        public_url: str = "",
    ) -> None:
        self.auth = Auth(secret, expires_at=expires_at, public_url=public_url)
        self.upstream = (upstream_host, upstream_port)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.on_request: Callable[[], None] | None = None
        #: Connections without an authorised request yet, oldest first (see MAX_PENDING).
        self._pending: collections.OrderedDict[int, _Pending] = collections.OrderedDict()
        #: Every open connection, authenticated or not: closing the gate ends them all at once.
        self._connections: set[asyncio.StreamWriter] = set()
        self.evicted = 0
        self._trim_scheduled = False

    @property
    def secret(self) -> str | None:
        return self.auth.secret

    @property
    def public_url(self) -> str:
        return self.auth.public_url

    @public_url.setter
    def public_url(self, url: str) -> None:
        self.auth.public_url = url

    async def start(self, port: int = 0) -> int:
        # backlog: asyncio accepts up to this many connections per loop turn before any is admitted (and
        # the oldest pushed out), so it bounds the transient overshoot of descriptors beyond MAX_PENDING.
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:  # asyncio.start_server's, with a reader that tells heard
            return asyncio.StreamReaderProtocol(_Reader(limit=MAX_HEAD, loop=loop), self._serve, loop=loop)

        self.server = await loop.create_server(protocol, "127.0.0.1", port, backlog=MAX_PENDING)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    # -- connections -------------------------------------------------------

    def _admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Count a new connection among the pending ones, pushing others out beyond the cap.

        asyncio accepts up to MAX_PENDING connections at once, and reads what a connection sent only an
        event-loop turn or two after admitting it; so the cap is enforced a moment later (TRIM_AFTER), when
        heads that had already arrived are known to have, and at once only beyond twice the cap.
        """
        loop = asyncio.get_running_loop()
        self._pending[id(writer)] = _Pending(writer, reader, loop.time())
        self._trim(2 * MAX_PENDING)
        if len(self._pending) > MAX_PENDING and not self._trim_scheduled:
            self._trim_scheduled = True
            loop.call_later(TRIM_AFTER, self._trim, MAX_PENDING)

    def _trim(self, cap: int) -> None:
        if cap == MAX_PENDING:
            self._trim_scheduled = False
        now = asyncio.get_running_loop().time()
        while len(self._pending) > cap:
            key = self._victim(now)
            victim = self._pending[key]
            if not getattr(victim.reader, "heard", True) and _bytes_waiting(victim.writer):
                victim.reader.heard = True  # type: ignore[attr-defined]  # bytes are in; asyncio has yet to read them
                continue
            del self._pending[key]
            victim.writer.transport.abort()
            self.evicted += 1

    def _victim(self, now: float) -> int:
        """The pending connection to push out: refused ones first (they only linger), then those silent for
        FRESH s, then those whose head has been arriving for that long, then fresh ones; oldest first in each.

        Issue 17 item 5: evicting simply the oldest, a flood of connections that send nothing pushed out
        0.6-2.5 % of the owner's fresh connections before their head was read (it had often arrived already).
        """

        def rank(item: tuple[int, _Pending]) -> tuple[int, float]:
            p = item[1]
            heard = bool(getattr(p.reader, "heard", True))
            if p.refused:
                return 0, p.since
            if now - p.since >= FRESH:
                return (2 if heard else 1), p.since
            return (4 if heard else 3), p.since

        return min(self._pending.items(), key=rank)[0]

    def _trust(self, writer: asyncio.StreamWriter) -> bool:
        """Mark the connection as having made an authorised request; False if it was pushed out meanwhile."""
        if self._pending.pop(id(writer), None) is None:
            return not writer.transport.is_closing()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._admit(reader, writer)
        self._connections.add(writer)
        trusted = False
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(
                        reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT if trusted else HEAD_TIMEOUT
                    )
                except (asyncio.LimitOverrunError, ValueError):
                    await self._refuse(reader, writer, 431, "headers too large\n")
                    return
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                try:
                    req = parse_head(raw[:-4])
                except BadRequest as e:
                    await self._refuse(reader, writer, e.status, e.reason + "\n")
                    return
                if self.on_request is not None:
                    self.on_request()
                verdict = self.auth.check(req.target, req.headers)
                if verdict.kind != "ok":
                    if not await self._answer_unauthorised(reader, writer, req, verdict):
                        return
                    continue
                if not trusted:
                    trusted = self._trust(writer)
                    if not trusted:
                        return
                if not await self._forward(req, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, UpstreamError) as e:
            log.debug("connection ended: %s", e.__class__.__name__)
        except Exception:  # noqa: BLE001 - one visitor's bug must never stop the gate
            log.exception("unexpected error serving a connection")
        finally:
            self._pending.pop(id(writer), None)
            self._connections.discard(writer)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a visitor that stopped reading: do not wait for it
            else:
                writer.close()

    async def _answer_unauthorised(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: Request, verdict: Verdict
    ) -> bool:
        """Answer at once, without reading the body. True if the connection may carry another request."""
        head = req.method == "HEAD"
        if verdict.kind == "login":
            extra = [
                ("Location", verdict.location),
                ("Set-Cookie", self.auth.set_cookie(req.header("x-forwarded-proto"))),
                ("Referrer-Policy", "no-referrer"),
            ]
            if req.has_body or not req.keep_alive:
                await self._refuse(reader, writer, 302, "", extra=extra, head=head)
                return False
            await _respond(writer, 302, "", close=False, extra=extra, head=head)
            return True
        if verdict.kind == "deny":
            await self._refuse(reader, writer, 401, _DENY_PAGE, html=True, head=head)
        else:
            await self._refuse(reader, writer, 403, "forbidden: " + verdict.why + "\n", head=head)
        return False

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, body: str, **kwargs: object
    ) -> None:
        """Answer and close. Unread bytes are drained for at most LINGER s first, so that closing with data
        still unread (which sends a reset) cannot destroy the answer before the visitor reads it. A refused
        connection stays among the pending ones meanwhile, so the cap bounds lingering ones too."""
        pending = self._pending.get(id(writer))
        if pending is not None:
            pending.refused = True
        await _respond(writer, status, body, close=True, **kwargs)  # type: ignore[arg-type]
        with contextlib.suppress(OSError, RuntimeError, AttributeError):
            if writer.can_write_eof():
                writer.write_eof()
        loop = asyncio.get_running_loop()
        end = loop.time() + LINGER
        drained = 0
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError):
            while drained < MAX_HEAD and (left := end - loop.time()) > 0:
                data = await asyncio.wait_for(reader.read(65536), left)
                if not data:
                    break
                drained += len(data)
        writer.transport.abort()

    # -- forwarding ----------------------------------------------------------

    async def _forward(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One authorised request through TensorBoard. True if the visitor's connection stays open."""
        if req.header("expect") is not None and (req.header("expect") or "").lower() != "100-continue":
            await self._refuse(reader, writer, 417, "unsupported Expect\n")
            return False
        continued = False
        if req.has_body and (req.header("expect") or "").lower() == "100-continue" and req.version == "HTTP/1.1":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            continued = True
        body = b""
        if req.chunked:
            try:
                body = await _read_chunked(reader, MAX_BODY)
            except BadRequest as e:
                await self._refuse(reader, writer, e.status, e.reason + "\n")
                return False
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), BODY_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            await self._refuse(reader, writer, 502, "TensorBoard is not answering\n")
            return False
        try:
            length = len(body) if req.chunked else req.length
            head = [f"{req.method} {req.target} HTTP/1.1"]
            head += [f"{k}: {v}" for k, v in self.auth.strip(_end_to_end(req.headers))]
            if length or req.method in ("POST", "PUT", "PATCH"):
                head.append(f"Content-Length: {length}")
            head.append("Connection: close")
            up_writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            if not req.chunked and req.length:
                await _copy_exact(reader, up_writer, req.length)
            await asyncio.wait_for(up_writer.drain(), BODY_TIMEOUT)
            return await self._relay(req, up_reader, writer, continued)
        finally:
            up_writer.transport.abort()

    async def _relay(
        self, req: Request, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, continued: bool
    ) -> bool:
        """Copy TensorBoard's answer (interim 1xx ones first) to the visitor."""
        while True:
            try:
                raw = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), UPSTREAM_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
                await _respond(writer, 502, "TensorBoard broke off its answer\n", close=True)
                return False
            status_line, _, rest = raw[:-4].decode("latin-1").partition("\r\n")
            match = _STATUS.match(status_line)
            if not match:
                await _respond(writer, 502, "TensorBoard answered something that is not HTTP\n", close=True)
                return False
            status = int(match.group(1))
            headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in rest.split("\r\n")) if k]
            if status == 101:
                await _respond(writer, 502, "protocol upgrades are not passed through\n", close=True)
                return False
            if status >= 200:
                break
            # Interim answers (100 Continue, 103 Early Hints): passed on to HTTP/1.1 visitors, then the real one.
            if req.version == "HTTP/1.1" and not (status == 100 and continued):
                writer.write(
                    (status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")
                )
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
        no_body = req.method == "HEAD" or status in (204, 304)
        if length is not None and not _DIGITS.match(length):
            raise UpstreamError("bad Content-Length from TensorBoard")
        keep = req.keep_alive
        out = [status_line] + [f"{k}: {v}" for k, v in _end_to_end(headers)]
        if no_body:
            if length is not None:
                out.append(f"Content-Length: {length}")
        elif length is not None and not chunked:
            out.append(f"Content-Length: {length}")
        elif req.version == "HTTP/1.1":
            out.append("Transfer-Encoding: chunked")  # re-framed, so the visitor can keep the connection
        else:
            keep = False  # an HTTP/1.0 visitor: the body ends when the connection does
        if not keep:
            out.append("Connection: close")
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        if no_body:
            pass
        elif length is not None and not chunked:
            await _copy_exact(up_reader, writer, int(length))
        elif chunked:
            await _copy_chunks(up_reader, writer, dechunk=req.version != "HTTP/1.1")
        else:
            await _copy_until_close(up_reader, writer, chunk=req.version == "HTTP/1.1")
        await asyncio.wait_for(writer.drain(), BODY_TIMEOUT)
        return keep


_DENY_PAGE = (
    "<!doctype html><title>Private TensorBoard</title><h1>This TensorBoard is private</h1>"
    "<p>Open the full link nbboard printed (it ends in <code>?nbboard_token=…</code>). "
    "Its owner can print it again with <code>nbboard tunnel --show-url</code>.</p>\n"
)
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


def _end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers without hop-by-hop ones, including those the Connection header names."""
    named = {
        token.strip().lower()
        for k, v in headers
        if k.lower() == "connection"
        for token in v.split(",")
        if token.strip()
    }
    return [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() not in named]


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: str,
    *,
    close: bool,
    html: bool = False,
    head: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    data = body.encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Length: {len(data)}"]
    lines += ["Cache-Control: no-store", f"Content-Type: {'text/html' if html else 'text/plain'}; charset=utf-8"]
    lines += [f"{k}: {v}" for k, v in extra or []]
    if close:
        lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else data))
    with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.drain(), BODY_TIMEOUT)


async def _read(src: asyncio.StreamReader, n: int) -> bytes:
    data = await asyncio.wait_for(src.read(n), BODY_TIMEOUT)
    if not data:
        raise asyncio.IncompleteReadError(b"", n)
    return data


async def _line(src: asyncio.StreamReader) -> bytes:
    """One CRLF-terminated line of chunked framing (without the CRLF)."""
    try:
        line = await asyncio.wait_for(src.readuntil(b"\r\n"), BODY_TIMEOUT)
    except (asyncio.LimitOverrunError, ValueError):
        raise BadRequest(400, "chunk framing line too long") from None
    return line[:-2]


async def _chunks(src: asyncio.StreamReader, limit: int):  # type: ignore[no-untyped-def]
    """Yield the data of a chunked body, parsed strictly; BadRequest on anything malformed."""
    total = 0
    while True:
        size_text = (await _line(src)).split(b";", 1)[0]
        if not _HEX.match(size_text):
            raise BadRequest(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_HEADERS + 1):  # trailers, dropped, then the blank line
                if not await _line(src):
                    return
            raise BadRequest(400, "too many trailer lines")
        total += size
        if total > limit:
            raise BadRequest(413, "request body too large")
        while size > 0:
            data = await _read(src, min(size, CHUNK))
            size -= len(data)
            yield data
        if await asyncio.wait_for(src.readexactly(2), BODY_TIMEOUT) != b"\r\n":
            raise BadRequest(400, "chunk data longer than its size")


async def _read_chunked(src: asyncio.StreamReader, limit: int) -> bytes:
    return b"".join([data async for data in _chunks(src, limit)])


async def _copy_chunks(src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, dechunk: bool) -> None:
    try:
        async for data in _chunks(src, 1 << 62):
            dst.write(data if dechunk else b"%x\r\n%s\r\n" % (len(data), data))
            await _pace(dst)
    except BadRequest as e:
        raise UpstreamError(e.reason) from None
    if not dechunk:
        dst.write(b"0\r\n\r\n")


async def _copy_exact(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await _read(src, min(n, CHUNK))
        dst.write(data)
        n -= len(data)
        await _pace(dst)


async def _copy_until_close(src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, chunk: bool) -> None:
    while data := await asyncio.wait_for(src.read(CHUNK), BODY_TIMEOUT):
        dst.write(b"%x\r\n%s\r\n" % (len(data), data) if chunk else data)
        await _pace(dst)
    if chunk:
        dst.write(b"0\r\n\r\n")


async def _pace(dst: asyncio.StreamWriter) -> None:
    if dst.transport.get_write_buffer_size() > CHUNK:
        await asyncio.wait_for(dst.drain(), BODY_TIMEOUT)
