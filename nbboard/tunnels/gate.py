"""The authenticating gate: a small HTTP/1.1 reverse proxy that a tunnel points at.

A public tunnel never reaches TensorBoard directly. Every request through the
gate must carry the secret: first as ``?nbboard_token=…`` in the link nbboard
printed (answered with a redirect that sets an HttpOnly cookie and drops the
token from the address bar), afterwards as that cookie, or as an
``Authorization: Bearer …`` header for scripts. Anything else gets 401/403
and no byte from TensorBoard.

Every request is checked on its own, not every connection: tunnel servers
(localtunnel's especially) multiplex many visitors over the same sockets.
The request target must be origin-form (``/path?query``); absolute-URI,
authority and ``*`` targets are refused, so the gate cannot be used as an
open proxy. Headers are capped at 64 KiB and must arrive within 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("nbboard.gate")

TOKEN_PARAM = "nbboard_token"
COOKIE = "nbboard_auth"
MAX_HEAD = 64 * 1024
HEAD_TIMEOUT = 30.0
IDLE_TIMEOUT = 300.0
CHUNK = 256 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization"}
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-]{16,256}$")


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


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def cookie_value(secret: str) -> str:
    """What the cookie holds: derived from the secret, so the secret itself is sent only once."""
    return hmac.new(secret.encode(), b"nbboard-gate-cookie-v1", hashlib.sha256).hexdigest()


def parse_head(raw: bytes) -> Request:
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "undecodable request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not method.isalpha() or method.upper() != method:
        raise BadRequest(400, "malformed method")
    if method == "CONNECT" or not target.startswith("/") or target.startswith("//"):
        raise BadRequest(400, "only origin-form request targets are accepted")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise BadRequest(400, "obsolete header folding")
        name, sep, value = line.partition(":")
        if not sep or not name or name.strip() != name:
            raise BadRequest(400, "malformed header")
        headers.append((name, value.strip()))
    names = [k.lower() for k, _ in headers]
    if names.count("content-length") > 1 or ("content-length" in names and "transfer-encoding" in names):
        raise BadRequest(400, "ambiguous message length")  # request smuggling
    return Request(method, target, version, headers)


class Gate:
    """Serve on 127.0.0.1:``port`` (0: any free port), forwarding authorised requests upstream."""

    def __init__(self, upstream_port: int, secret: str | None, *, upstream_host: str = "127.0.0.1") -> None:
        if secret is not None and not _TOKEN_CHARS.match(secret):
            raise ValueError("gate secret must be 16-256 URL-safe characters")
        self.upstream = (upstream_host, upstream_port)
        self.secret = secret
        self._cookie = cookie_value(secret) if secret else ""
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.on_request: Callable[[], None] | None = None

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port, limit=MAX_HEAD)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    # -- authorisation ---------------------------------------------------

    def _authorise(self, req: Request) -> tuple[str, str]:
        """("ok", "") | ("login", clean_target) | ("deny", why) | ("wrong", why)."""
        if self.secret is None:
            return "ok", ""
        path, _, query = req.target.partition("?")
        offered = [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == TOKEN_PARAM]
        if offered:
            if len(offered) == 1 and hmac.compare_digest(offered[0].encode(), self.secret.encode()):
                rest = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k != TOKEN_PARAM]
                return "login", path + ("?" + urllib.parse.urlencode(rest) if rest else "")
            return "wrong", "wrong token"
        auth = req.header("authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.secret.encode()):
                return "ok", ""
            return "wrong", "wrong credentials"
        for name, value in req.headers:
            if name.lower() != "cookie":
                continue
            for part in value.split(";"):
                key, _, val = part.strip().partition("=")
                if key == COOKIE:
                    if hmac.compare_digest(val.encode(), self._cookie.encode()):
                        return "ok", ""
                    return "wrong", "wrong cookie"
        return "deny", "no credentials"

    def _forward_headers(self, req: Request) -> list[tuple[str, str]]:
        """Headers for TensorBoard: hop-by-hop ones and the gate's own credentials removed."""
        out = []
        for name, value in req.headers:
            low = name.lower()
            if low in _HOP_BY_HOP or low == "authorization" and self.secret is not None:
                continue
            if low == "cookie" and self.secret is not None:
                kept = [p.strip() for p in value.split(";") if p.strip() and not p.strip().startswith(COOKIE + "=")]
                if not kept:
                    continue
                value = "; ".join(kept)
            out.append((name, value))
        return out

    # -- connection handling ----------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(
                        reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT if upstream is None else IDLE_TIMEOUT
                    )
                except asyncio.LimitOverrunError:
                    await _respond(writer, 431, "Request Header Fields Too Large", "headers too large\n", close=True)
                    return
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                try:
                    req = parse_head(raw[:-4])
                except BadRequest as e:
                    await _respond(writer, e.status, "Bad Request", e.reason + "\n", close=True)
                    return
                if self.on_request is not None:
                    self.on_request()
                keep_alive = _keep_alive(req)
                verdict, detail = self._authorise(req)
                if verdict != "ok":
                    if not await _discard_body(reader, req):
                        keep_alive = False
                    if verdict == "login":
                        await self._login(writer, req, detail, keep_alive)
                    elif verdict == "deny":
                        await _respond(writer, 401, "Unauthorized", _DENY_PAGE, close=not keep_alive, html=True)
                    else:
                        await _respond(writer, 403, "Forbidden", "forbidden: " + detail + "\n", close=not keep_alive)
                    if not keep_alive:
                        return
                    continue
                if upstream is None or upstream[1].is_closing():
                    try:
                        upstream = await asyncio.open_connection(*self.upstream, limit=MAX_HEAD)
                    except OSError:
                        await _discard_body(reader, req)
                        await _respond(writer, 502, "Bad Gateway", "TensorBoard is not answering\n", close=True)
                        return
                reusable = await self._exchange(req, reader, writer, upstream)
                if not reusable:
                    upstream[1].close()
                    upstream = None
                if not keep_alive or writer.is_closing():
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadRequest):
            return
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _login(self, writer: asyncio.StreamWriter, req: Request, clean: str, keep_alive: bool) -> None:
        https = (req.header("x-forwarded-proto") or "").lower() == "https"
        # SameSite=None; Secure lets the cookie work inside an iframe, but browsers accept it only over https.
        attrs = "; Secure; SameSite=None" if https else "; SameSite=Lax"
        headers = [
            ("Location", clean or "/"),
            ("Set-Cookie", f"{COOKIE}={self._cookie}; Path=/; HttpOnly{attrs}"),
            ("Referrer-Policy", "no-referrer"),
        ]
        await _respond(writer, 302, "Found", "", close=not keep_alive, extra=headers)

    async def _exchange(
        self,
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> bool:
        """One request/response through TensorBoard. Returns whether the upstream connection can be reused."""
        up_reader, up_writer = upstream
        head = [f"{req.method} {req.target} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in self._forward_headers(req)]
        head.append("Connection: keep-alive")
        up_writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await _copy_body(reader, up_writer, req.header("content-length"), req.header("transfer-encoding"))
        await up_writer.drain()
        raw = await up_reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = raw[:-4].decode("latin-1").partition("\r\n")
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in rest.split("\r\n") if ":" in line]
        status = int(status_line.split(" ")[1])
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
        upstream_closes = any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)
        no_body = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        out = [status_line]
        out += [f"{k}: {v}" for k, v in headers if k.lower() not in ("connection", "keep-alive")]
        delimited = no_body or length is not None or chunked
        if not delimited:
            out.append(
                "Transfer-Encoding: chunked"
            )  # TensorBoard closed-delimited: re-frame so the visitor can keep-alive
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        if no_body:
            pass
        elif length is not None:
            await _copy_exact(up_reader, writer, int(length))
        elif chunked:
            await _copy_chunked(up_reader, writer)
        else:
            while data := await up_reader.read(CHUNK):
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            upstream_closes = True
        await writer.drain()
        return delimited and not upstream_closes


_DENY_PAGE = (
    "<!doctype html><title>Private TensorBoard</title><h1>This TensorBoard is private</h1>"
    "<p>Open the full link nbboard printed (it ends in <code>?nbboard_token=…</code>). "
    "Its owner can print it again with <code>nbboard tunnel --show-url</code>.</p>\n"
)


def _keep_alive(req: Request) -> bool:
    conn = (req.header("connection") or "").lower()
    if req.version == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    reason: str,
    body: str,
    *,
    close: bool,
    html: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    data = body.encode()
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(data)}", "Cache-Control: no-store"]
    head.append(f"Content-Type: {'text/html' if html else 'text/plain'}; charset=utf-8")
    head += [f"{k}: {v}" for k, v in extra or []]
    if close:
        head.append("Connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _discard_body(reader: asyncio.StreamReader, req: Request) -> bool:
    """Skip a refused request's body; False if it cannot be skipped safely (then the connection closes)."""
    te = req.header("transfer-encoding")
    length = req.header("content-length")
    if te is not None:
        return False
    if length is None:
        return True
    try:
        n = int(length)
    except ValueError:
        return False
    if n > 1024 * 1024 or n < 0:
        return False
    await reader.readexactly(n)
    return True


async def _copy_exact(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await src.read(min(n, CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        dst.write(data)
        n -= len(data)
        if dst.transport.get_write_buffer_size() > CHUNK:
            await dst.drain()


async def _copy_chunked(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while True:
        size_line = await src.readuntil(b"\r\n")
        dst.write(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the blank line
                line = await src.readuntil(b"\r\n")
                dst.write(line)
                if line == b"\r\n":
                    return
        await _copy_exact(src, dst, size + 2)


async def _copy_body(src: asyncio.StreamReader, dst: asyncio.StreamWriter, length: str | None, te: str | None) -> None:
    if te is not None and "chunked" in te.lower():
        await _copy_chunked(src, dst)
    elif length is not None:
        try:
            n = int(length)
        except ValueError:
            raise BadRequest(400, "bad Content-Length") from None
        if n < 0:
            raise BadRequest(400, "bad Content-Length")
        await _copy_exact(src, dst, n)
