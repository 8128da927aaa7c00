"""The board in a real browser: JupyterLab and Notebook 7 in headless Chromium, direct and through
jupyter-server-proxy, plus the Colab and "unreachable" front-end contracts."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import nbboard
from nbboard import hosts
from tests.browser import JupyterServer, StaticSite, board_state_from_kernel, chromium, harness_page
from tests.helpers import ROOT, wait_until

BOARD_CELL = "%board --logdir nbboard-demo/logs --height 600"


@pytest.fixture
def lab(isolated: Path, tmp_path: Path) -> Iterator[JupyterServer]:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "demo.ipynb", work / "demo.ipynb")
    server = JupyterServer(tmp_path, work)
    try:
        server.open_session("demo.ipynb")
        yield server
    finally:
        server.stop()


def _run_demo_until_board(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """Open demo.ipynb and run its cells up to and including the %board cell (not the kill at the end)."""
    page.goto(url)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.content && window.jupyterapp.shell.currentWidget.content.widgets && window.jupyterapp.shell.currentWidget.content.widgets.length > 0",
        timeout=90_000,
    )
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=90_000,
    )
    page.evaluate(
        """(marker) => {
            const app = window.jupyterapp;
            const notebook = app.shell.currentWidget.content;
            const last = notebook.widgets.findIndex((c) => c.model.sharedModel.getSource().startsWith(marker));
            notebook.activeCellIndex = 0;
            for (let i = 0; i <= last; i++) app.commands.execute('notebook:run-cell-and-select-next');
        }""",
        BOARD_CELL,
    )


def _assert_board_shows_loss(page, artifacts: Path, name: str) -> dict:  # type: ignore[no-untyped-def]
    board = page.locator(".nbboard").first
    board.locator(".nbboard-frame").wait_for(timeout=120_000)
    frame = page.frame_locator("iframe.nbboard-frame").first
    # TensorBoard's scalar cards carry the tag name: "loss" was written by the demo.
    frame.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
    page.wait_for_timeout(1500)  # let the charts draw for the screenshot
    board.screenshot(path=str(artifacts / f"{name}.png"))
    return {
        "src": board.locator(".nbboard-frame").get_attribute("src"),
        "details": board.locator(".nbboard-details").inner_text(),
    }


@pytest.mark.parametrize("ui", ["lab", "notebook7"])
def test_board_renders_tensorboard_and_stop_button_stops_it(
    lab: JupyterServer, tmp_path: Path, artifacts: Path, ui: str
) -> None:
    path = "lab/tree/demo.ipynb?reset" if ui == "lab" else "notebooks/demo.ipynb?"
    with chromium(tmp_path) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _run_demo_until_board(page, f"{lab.base}{path}&token={lab.token}")
        seen = _assert_board_shows_loss(page, artifacts, f"board-{ui}")
        (inst,) = nbboard.list()
        assert seen["src"] == f"http://127.0.0.1:{inst.port}/"
        assert f"port {inst.port}" in seen["details"] and "via direct" in seen["details"]
        page.locator(".nbboard .nbboard-stop").first.click()
        page.wait_for_selector(".nbboard[data-state='stopped']", timeout=60_000)
        assert "stopped TensorBoard on port" in page.locator(".nbboard .nbboard-body").first.inner_text()
    assert not psutil.pid_exists(inst.pid) or psutil.Process(inst.pid).status() == psutil.STATUS_ZOMBIE
    assert nbboard.list() == []


def test_board_comes_through_jupyter_server_proxy_when_its_port_is_unreachable(
    lab: JupyterServer, tmp_path: Path, artifacts: Path
) -> None:
    with chromium(tmp_path) as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        # The browser may talk to the Jupyter server's port only, as behind JupyterHub or in a container.
        barred = re.compile(rf"^http://(127\.0\.0\.1|localhost):(?!{lab.port}/)\d+/")
        context.route(barred, lambda route: route.abort())
        page = context.new_page()
        _run_demo_until_board(page, f"{lab.base}lab/tree/demo.ipynb?reset&token={lab.token}")
        seen = _assert_board_shows_loss(page, artifacts, "board-proxy")
        (inst,) = nbboard.list()
        assert seen["src"] == f"{lab.base}proxy/{inst.port}/"
        assert "via jupyter-server-proxy" in seen["details"]


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain page that loads the shipped js/board.js with a minimal model, as a notebook front end would."""
    site = tmp_path / "site"
    site.mkdir()
    server = StaticSite(site)
    try:
        yield f"http://127.0.0.1:{server.port}/", site
    finally:
        server.close()


def _state(inst: nbboard.Instance, **overrides: object) -> dict:
    """The synced state the kernel would send for a running board."""
    state = {"status": "running", "port": inst.port, "pid": inst.pid, "logdir": inst.logdir, "height": 500}
    state.update(
        started_at=inst.start_time, path_prefix="", tunnel_open=False, routes=hosts.by_name("notebook").routes_for({})
    )
    return {**state, **overrides}


def test_kaggle_board_says_what_to_do(
    isolated: Path, demo_logs: Path, static_site: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kaggle's situation: the page comes from another host, with no Jupyter proxy, and the browser cannot reach
    the kernel's ports. Real: the kernel (started with Kaggle's KAGGLE_KERNEL_RUN_TYPE), its board and state,
    TensorBoard, board.js in Chromium. Faked: Kaggle's page (a plain page on kernel.example) and its network
    (TensorBoard's port barred from the browser). The board shows no blank iframe but the next step, and does
    not probe the browser's own loopback, where a Kaggle kernel's ports never are."""
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    state = board_state_from_kernel(tmp_path, demo_logs)
    assert state["host_app"] == "kaggle"
    base, site = static_site
    port = base.rsplit(":", 1)[1].strip("/")
    page_name = harness_page(site, "remote.html", state)
    with chromium(tmp_path, ("--host-resolver-rules=MAP kernel.example 127.0.0.1",)) as browser:
        context = browser.new_context()
        probes: list[str] = []
        context.route(
            re.compile(rf"^https?://[^/]+:{state['port']}/"),
            lambda route: (probes.append(route.request.url), route.abort()),
        )
        page = context.new_page()
        page.goto(f"http://kernel.example:{port}/{page_name}")
        message = page.locator(".nbboard-unreachable")
        message.wait_for(timeout=30_000)
        text = message.inner_text()
        assert (
            "Kaggle's browser cannot reach the kernel's ports: run %board --tunnel for a protected public link." in text
        )
        assert "ssh -L" not in text  # a Kaggle kernel cannot be reached by ssh
        assert probes == [] and page.locator("iframe").count() == 0
        page.locator(".nbboard-stop").click()
        assert page.evaluate("window.sent") == [{"type": "stop"}]


def test_proxy_template_from_the_environment_wins(
    isolated: Path, demo_logs: Path, static_site: tuple[str, Path], tmp_path: Path
) -> None:
    inst = nbboard.start(str(demo_logs))
    base, site = static_site
    template = {"TENSORBOARD_PROXY_URL": "http://127.0.0.1:%PORT%"}  # as the kernel's environment would say
    state = _state(inst, routes=hosts.by_name("notebook").routes_for(template))
    page_name = harness_page(site, "tpl.html", state)
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        page.goto(base + page_name)
        page.frame_locator("iframe.nbboard-frame").get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
        assert page.locator(".nbboard-frame").get_attribute("src") == f"http://127.0.0.1:{inst.port}/"
        assert "via TENSORBOARD_PROXY_URL" in page.locator(".nbboard-details").inner_text()


def test_public_link_in_jupyterlab_with_widget_state_saved(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 item 6 in a real JupyterLab, with "Save Jupyter widget state in notebooks" on: the saved .ipynb
    holds the board's widget state but not the public link's secret (on the old code the synced tunnel_url put
    it there), and the Public link button still opens TensorBoard through the tunnel (a real localtunnel server
    on loopback; Chromium maps *.lt.test to it)."""
    from nbboard import api
    from tests.localtunnel_server import DOMAIN, LocaltunnelServer

    lt = LocaltunnelServer(tmp_path)
    monkeypatch.setenv("NBBOARD_LOCALTUNNEL_HOST", lt.url)  # the Jupyter server's kernels inherit it
    work = tmp_path / "work"
    work.mkdir()
    notebook = json.loads((ROOT / "demo.ipynb").read_text())
    for cell in notebook["cells"]:
        if "".join(cell["source"]).startswith(BOARD_CELL):
            cell["source"] = BOARD_CELL + " --tunnel localtunnel"
    (work / "demo.ipynb").write_text(json.dumps(notebook))
    settings = tmp_path / "lab-settings" / "@jupyter-widgets" / "jupyterlab-manager"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": True}))
    server = JupyterServer(tmp_path, work)
    try:
        server.open_session("demo.ipynb")
        with chromium(tmp_path, (f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1:{lt.port}",)) as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            _run_demo_until_board(page, f"{server.base}lab/tree/demo.ipynb?reset&token={server.token}")
            button = page.locator(".nbboard .nbboard-tunnel").first
            button.wait_for(state="visible", timeout=120_000)
            ((_inst, url),) = api.tunnel_urls()
            secret = url.split("nbboard_token=", 1)[1]
            with page.expect_popup(timeout=60_000) as opened:
                button.click()
            popup = opened.value
            popup.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)  # TensorBoard, through the tunnel
            assert popup.url.startswith(url.split("?", 1)[0])
            page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
            saved = work / "demo.ipynb"
            states = wait_until(lambda: _saved_board_states(saved), "the saved notebook's board state", 30, 0.2)
            assert states[-1]["status"] == "running"  # the board's widget state was saved...
            assert secret not in saved.read_text()  # ...without the secret, and no output carries it
    finally:
        nbboard.kill()
        server.stop()
        lt.stop()


def _saved_board_states(path: Path) -> list[dict]:
    """The board widgets' states that JupyterLab saved in the notebook's metadata."""
    with contextlib.suppress(ValueError):
        widgets = json.loads(path.read_text()).get("metadata", {}).get("widgets", {})
        models = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        return [m["state"] for m in models.values() if "logdir" in m.get("state", {})]
    return []
