"""Every board's page loads TensorBoard's code from one origin (issue 18), in a real browser, safely.

Real: nbboard's boards (TensorBoard through ``nbboard.serve``), Debian's Chromium through Playwright, and
in the squatting case a real other program on the recorded code-origin port. Nothing is timed: the tests
check where the browser got the script from (Resource Timing's ``transferSize`` is 0 for the HTTP cache)
and that the chart is drawn.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

import nbboard
from nbboard import registry
from nbboard.config import BoardConfig
from nbboard.demo import write_demo_logs
from nbboard.registry import BoardRecord
from tests.browser import chromium
from tests.gates import BEARER, GateThread, raw

COLD = BoardConfig(standby=False)
#: Every fetch of TensorBoard's script by the page: where from, whether from the HTTP cache, whether it came.
SCRIPT = """() => performance.getEntriesByType('resource')
  .filter(e => new URL(e.name).pathname.endsWith('/index.js'))
  .map(e => ({url: e.name, cached: e.transferSize === 0, ok: e.responseStatus === 200}))"""


def _open(page, url: str) -> list[dict]:  # type: ignore[no-untyped-def]
    page.goto(url + "#timeseries")
    page.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)  # TensorBoard's code ran and drew the tags
    return page.evaluate(SCRIPT)


def test_a_second_board_takes_its_code_from_the_browsers_cache(isolated: Path, tmp_path: Path) -> None:
    first = nbboard.start(str(write_demo_logs(tmp_path / "a")), config=COLD)
    second = nbboard.start(str(write_demo_logs(tmp_path / "b", seed=1)), config=COLD)
    assert first.port != second.port
    with chromium(tmp_path) as browser:
        page = browser.new_context().new_page()
        (seen,) = _open(page, first.url)
        assert seen["url"].startswith(f"http://127.0.0.1:{first.port}/index.js") and seen["ok"] and not seen["cached"]
        (again,) = _open(page, second.url)
        # The second board's page ran the very script the browser already had, from the first board's origin.
        assert again["url"] == seen["url"] and again["ok"] and again["cached"], again
    # The script is TensorBoard's own, whole (what the integrity hash in the page names).
    page_html = requests.get(second.url, timeout=10).text
    assert f'src="http://127.0.0.1:{first.port}/index.js?_file_hash=' in page_html and 'integrity="sha384-' in page_html


def test_a_board_without_its_code_origin_loads_its_own(isolated: Path, tmp_path: Path) -> None:
    """The code origin stopped after the page was served: the browser cannot get the script there, and the
    page loads the board's own copy (TensorBoard still draws)."""
    first = nbboard.start(str(write_demo_logs(tmp_path / "a")), config=COLD)
    second = nbboard.start(str(write_demo_logs(tmp_path / "b", seed=1)), config=COLD)
    html = requests.get(second.url, timeout=10).text
    assert f"http://127.0.0.1:{first.port}/index.js" in html
    nbboard.kill(port=first.port)
    with chromium(tmp_path) as browser:
        context = browser.new_context()
        # Serve the page exactly as it was written while the first board lived.
        context.route(second.url, lambda route: route.fulfill(body=html, content_type="text/html"))
        shared, own = _open(context.new_page(), second.url)
        assert shared["url"].startswith(f"http://127.0.0.1:{first.port}/index.js") and not shared["ok"]
        assert own["url"].startswith(f"http://127.0.0.1:{second.port}/index.js") and own["ok"], own


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the squatter is a Linux process recorded by pid")
def test_a_program_squatting_the_code_origin_cannot_inject_code(isolated: Path, tmp_path: Path) -> None:
    """A board stopped and another program (another user's, say) now listens on the recorded code-origin port
    and answers with its own script: the browser refuses it (the hash does not match) and the page runs the
    board's own copy. The attacker's script never runs."""
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.js").write_text("window.__injected = true;")
    # It even sends the CORS header TensorBoard's code origin sends: only the integrity hash stops it.
    serve = (
        "import functools, http.server as h\n"
        "class H(h.SimpleHTTPRequestHandler):\n"
        "    def end_headers(self):\n"
        "        self.send_header('Access-Control-Allow-Origin', '*')\n"
        "        super().end_headers()\n"
        f"s = h.HTTPServer(('127.0.0.1', 0), functools.partial(H, directory={str(evil)!r}))\n"
        "print('Serving HTTP on 127.0.0.1 port', s.server_address[1], flush=True)\n"
        "s.serve_forever()\n"
    )
    squatter = subprocess.Popen(
        [sys.executable, "-c", serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = squatter.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        proc = psutil.Process(squatter.pid)
        # The registry names it as an older board (its real pid, creation time and command line): it is chosen.
        registry.ensure_home()
        registry.write(
            BoardRecord(
                pid=squatter.pid,
                port=port,
                logdir=str(tmp_path),
                create_time=proc.create_time(),
                cache_key="squatter",
                argv=tuple(proc.cmdline()),
                start_time=int(time.time()) - 3600,
            )
        )
        board = nbboard.start(str(write_demo_logs(tmp_path / "b", seed=1)), config=COLD)
        assert f"http://127.0.0.1:{port}/index.js" in requests.get(board.url, timeout=10).text
        with chromium(tmp_path) as browser:
            page = browser.new_context().new_page()
            refused, own = _open(page, board.url)
            assert refused["url"].startswith(f"http://127.0.0.1:{port}/index.js")  # asked, answered, refused
            assert own["url"].startswith(f"http://127.0.0.1:{board.port}/index.js") and own["ok"], own
            assert page.evaluate("window.__injected === undefined")
    finally:
        squatter.kill()
        squatter.wait()


def test_pages_reached_through_a_proxy_are_tensorboards_own(isolated: Path, tmp_path: Path) -> None:
    """jupyter-server-proxy, Colab's proxy, tunnels: another Host, or forwarded headers. The browser may not
    reach the code origin's port from there, so the page is served as TensorBoard serves it."""
    nbboard.start(str(write_demo_logs(tmp_path / "a")), config=COLD)
    board = nbboard.start(str(write_demo_logs(tmp_path / "b", seed=1)), config=COLD)
    plain = '<script src="index.js?_file_hash='
    for headers in (
        {"Host": f"hub.example:{board.port}"},
        {"Host": "127.0.0.1:8888"},
        {"X-Forwarded-For": "10.0.0.1"},
    ):
        html = requests.get(board.url, headers=headers, timeout=10).text
        assert plain in html and "nbboard-code" not in html, headers
    assert "nbboard-code" in requests.get(board.url, timeout=10).text


def test_a_tunnel_visitor_gets_tensorboards_own_page_whatever_its_host(isolated: Path, tmp_path: Path) -> None:
    """Through the tunnel's auth gate (real, with its secret), a visitor whose request names TensorBoard's own
    loopback address as its Host, or sends none (HTTP/1.0, for which the gate writes that address), still gets
    TensorBoard's page: never one that names the user's other boards' ports (the code origin), nor a script on
    the visitor's own machine."""
    first = nbboard.start(str(write_demo_logs(tmp_path / "a")), config=COLD)
    board = nbboard.start(str(write_demo_logs(tmp_path / "b", seed=1)), config=COLD)
    assert "nbboard-code" in requests.get(board.url, timeout=10).text  # directly, the page is rewritten
    gate = GateThread(board.port)
    try:
        for request in (
            b"GET / HTTP/1.0\r\n" + BEARER + b"\r\n",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % board.port + BEARER + b"Connection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: localhost:%d\r\n" % board.port + BEARER + b"Connection: close\r\n\r\n",
        ):
            answer = raw(gate.gate.port, request)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            line = request.split(b"\r\n")[1] if b"Host" in request else b"(no Host)"  # not the secret's line
            assert b'<script src="index.js?_file_hash=' in answer and b"nbboard-code" not in answer, line
            assert b":%d" % first.port not in answer
    finally:
        gate.close()


def test_shared_code_can_be_turned_off(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBBOARD_SHARED_CODE", "0")
    nbboard.start(str(write_demo_logs(tmp_path / "a")), config=COLD)
    board = nbboard.start(str(write_demo_logs(tmp_path / "b", seed=1)), config=COLD)
    assert '<script src="index.js?_file_hash=' in requests.get(board.url, timeout=10).text
