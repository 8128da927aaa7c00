"""The authenticating gate: a small HTTP/1.1 reverse proxy that a tunnel points at.

A public tunnel never reaches TensorBoard directly: every request must carry
the tunnel's secret (see nbboard.tunnels.auth for its three forms). Anything
else gets 401/403 and no byte from TensorBoard. This module holds the
connections (admission, eviction, timeouts) and moves the bytes; reading and
framing HTTP is nbboard.tunnels.gate_http's job (h11 plus the gate's rules).

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
- smuggle or confuse framing: see gate_http (origin-form targets only, so the
  gate is no open proxy; one Content-Length of digits, or
  ``Transfer-Encoding: chunked`` alone; strict chunk framing; heads capped at
  ``MAX_HEAD`` bytes and ``MAX_HEADERS`` lines); request bodies reach
  TensorBoard re-framed, on a connection of their own.

The gate answers ``Expect: 100-continue`` itself and passes TensorBoard's
interim 1xx responses through before the final one.

It is an asyncio loop rather than tornado's HTTPServer, which was measured
slower (benchmarks/RESULTS.md, "The auth gate", has the figures and the
comparison); its heads are fuzzed in tests/reliability/test_gate_fuzz.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import h11

from .auth import COOKIE, TOKEN_PARAM, Auth, Verdict
from .gate_http import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    Answer,
    BadRequest,
    Request,
    UpstreamError,
    Visitor,
    answer,
    end_to_end,
    interim,
    upstream,
)
from .gate_pending import MAX_PENDING, HeardReader, Pending

__all__ = [
    "COOKIE",
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_PENDING",
    "TOKEN_PARAM",
    "BadRequest",
    "Gate",
    "Request",
]

log = logging.getLogger("nbboard.gate")

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
CHUNK = 256 * 1024
#: SO_LINGER on, 0 s: closing resets (Windows reads the first bytes as its two u_shorts: the same 1 and 0).
_NO_LINGER = struct.pack("ii", 1, 0)
#: Reads of a request head: h11 bounds a head that is still arriving at MAX_HEAD.
HEAD_READ = 64 * 1024
_DENY_PAGE = (
    "<!doctype html><title>Private TensorBoard</title><h1>This TensorBoard is private</h1>"
    "<p>Open the full link nbboard printed (it ends in <code>?nbboard_token=…</code>). "
    "Its owner can print it again with <code>nbboard tunnel --show-url</code>.</p>\n"
)


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
        #: Connections without an authorised request yet (at most MAX_PENDING of them are kept).
        self._pending = Pending()
        #: Every open connection, authenticated or not, and the task serving it: closing the gate ends them all.
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def evicted(self) -> int:
        """How many pending connections were pushed out to make way for newer ones."""
        return self._pending.evicted

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
            return asyncio.StreamReaderProtocol(HeardReader(limit=MAX_HEAD, loop=loop), self._serve, loop=loop)

        self.server = await loop.create_server(protocol, "127.0.0.1", port, backlog=MAX_PENDING)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            # Closed means no connection is left, the visitors' nor those to TensorBoard. Most tasks end once their
            # visitor's connection is gone, but one waiting for TensorBoard (its answer, or a connection while its
            # backlog is full) would wait out its timeout, then send its request after the tunnel closed: every
            # task is cancelled, and its own clean-up closes its connection to TensorBoard.
            self._closing = True
            for writer, task in list(self._connections.items()):
                writer.transport.abort()
                task.cancel()
            if self._connections:
                await asyncio.wait(list(self._connections.values()), timeout=5)
            with contextlib.suppress(Exception):
                await within(self.server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._pending.admit(reader, writer)
        self._connections[writer] = asyncio.current_task()  # type: ignore[assignment]  # _serve runs as a task
        trusted = False
        visitor = Visitor()
        try:
            while True:
                try:
                    req = await within(_head(reader, visitor), IDLE_TIMEOUT if trusted else HEAD_TIMEOUT)
                except BadRequest as e:
                    await self._refuse(reader, writer, e.status, e.reason + "\n")
                    return
                except (asyncio.TimeoutError, ConnectionError):
                    return
                if req is None:
                    return
                if self.on_request is not None:
                    self.on_request()
                verdict = self.auth.check(req.target, req.headers)
                if verdict.kind != "ok":
                    if not await self._answer_unauthorised(reader, writer, visitor, verdict):
                        return
                else:
                    if not trusted:
                        trusted = self._pending.trust(writer)
                        if not trusted:
                            return
                    if not await self._forward(visitor, reader, writer):
                        return
                visitor = visitor.next_request()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, UpstreamError, BadRequest) as e:
            log.debug("connection ended: %s", e.__class__.__name__)
        except Exception:  # noqa: BLE001 - one visitor's bug must never stop the gate
            log.exception("unexpected error serving a connection")
        except asyncio.CancelledError:  # from close(), which ends every connection so; anything else goes on
            if not self._closing:
                raise
        finally:
            self._pending.forget(writer)
            self._connections.pop(writer, None)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a visitor that stopped reading: do not wait for it
            else:
                writer.close()

    async def _answer_unauthorised(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, visitor: Visitor, verdict: Verdict
    ) -> bool:
        """Answer at once, without reading the body. True if the connection may carry another request."""
        req = visitor.request
        assert req is not None
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
            visitor.next_event()  # the end of a request without a body
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
        self._pending.refused(writer)
        await _respond(writer, status, body, close=True, **kwargs)  # type: ignore[arg-type]
        with contextlib.suppress(OSError, RuntimeError, AttributeError):
            if writer.can_write_eof():
                writer.write_eof()
        loop = asyncio.get_running_loop()
        end = loop.time() + LINGER
        drained = 0
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError):
            while drained < MAX_HEAD and (left := end - loop.time()) > 0:
                data = await within(reader.read(65536), left)
                if not data:
                    break
                drained += len(data)
        writer.transport.abort()

    # -- forwarding ----------------------------------------------------------

    async def _forward(self, visitor: Visitor, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One authorised request through TensorBoard. True if the visitor's connection stays open."""
        req = visitor.request
        assert req is not None
        head = req.method == "HEAD"  # the gate's own answers to a HEAD have no body either (RFC 9110 9.3.2)
        expect = req.header("expect")
        if expect is not None and expect.lower() != "100-continue":
            await self._refuse(reader, writer, 417, "unsupported Expect\n", head=head)
            return False
        continued = req.has_body and expect is not None and req.version == "HTTP/1.1"
        if continued:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        streamed = not req.chunked  # a chunked body is read whole, then sent with its length
        body = b""
        if not streamed:
            try:
                body = b"".join([data async for data in _body(reader, visitor)])
            except BadRequest as e:
                await self._refuse(reader, writer, e.status, e.reason + "\n", head=head)
                return False
        try:
            up_reader, up_writer = await within(asyncio.open_connection(*self.upstream), BODY_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            await self._refuse(reader, writer, 502, "TensorBoard is not answering\n", head=head)
            return False
        try:
            up = upstream()
            peer = writer.get_extra_info("peername")
            forwarded_for = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
            up_writer.write(
                up.send(self._upstream_request(req, req.length if streamed else len(body), forwarded_for)) or b""
            )
            if streamed:
                async for data in _body(reader, visitor):
                    up_writer.write(up.send(h11.Data(data=data)) or b"")
                    await _pace(up_writer)
            elif body:
                up_writer.write(up.send(h11.Data(data=body)) or b"")
            await _pace(up_writer, 0)
            return await self._relay(visitor, up, up_reader, writer, continued)
        finally:
            up_writer.transport.abort()

    def _upstream_request(self, req: Request, length: int, forwarded_for: str = "unknown") -> h11.Request:
        headers = self.auth.strip(end_to_end(req.headers))
        if req.header("host") is None:  # HTTP/1.0 may leave it out; h11 speaks HTTP/1.1 to TensorBoard
            headers.insert(0, ("Host", f"{self.upstream[0]}:{self.upstream[1]}"))
        # The request came through the gate, whatever its Host says (TensorBoard's own address, or none above):
        # nbboard.sharedcode serves such a page as TensorBoard does, never naming the user's other boards' ports.
        headers.append(("X-Forwarded-For", forwarded_for))
        if length or req.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(length)))
        headers.append(("Connection", "close"))
        # As bytes: a header value may carry obs-text (0x80-0xFF), which h11 passes on but cannot encode from str.
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return h11.Request(method=req.method.encode("latin-1"), target=req.target.encode("latin-1"), headers=raw)

    async def _relay(
        self, visitor: Visitor, up: h11.Connection, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        continued: bool,
    ) -> bool:  # fmt: skip
        """Copy TensorBoard's answer (interim 1xx ones first) to the visitor, framed anew (gate_http.Answer).

        What is ready goes out in one write, flushed whenever TensorBoard's next bytes have to be waited for:
        one send for a whole small answer (the hand-written relay sent its head and body apart)."""
        req = visitor.request
        assert req is not None
        head = req.method == "HEAD"
        unsent: list[bytes] = []
        while True:
            try:
                event = await _upstream_event(up, up_reader, UPSTREAM_TIMEOUT, writer, unsent)
            except UpstreamError as e:
                await _respond(writer, 502, f"TensorBoard {e}\n", close=True, head=head)
                return False
            if not isinstance(event, h11.InformationalResponse):
                break
            if event.status_code == 101:
                await _respond(writer, 502, "protocol upgrades are not passed through\n", close=True, head=head)
                return False
            # Interim answers (100 Continue, 103 Early Hints): passed on to HTTP/1.1 visitors, then the real one.
            if req.version == "HTTP/1.1" and not (event.status_code == 100 and continued):
                unsent.append(interim(event))
        assert isinstance(event, h11.Response)
        answered = Answer(req, event)
        unsent.append(answered.head)
        try:
            while not isinstance(
                event := await _upstream_event(up, up_reader, BODY_TIMEOUT, writer, unsent), h11.EndOfMessage
            ):
                assert isinstance(event, h11.Data)
                unsent += answered.body(event.data)
        except (UpstreamError, asyncio.TimeoutError):
            if answered.framing == "close":  # a clean close would tell an HTTP/1.0 visitor the cut answer is whole
                _reset(writer)
            raise
        unsent += answered.end()
        writer.writelines(unsent)
        await _pace(writer, 0)
        return visitor.ended and answered.keep_alive


T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``asyncio.wait_for`` without its task per call where Python has ``asyncio.timeout`` (3.11+): the gate
    awaits several of these per request, and a task each was a measurable share of its CPU per request."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10


async def _head(reader: asyncio.StreamReader, visitor: Visitor) -> Request | None:
    """The next request's head, checked (BadRequest if it is not acceptable); None if the visitor left."""
    while (event := visitor.next_event()) is h11.NEED_DATA:
        data = await reader.read(HEAD_READ)
        if not data:
            return None
        visitor.feed(data)
    assert isinstance(event, Request)
    return event


async def _body(reader: asyncio.StreamReader, visitor: Visitor):  # type: ignore[no-untyped-def]
    """Yield the data of the request's body, as h11 reads it (BadRequest on malformed framing)."""
    while not isinstance(event := visitor.next_event(), h11.EndOfMessage):
        if event is h11.NEED_DATA:
            data = await within(reader.read(CHUNK), BODY_TIMEOUT)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            visitor.feed(data)
        elif isinstance(event, h11.Data):
            yield event.data


async def _upstream_event(
    up: h11.Connection,
    up_reader: asyncio.StreamReader,
    timeout: float,
    writer: asyncio.StreamWriter,
    unsent: list[bytes],
) -> h11.Event:
    """TensorBoard's next event; UpstreamError (a sentence for the visitor) if it broke off or is not HTTP.
    Before waiting for TensorBoard, what is ``unsent`` is written to the visitor."""
    while True:
        try:
            event = up.next_event()
        except h11.RemoteProtocolError:
            raise UpstreamError("answered something that is not HTTP") from None
        if event is not h11.NEED_DATA:
            if isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("broke off its answer")
            return event  # type: ignore[return-value]
        if unsent:
            writer.writelines(unsent)
            unsent.clear()
            await _pace(writer)
        try:
            data = await within(up_reader.read(CHUNK), timeout)
        except ConnectionError:
            raise UpstreamError("broke off its answer") from None
        up.receive_data(data)  # b"": the end, which also ends an answer framed by closing the connection


async def _respond(writer: asyncio.StreamWriter, status: int, body: str, *, close: bool, **kwargs: object) -> None:
    writer.write(answer(status, body, close=close, **kwargs))  # type: ignore[arg-type]
    with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
        await within(writer.drain(), BODY_TIMEOUT)


def _reset(writer: asyncio.StreamWriter) -> None:
    """End a connection with a TCP reset (no linger), which a client reports as an error rather than an end."""
    with contextlib.suppress(OSError, AttributeError):
        writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
    writer.transport.abort()


async def _pace(dst: asyncio.StreamWriter, most: int = CHUNK) -> None:
    """Wait (at most BODY_TIMEOUT) until no more than ``most`` bytes wait to be sent."""
    if dst.transport.get_write_buffer_size() > most:
        await within(dst.drain(), BODY_TIMEOUT)
