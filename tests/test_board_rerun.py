"""A re-run board cell shows the same live TensorBoard document again (js/frame_park.js), in a real JupyterLab.

Real: JupyterLab 4 and its kernels, TensorBoard, Debian's Chromium (headless, Playwright). Each test marks the
board frame's window (a property only that document has) and counts the requests for the board's index page:
the same document shown again keeps the mark and asks for nothing; a new load has neither. No timing.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import nbboard
from nbboard.demo import write_demo_logs
from tests.browser import JupyterServer, chromium
from tests.helpers import crash, wait_until
from tests.squatter import Squatter, V6Server, ipv6_loopback

#: The notebook panel at ``path`` in the page (the main area may hold several).
PANEL = """(path) => window.jupyterapp.shell.widgets('main') ? [...window.jupyterapp.shell.widgets('main')]
  .find((w) => w.context && w.context.path === path) : null"""


def _notebook(path: Path, *cells: str) -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None} for s in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@pytest.fixture
def lab(isolated: Path, tmp_path: Path) -> Iterator[tuple[JupyterServer, Path]]:
    work = tmp_path / "work"
    work.mkdir()
    server = JupyterServer(tmp_path, work)
    try:
        yield server, work
    finally:
        nbboard.kill()
        server.stop()


class Page:
    """One JupyterLab page, driven the way a user would: open a notebook, run or clear a cell."""

    def __init__(self, page: Any, server: JupyterServer) -> None:
        self.page, self.server = page, server
        #: every request for a board's index page, as "port"
        self.index_requests: list[int] = []
        page.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        match = re.match(r"^http://127\.0\.0\.1:(\d+)/(\?.*)?$", request.url)
        if match and int(match.group(1)) != self.server.port:
            self.index_requests.append(int(match.group(1)))

    def open(self, path: str, cells: int) -> None:
        self.server.open_session(path)
        self.page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", path)
        self.page.wait_for_function(
            f"(path) => {{ const p = ({PANEL})(path); return p && p.sessionContext.session"
            f" && p.sessionContext.session.kernel && p.sessionContext.session.kernel.status === 'idle'"
            f" && p.content.widgets.length === {cells}; }}",
            arg=path,
            timeout=120_000,
        )

    def command(self, path: str, cell: int, command: str) -> None:
        """Run a notebook command on one cell, and wait for it (running: until the kernel answered)."""
        self.page.evaluate(
            f"""async ([path, cell, command]) => {{
                const app = window.jupyterapp;
                const panel = ({PANEL})(path);
                app.shell.activateById(panel.id);
                while (app.shell.currentWidget !== panel) await new Promise((r) => setTimeout(r, 50));
                panel.content.activeCellIndex = cell;
                panel.content.widgets[cell].node.scrollIntoView({{block: 'start'}});
                // The board now in this cell's output is the old one: the checks below look for another.
                for (const b of panel.content.widgets[cell].node.querySelectorAll('.nbboard')) b.dataset.old = '1';
                await app.commands.execute(command);
            }}""",
            [path, cell, command],
        )

    def board_frame(self, path: str, cell: int) -> Any:
        """The frame of the new board view in that cell's output, once TensorBoard shows the demo's "loss" card."""
        handle = self.page.wait_for_function(
            f"""([path, cell]) => {{
                const node = ({PANEL})(path).content.widgets[cell].node;
                const frame = node.querySelector('.jp-OutputArea .nbboard:not([data-old]) iframe.nbboard-frame');
                return frame && frame.getBoundingClientRect().height > 0 ? frame : null;
            }}""",
            arg=[path, cell],
            timeout=120_000,
        )
        frame = handle.as_element().content_frame()
        frame.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
        return frame

    def show_board(self, path: str, cells: int) -> None:
        """Open the notebook, run ``%load_ext`` (cell 0) and the board (cell 1), and mark the board's document."""
        self.open(path, cells)
        self.command(path, 0, "notebook:run-cell")
        self.command(path, 1, "notebook:run-cell")
        _mark(self.board_frame(path, 1))

    def parked(self) -> int:
        return self.page.evaluate("() => document.querySelectorAll('#nbboard-parked-frames iframe').length")

    def restart(self, path: str) -> None:
        (session,) = [
            s
            for s in requests.get(self.server.base + "api/sessions", headers=self.server.headers, timeout=10).json()
            if s["path"] == path
        ]
        url = self.server.base + f"api/kernels/{session['kernel']['id']}/restart"
        requests.post(url, headers=self.server.headers, timeout=60).raise_for_status()
        self.page.wait_for_function(
            f"(path) => ({PANEL})(path).sessionContext.session.kernel.status === 'idle'", arg=path, timeout=60_000
        )
        time.sleep(1.0)  # the front end's widget manager handles the restart


def _mark(frame: Any) -> None:
    frame.evaluate("() => { window.__nbboardTestMark = 'the same document'; }")


def _mark_of(frame: Any) -> str | None:
    return frame.evaluate("() => window.__nbboardTestMark || null")


def _lab(browser: Any, server: JupyterServer) -> Page:
    """JupyterLab, restored, in a new browser context."""
    lab_page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    lab_page.goto(f"{server.base}lab?reset&token={server.token}")
    lab_page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.commands.hasCommand('docmanager:open')", timeout=120_000
    )
    lab_page.evaluate("async () => { await window.jupyterapp.restored; }")
    return Page(lab_page, server)


def test_a_rerun_shows_the_same_document_and_no_other_board_or_notebook_gets_it(
    lab: tuple[JupyterServer, Path], tmp_path: Path
) -> None:
    """Cell A's output cleared parks its frame; board B's new cell, and a second notebook showing the very same
    board A, each load their own; re-running cell A then shows A's first document again, with no new request."""
    server, work = lab
    a, b = (write_demo_logs(tmp_path / f"logs-{n}", seed=i) for i, n in enumerate("ab"))
    _notebook(work / "one.ipynb", "%load_ext nbboard", f"%board --logdir {a} --height 500", f"%board --logdir {b}")
    _notebook(work / "two.ipynb", "%load_ext nbboard", f"%board --logdir {a} --height 500")
    with chromium(tmp_path) as browser:
        page = _lab(browser, server)
        page.show_board("one.ipynb", 3)
        (board_a,) = nbboard.list()
        assert page.index_requests == [board_a.port]

        page.command("one.ipynb", 1, "notebook:clear-cell-output")
        assert page.parked() == 1  # A's document, kept out of sight

        page.command("one.ipynb", 2, "notebook:run-cell")
        frame_b = page.board_frame("one.ipynb", 2)
        board_b = next(i for i in nbboard.list() if i.pid != board_a.pid)
        assert _mark_of(frame_b) is None and frame_b.url.startswith(f"http://127.0.0.1:{board_b.port}/")

        page.open("two.ipynb", 2)
        page.command("two.ipynb", 0, "notebook:run-cell")
        page.command("two.ipynb", 1, "notebook:run-cell")  # the same board A, reused: another notebook
        frame_a2 = page.board_frame("two.ipynb", 1)
        assert [i.pid for i in nbboard.list() if i.port == board_a.port] == [board_a.pid]
        assert _mark_of(frame_a2) is None and frame_a2.url.startswith(f"http://127.0.0.1:{board_a.port}/")
        assert page.parked() == 1

        requested = list(page.index_requests)
        page.command("one.ipynb", 1, "notebook:run-cell")
        frame_a = page.board_frame("one.ipynb", 1)
        assert _mark_of(frame_a) == "the same document"
        assert page.index_requests == requested  # TensorBoard was not loaded again
        assert page.parked() == 0
        page.page.context.close()


def test_after_a_kernel_restart_the_same_document_and_never_a_stopped_boards(
    lab: tuple[JupyterServer, Path], tmp_path: Path
) -> None:
    """Re-running the board cell keeps the document, and so does re-running it after a kernel restart; once
    the board was stopped (from elsewhere: the old output still shows it), the re-run shows the new board,
    loaded anew, and the stopped board's frame is gone from the page."""
    server, work = lab
    a = write_demo_logs(tmp_path / "logs-a")
    _notebook(work / "one.ipynb", "%load_ext nbboard", f"%board --logdir {a} --height 500")
    with chromium(tmp_path) as browser:
        page = _lab(browser, server)
        page.show_board("one.ipynb", 2)
        (board,) = nbboard.list()

        page.command("one.ipynb", 1, "notebook:run-cell")  # a re-run: the same board, the same document
        assert _mark_of(page.board_frame("one.ipynb", 1)) == "the same document"

        page.restart("one.ipynb")
        page.command("one.ipynb", 0, "notebook:run-cell")
        page.command("one.ipynb", 1, "notebook:run-cell")
        assert _mark_of(page.board_frame("one.ipynb", 1)) == "the same document"
        assert page.index_requests == [board.port]

        nbboard.kill(pid=board.pid)  # as `nbboard kill` in a terminal would: the output still shows the board
        page.command("one.ipynb", 1, "notebook:run-cell")
        frame = page.board_frame("one.ipynb", 1)
        (new,) = nbboard.list()
        assert new.pid != board.pid
        assert _mark_of(frame) is None and frame.url.startswith(f"http://127.0.0.1:{new.port}/")
        assert page.index_requests[-1] == new.port
        page.page.wait_for_function(  # the stopped board's frame is dropped, not kept out of sight
            "() => !document.querySelector('#nbboard-parked-frames iframe')", timeout=30_000
        )
        page.page.context.close()


#: A Markdown cell (sanitized HTML: JupyterLab keeps ``id`` attributes and ``<style>``) that claims the id of the
#: page's hidden container of parked frames, and a stylesheet that would show that container and its frames.
HOSTILE_MARKDOWN = (
    '<div id="nbboard-parked-frames" class="hostile">a Markdown cell</div>\n\n'
    "<style>#nbboard-parked-frames, #nbboard-parked-frames iframe { position: fixed !important;"
    " left: 0 !important; top: 0 !important; width: 600px !important; height: 400px !important;"
    " visibility: visible !important; overflow: visible !important; z-index: 99999 !important; }</style>\n"
)

#: Does the frame show anywhere in the viewport? (a grid of points, each asked which element is on top)
FRAME_ON_SCREEN = """(frame) => {
    for (let x = 5; x < innerWidth; x += innerWidth / 24)
        for (let y = 5; y < innerHeight; y += innerHeight / 24)
            if (document.elementFromPoint(x, y) === frame) return true;
    return false;
}"""


def test_a_parked_frame_never_goes_into_a_page_element_that_claims_its_shelf(
    lab: tuple[JupyterServer, Path], tmp_path: Path
) -> None:
    """An attack on the page's hidden container of parked frames: a Markdown cell (or any sanitized HTML
    output, even of an untrusted notebook) holding an element with the container's id, and a stylesheet to
    show it. The board's cleared output parks its frame out of sight all the same (never inside that cell,
    nowhere on screen), and a re-run still shows the same document. (It held before frame_park.js found its
    container by reference: JupyterLab 4's sanitizer renames ``id`` to ``data-jupyter-id`` and drops
    ``<style>``; the test keeps nbboard from relying on that.)"""
    server, work = lab
    a = write_demo_logs(tmp_path / "logs-a")
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": HOSTILE_MARKDOWN},
            *(
                {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
                for s in ("%load_ext nbboard", f"%board --logdir {a} --height 300")
            ),
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (work / "one.ipynb").write_text(json.dumps(nb))
    with chromium(tmp_path) as browser:
        page = _lab(browser, server)
        page.open("one.ipynb", 3)
        page.page.wait_for_function("() => document.querySelector('.jp-RenderedMarkdown .hostile')", timeout=60_000)
        page.command("one.ipynb", 1, "notebook:run-cell")
        page.command("one.ipynb", 2, "notebook:run-cell")
        _mark(page.board_frame("one.ipynb", 2))

        page.command("one.ipynb", 2, "notebook:clear-cell-output")
        frame = page.page.wait_for_function(
            "() => [...document.querySelectorAll('iframe.nbboard-frame')].find((f) => !f.closest('.jp-OutputArea'))"
        )
        assert frame.evaluate("(f) => !f.closest('.jp-Cell') && !f.closest('.hostile')")  # not in the Markdown cell
        assert not page.page.evaluate(FRAME_ON_SCREEN, frame)

        page.command("one.ipynb", 2, "notebook:run-cell")
        assert _mark_of(page.board_frame("one.ipynb", 2)) == "the same document"
        page.page.context.close()


def _listening(server_class: type[http.server.HTTPServer], address: tuple[str, int]) -> http.server.HTTPServer | None:
    """A squatter bound to ``address``, or None while the port is still in use: a killed board's connections to
    the browser linger in FIN_WAIT until the browser closes its side, and hold the port meanwhile (SO_REUSEADDR
    only passes TIME_WAIT). Another program has to wait for them just the same."""
    try:
        return server_class(address, Squatter)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return None
        raise


@contextlib.contextmanager
def _squatting(port: int) -> Iterator[None]:
    """Hold ``port`` on 127.0.0.1 and, where IPv6 loopback exists, on [::1], as another program would, as soon
    as the port can be had, with :attr:`Squatter.asked` empty at first."""
    Squatter.asked = []
    addresses: list[tuple[type[http.server.HTTPServer], str]] = [(http.server.ThreadingHTTPServer, "127.0.0.1")]
    if ipv6_loopback():  # else browsers use 127.0.0.1 only
        addresses.append((V6Server, "::1"))
    servers = [
        wait_until(
            lambda cls=cls, host=host: _listening(cls, (host, port)), f"port {port} on {host} to be free", timeout=120
        )
        for cls, host in addresses
    ]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_a_board_that_exited_is_never_framed_again_when_the_page_comes_back(
    lab: tuple[JupyterServer, Path], tmp_path: Path
) -> None:
    """The board's process ends by itself (killed here, as a crash would end it), another program takes its
    port, and the notebook is opened anew in the browser (a page reload or another tab: the widget is restored
    from the kernel). Its output says the board exited and frames nothing: the other program is asked for
    nothing, neither the probe nor a page (before, the restored view probed the port and framed the other
    program as the board)."""
    server, work = lab
    a = write_demo_logs(tmp_path / "logs-a")
    _notebook(work / "one.ipynb", "%load_ext nbboard", f"%board --logdir {a} --height 500")
    with chromium(tmp_path) as browser:
        page = _lab(browser, server)
        page.show_board("one.ipynb", 2)
        (board,) = nbboard.list()
        page.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.page.context.close()
        crash(board.pid)
        with _squatting(board.port):
            again = _lab(browser, server)
            again.open("one.ipynb", 2)
            state = again.page.wait_for_function(
                f"""() => {{
                    const node = ({PANEL})('one.ipynb').content.widgets[1].node;
                    const view = node.querySelector('.jp-OutputArea .nbboard');
                    if (!view) return null;
                    if (view.querySelector('iframe')) return 'framed';
                    return view.dataset.state === 'stopped' ? view.textContent : null;
                }}""",
                timeout=120_000,
            ).json_value()
            time.sleep(1.0)  # a probe or a frame would have reached the other program by now
            assert state != "framed" and "has exited" in state, state
            assert Squatter.asked == []
            again.page.context.close()


def test_a_board_that_exits_while_its_page_stays_open_is_shown_stopped_and_never_framed_again(
    lab: tuple[JupyterServer, Path], tmp_path: Path
) -> None:
    """The board's process ends (killed here, as a crash or ``nbboard kill`` in a terminal would end it) while
    the notebook stays open and another cell is running, as a training loop would be. Within moments the view
    says the board exited, drops its frame and disables Reload; a program that then takes the port is asked for
    nothing, Reload pressed or not (before, the view kept its frame and Reload framed that program as the
    board: through jupyter-server-proxy, on Jupyter's own origin)."""
    server, work = lab
    a = write_demo_logs(tmp_path / "logs-a")
    _notebook(
        work / "one.ipynb", "%load_ext nbboard", f"%board --logdir {a} --height 500", "import time; time.sleep(300)"
    )
    with chromium(tmp_path) as browser:
        page = _lab(browser, server)
        page.show_board("one.ipynb", 3)
        (board,) = nbboard.list()
        page.page.evaluate(  # run the long cell, without waiting for it
            f"""() => {{
                const panel = ({PANEL})('one.ipynb');
                panel.content.activeCellIndex = 2;
                window.jupyterapp.commands.execute('notebook:run-cell');
            }}"""
        )
        page.page.wait_for_function(
            f"() => ({PANEL})('one.ipynb').sessionContext.session.kernel.status === 'busy'", timeout=60_000
        )
        crash(board.pid)
        state = page.page.wait_for_function(
            f"""() => {{
                const view = ({PANEL})('one.ipynb').content.widgets[1].node.querySelector('.jp-OutputArea .nbboard');
                return view && view.dataset.state === 'stopped' && !document.querySelector('iframe.nbboard-frame')
                    && view.querySelector('.nbboard-reload').disabled ? view.textContent : null;
            }}""",
            timeout=30_000,
        ).json_value()
        assert "has exited" in state and f"port {board.port}" in state, state
        assert page.page.evaluate(f"() => ({PANEL})('one.ipynb').sessionContext.session.kernel.status") == "busy"
        with _squatting(board.port):
            page.page.evaluate(
                f"() => ({PANEL})('one.ipynb').content.widgets[1].node.querySelector('.nbboard-reload').click()"
            )
            time.sleep(1.0)  # a probe or a frame would have reached the other program by now
            assert Squatter.asked == []
            assert page.page.evaluate("() => document.querySelectorAll('iframe.nbboard-frame').length") == 0
            page.page.context.close()
