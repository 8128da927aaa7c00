"""Test peers for the gate: a Gate on its own loop, an upstream that echoes what reached it, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nbboard.tunnels.gate import Gate
from nbboard.tunnels.secrets import new_secret

SECRET = new_secret()
BEARER = b"Authorization: Bearer " + SECRET.encode() + b"\r\n"


class GateThread:
    """A Gate on its own event loop in a thread, as the helper runs it. ``errors`` collects anything the
    loop reports unhandled: a gate that "survives" by losing tasks to exceptions would show up there."""

    def __init__(self, upstream_port: int, secret: str | None = SECRET, **options: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict] = []
        self.loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        self.gate = Gate(upstream_port, secret, **options)  # type: ignore[arg-type]
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


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    """An Echo upstream on loopback; yields its port."""
    Echo.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def connect(gate: GateThread, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gate.gate.port), timeout=timeout)


def read_head(s: socket.socket, buf: bytearray) -> tuple[int, dict[str, str]]:
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a full response head: {bytes(buf)[:200]!r}"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    buf[:] = rest
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = headers.get(k.strip().lower(), "") + v.strip()
    return int(lines[0].split(" ")[1]), headers


def read_body(s: socket.socket, buf: bytearray, headers: dict[str, str]) -> bytes:
    def need(n: int) -> None:
        while len(buf) < n:
            chunk = s.recv(65536)
            assert chunk, "connection closed inside a body"
            buf.extend(chunk)

    if "content-length" in headers:
        n = int(headers["content-length"])
        need(n)
        body = bytes(buf[:n])
        del buf[:n]
        return body
    assert headers.get("transfer-encoding") == "chunked", headers
    out = b""
    while True:
        while b"\r\n" not in buf:
            need(len(buf) + 1)
        line, _, _ = bytes(buf).partition(b"\r\n")
        del buf[: len(line) + 2]
        size = int(line, 16)
        need(size + 2)
        out += bytes(buf[:size])
        del buf[: size + 2]
        if size == 0:
            return out


def until_closed(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def same_origin(location: str) -> bool:
    printable = all(0x21 <= ord(c) <= 0x7E for c in location)
    joined = urllib.parse.urlsplit(urllib.parse.urljoin("https://tunnel.example/a/b", location))
    return printable and location[:1] == "/" and location[1:2] not in ("/", "\\") and joined.netloc == "tunnel.example"
