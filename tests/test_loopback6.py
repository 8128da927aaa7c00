"""``http://localhost:PORT/`` is the board, never another program on ``[::1]:PORT`` (nbboard/loopback6.py).

Real: nbboard's boards (TensorBoard through ``nbboard.serve``), Debian's Chromium through Playwright, and a
squatter that is a plain socket server on ``[::1]``, as another local user could run. JupyterLab opened at
``http://localhost:8888/`` frames a board at ``http://localhost:PORT/`` (js/board.js keeps the page's name),
and Chromium tries ``[::1]`` first.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import requests
from werkzeug import serving

import nbboard
from nbboard import loopback6
from nbboard.config import BoardConfig
from nbboard.demo import write_demo_logs
from tests.browser import chromium
from tests.squatter import Squatter, V6Server, ipv6_loopback

pytestmark = pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 loopback: browsers use 127.0.0.1 only")


def test_no_other_program_can_answer_for_a_board_at_localhost(isolated: Path, tmp_path: Path) -> None:
    """While the board runs, another program cannot bind ``[::1]`` at its port, and a browser opening the board
    at ``localhost`` gets TensorBoard."""
    if not ipv6_loopback():
        pytest.skip("IPv6 loopback is disabled here: browsers use 127.0.0.1 only")
    board = nbboard.start(str(write_demo_logs(tmp_path / "logs")), config=BoardConfig(standby=False))
    squatter = None
    try:
        squatter = V6Server(("::1", board.port), Squatter)
    except OSError:
        pass
    if squatter is not None:
        threading.Thread(target=squatter.serve_forever, daemon=True).start()
    try:
        assert squatter is None, f"another program bound [::1]:{board.port} while the board runs"
        assert sorted(requests.get(f"http://[::1]:{board.port}/data/runs", timeout=10).json()) == ["eval", "train"]
        with chromium(tmp_path) as browser:
            page = browser.new_context().new_page()
            page.goto(f"http://localhost:{board.port}/")
            assert page.title() == "TensorBoard"
    finally:
        if squatter is not None:
            squatter.shutdown()
            squatter.server_close()


def test_a_port_whose_ipv6_twin_is_taken_is_not_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another program already holds ``[::1]`` at the port the system gave: the board takes another port (a
    port the user named stays, and the log says to open 127.0.0.1)."""
    if not ipv6_loopback():
        pytest.skip("IPv6 loopback is disabled here: browsers use 127.0.0.1 only")

    def app(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"board"]

    held = V6Server(("::1", 0), Squatter)
    taken = held.server_address[1]
    ports = iter([taken, 0])
    made: list[serving.BaseWSGIServer] = []

    def create() -> serving.BaseWSGIServer:
        made.append(serving.make_server("127.0.0.1", next(ports), app))
        return made[-1]

    try:
        server = loopback6.with_twin(create, system_port=True)
        port = server.server_address[1]
        assert port != taken and len(made) == 2
        assert requests.get(f"http://[::1]:{port}/", timeout=10).text == "board"
        capsys.readouterr()
        ports = iter([taken])
        named = loopback6.with_twin(create, system_port=False)
        assert named.server_address[1] == taken
        assert capsys.readouterr().out.splitlines() == [
            f"nbboard: another program listens on [::1]:{taken}; a browser opening http://localhost:{taken}/ "
            f"reaches it, not this board: open http://127.0.0.1:{taken}/"
        ]
    finally:
        held.server_close()
        for s in made:
            twin = getattr(s, "nbboard_twin", None)
            if twin is not None:
                twin.shutdown()
                twin.server_close()
            s.server_close()


def test_a_named_port_held_on_ipv6_loopback_is_refused_clearly(isolated: Path, tmp_path: Path) -> None:
    """``--port P`` while another program listens on ``[::1]:P`` only (127.0.0.1:P is free): a browser opening
    ``http://localhost:P/`` would reach that program, so the start fails as for a port taken on 127.0.0.1."""
    if not ipv6_loopback():
        pytest.skip("IPv6 loopback is disabled here: browsers use 127.0.0.1 only")
    held = V6Server(("::1", 0), Squatter)
    port = held.server_address[1]
    try:
        with pytest.raises(nbboard.NbboardError, match=f"port {port} is in use"):
            nbboard.start(str(write_demo_logs(tmp_path / "logs")), port=port, config=BoardConfig(standby=False))
        assert nbboard.list() == []  # nothing was started
    finally:
        held.server_close()
