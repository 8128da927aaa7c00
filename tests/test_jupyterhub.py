"""The board behind a real JupyterHub, in headless Chromium: nothing is faked.

JupyterHub from pip with configurable-http-proxy from npm, a shared-password login, SimpleLocalProcessSpawner,
a single-user JupyterLab at ``/user/<name>/`` with jupyter-server-proxy, a real kernel running ``%board``.
The browser opens the hub as ``hub.test`` (a remote hub's situation) and may not reach any loopback port,
so TensorBoard can only come through ``/user/<name>/proxy/<port>/``; the user configures nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import nbboard
from nbboard import api
from tests.browser import JupyterHub, chromium
from tests.helpers import ROOT

USER = "alice"


@pytest.fixture
def hub(isolated: Path, tmp_path: Path) -> Iterator[JupyterHub]:
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {"NBBOARD_HOME": os.environ["NBBOARD_HOME"], "TMPDIR": os.environ["TMPDIR"], "PYTHONPATH": pythonpath}
    server = JupyterHub(tmp_path, env)
    leftovers: list[str] = []
    try:
        yield server
    finally:
        try:
            api.kill()  # the boards are detached: they would outlive the hub
        finally:
            leftovers = server.stop()
    assert not leftovers, f"processes outlived the hub: {leftovers}"
    assert server.running() == []  # no jupyterhub, node proxy, single-user server or kernel left


def test_board_loads_through_the_hubs_proxy_path(
    hub: JupyterHub, demo_logs: Path, tmp_path: Path, artifacts: Path
) -> None:
    origin = f"http://hub.test:{hub.port}"
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext nbboard"),
            nbformat.v4.new_code_cell(f"%board --logdir {demo_logs} --height 600"),
        ]
    )
    with chromium(tmp_path, ("--host-resolver-rules=MAP hub.test 127.0.0.1",)) as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        barred: list[str] = []
        loopback = re.compile(r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)")
        context.route(loopback, lambda route: (barred.append(route.request.url), route.abort()))
        page = context.new_page()
        page.goto(f"{origin}/hub/login")
        page.fill("#username_input", USER)
        page.fill("#password_input", JupyterHub.PASSWORD)
        page.click("#login_submit")
        page.wait_for_url(re.compile(rf"/user/{USER}/lab"), timeout=150_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.serviceManager", timeout=120_000)
        page.evaluate(
            """async (nb) => {
                const services = window.jupyterapp.serviceManager;
                await services.contents.save("board.ipynb", { type: "notebook", format: "json", content: nb });
                await services.sessions.startNew({ path: "board.ipynb", type: "notebook", name: "board.ipynb",
                                                   kernel: { name: "python3" } });
            }""",
            notebook,
        )
        page.goto(f"{origin}/user/{USER}/lab/tree/board.ipynb?reset")
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                return kernel && kernel.status === "idle" && w.content.widgets.length === 2;
            }""",
            timeout=120_000,
        )
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        board = page.locator(".nbboard").first
        board.locator(".nbboard-frame").wait_for(timeout=120_000)
        page.frame_locator("iframe.nbboard-frame").first.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
        (inst,) = nbboard.list()
        assert board.locator(".nbboard-frame").get_attribute("src") == f"{origin}/user/{USER}/proxy/{inst.port}/"
        assert "via jupyter-server-proxy" in board.locator(".nbboard-details").inner_text()
        assert not any(f":{inst.port}/" in url for url in barred)  # same-origin proxy first: no direct probe
        running = hub.running()  # what the teardown must find stopped
        assert any("configurable-http-proxy" in c for c in running)
        assert any("jupyterhub.singleuser" in c for c in running)
        # Hub, proxy, single-user server, kernel and board: loopback only (the board holds [::1] at its port too).
        listening = hub.listening()
        assert "127.0.0.1" in listening and listening <= {"127.0.0.1", "::1"}, listening
        page.wait_for_timeout(1500)  # let the charts draw for the screenshot
        board.screenshot(path=str(artifacts / "board-jupyterhub.png"))
