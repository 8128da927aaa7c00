"""Another local program on a port a board holds or held: a plain HTTP server with a page of its own.

Real sockets on loopback (127.0.0.1, and [::1] with ``V6Server``), as another user could run them.
"""

from __future__ import annotations

import http.server
import socket


class Squatter(http.server.BaseHTTPRequestHandler):
    """Answers every GET with its own page; ``asked`` collects the paths it was asked for."""

    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.asked.append(self.path)
        body = b"<title>squatter</title>not your board"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def ipv6_loopback() -> bool:
    """Whether this machine has [::1] to bind (where it has none, browsers use 127.0.0.1 only)."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
