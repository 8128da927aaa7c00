"""One code origin for every board: the browser loads TensorBoard's JavaScript once, not once per board.

A board's page is ``index.html`` plus one 6 MB script, ``index.js?_file_hash=…``, which TensorBoard lets
the browser keep for a day. But the browser's HTTP cache and V8's code cache are keyed by the script's
URL, and that URL names the board's port: every new board is a cold load (~2 s of a chart's ~2.5 s on 2
cores) even though the bytes are the same.

So the page of every board of this user that the browser reaches directly on loopback loads the script
from one place: the oldest live board's port (the *code origin*, whose own page is left as it is). The tag
carries the script's SHA-384 (Subresource Integrity) and ``crossorigin="anonymous"``; the code origin
answers the script with ``Access-Control-Allow-Origin: *`` (TensorBoard's public code, no credentials).
If that port no longer answers, or answers with other bytes (another TensorBoard version, or another
user's program that took the port after the board stopped), the browser refuses the script and the page
loads its own copy, as before. Nothing new listens, and the Content-Security-Policy admits exactly that
one extra origin, whose script must match the hash.

Pages reached another way (jupyter-server-proxy, Colab's proxy, a tunnel, a path prefix) are served as
TensorBoard serves them. Off with ``NBBOARD_SHARED_CODE=0``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

#: index.html's script tag, as TensorBoard ships it.
SCRIPT = re.compile(rb'<script src="index\.js\?_file_hash=([0-9a-zA-Z]+)"></script>')
#: Same-origin helpers the rewritten page runs before and after the shared script (CSP allows 'self' only).
BEFORE = "nbboard-code-before.js"
AFTER = "nbboard-code-after.js"
BEFORE_JS = (
    b"window.__nbboardCodeFailed=false;window.addEventListener('error',function(e){var t=e.target;"
    b"if(t&&t.tagName==='SCRIPT'&&t.hasAttribute('data-nbboard-shared'))window.__nbboardCodeFailed=true},true);"
)
#: The shared script failed (refused, no answer, other bytes): load the board's own copy, in order.
AFTER_JS = (
    b"if(window.__nbboardCodeFailed){document.write('<script src=\"'+"
    b"document.currentScript.getAttribute('data-local')+'\"><\\/script>')}"
)
LOOPBACK = ("127.0.0.1", "localhost")
#: Seconds a chosen code origin is trusted before the registry is read again.
CHOICE_TTL = 2.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def enabled() -> bool:
    return os.environ.get("NBBOARD_SHARED_CODE", "1").strip().lower() not in ("0", "false", "no", "off")


def code_origin_port(own_port: int) -> int:
    """The port of the oldest live nbboard board of this user serving at the root on loopback (may be ours)."""
    from . import procs, registry

    try:
        records, _ = registry.read_all()
    except Exception:  # noqa: BLE001 - no registry: serve our own copy
        return own_port
    live = []
    for r in records:
        if r.path_prefix.strip("/") or r.host not in ("127.0.0.1", "localhost") or r.state != "ready":
            continue
        if r.port != own_port and procs.find_launched(r.pid, r.create_time, r.argv)[0] is None:
            continue
        live.append((r.start_time, r.create_time, r.port))
    return min(live)[2] if live else own_port


class Middleware:
    """Wraps TensorBoard's WSGI app (see :data:`nbboard.serve.MIDDLEWARES`)."""

    def __init__(self, app: WSGIApp, origin_port: Callable[[int], int] = code_origin_port) -> None:
        self.app = app
        self.origin_port = origin_port
        self._integrity: str | None = None
        self._choice: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            if path == f"/{BEFORE}":
                return self._static(BEFORE_JS, start_response)
            if path == f"/{AFTER}":
                return self._static(AFTER_JS, start_response)
            if path == "/index.js":
                return self.app(environ, _with_header(start_response, ("Access-Control-Allow-Origin", "*")))
            if path in ("/", "/index.html") and not environ.get("SCRIPT_NAME"):
                host = self._direct_host(environ)
                if host is not None:
                    return self._index(environ, start_response, host)
        return self.app(environ, start_response)

    def _direct_host(self, environ: dict[str, Any]) -> str | None:
        """The loopback name the browser used, when it reached this board's own port directly."""
        name, _, port = str(environ.get("HTTP_HOST", "")).rpartition(":")
        if name not in LOOPBACK or port != str(environ.get("SERVER_PORT")):
            return None
        if any(k in environ for k in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")):
            return None  # through a proxy: the browser may not reach the code origin's port
        return name

    def _port(self, own: int) -> int:
        with self._lock:
            if self._choice is None or time.monotonic() - self._choice[0] > CHOICE_TTL:
                self._choice = (time.monotonic(), self.origin_port(own))
            return self._choice[1]

    def _index(self, environ: dict[str, Any], start_response: Callable[..., Any], host: str) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        headers = list(captured.get("headers", []))
        status = str(captured.get("status", "500"))
        encoding = {k.lower(): v for k, v in headers}.get("content-encoding", "identity")
        own = int(environ["SERVER_PORT"])
        code_port = self._port(own)
        # The code origin's own page stays TensorBoard's: its plain same-origin load is what fills the cache.
        match = (
            SCRIPT.search(body) if status.startswith("200") and encoding == "identity" and code_port != own else None
        )
        integrity = self._script_integrity(environ) if match else None
        if match and integrity:
            origin = f"http://{host}:{code_port}"
            local = match.group(0)[len(b'<script src="') : -len(b'"></script>')].decode()
            tag = (
                f'<script src="{BEFORE}"></script>'
                f'<script src="{origin}/{local}" integrity="{integrity}" crossorigin="anonymous" '
                f"data-nbboard-shared></script>"
                f'<script src="{AFTER}" data-local="{local}"></script>'
            ).encode()
            body = body[: match.start()] + tag + body[match.end() :]
            headers = [_csp_with(h, origin) if h[0].lower() == "content-security-policy" else h for h in headers]
            headers = [h for h in headers if h[0].lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers, captured.get("exc_info"))
        return [body]

    def _script_integrity(self, environ: dict[str, Any]) -> str | None:
        """``sha384-…`` of the script's bytes as this board serves them (decoded), computed once."""
        if self._integrity is None:
            probe = {
                **environ,
                "PATH_INFO": "/index.js",
                "QUERY_STRING": "",
                "HTTP_ACCEPT_ENCODING": "gzip",
                "wsgi.input": io.BytesIO(),
            }
            probe.pop("CONTENT_LENGTH", None)
            meta: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
                meta.update(status=status, headers={k.lower(): v for k, v in headers})
                return lambda data: None

            data = b"".join(self.app(probe, capture))
            if not str(meta.get("status", "")).startswith("200"):
                return None
            if meta["headers"].get("content-encoding") == "gzip":
                data = gzip.decompress(data)
            self._integrity = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        return self._integrity

    @staticmethod
    def _static(body: bytes, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/javascript"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "private, max-age=86400"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [body]


def _with_header(start_response: Callable[..., Any], header: tuple[str, str]) -> Callable[..., Any]:
    def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, header], exc_info)

    return wrapped


def _csp_with(header: tuple[str, str], origin: str) -> tuple[str, str]:
    """TensorBoard's policy, whose script-src also admits ``origin`` (whose script must match the hash)."""
    name, value = header
    parts = [p.strip() for p in value.split(";")]
    for i, part in enumerate(parts):
        if part.startswith("script-src "):
            parts[i] = f"{part} {origin}"
            break
    else:
        return header
    return name, "; ".join(parts)


def middleware(app: WSGIApp) -> WSGIApp:
    """For :data:`nbboard.serve.MIDDLEWARES`."""
    return Middleware(app)
