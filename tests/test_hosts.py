"""The board where notebooks run beyond a local Jupyter: VS Code's webview, and a remote Jupyter without
jupyter-server-proxy. Each renders the shipped js/board.js in headless Chromium for the synced state of a
real board (a real kernel ran ``%board``, a real TensorBoard serves it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbboard import embed, hosts
from tests.browser import StaticSite, board_state_from_kernel, chromium_allowing_third_party_storage, harness_page

MAP = "--host-resolver-rules=MAP %s 127.0.0.1"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaticSite]:
    root = tmp_path / "site"
    root.mkdir()
    server = StaticSite(root)
    try:
        yield server
    finally:
        server.close()


def test_vscode_webview_shows_the_board_through_the_forwarded_port(
    isolated: Path,
    demo_logs: Path,
    site: StaticSite,
    tmp_path: Path,
    artifacts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VS Code cannot run here. Real: the kernel (started with the VSCODE_PID/VSCODE_CWD that VS Code sets),
    its board and synced state, TensorBoard on 127.0.0.1, board.js in Chromium. Faked: VS Code's output
    webview, by a page on a non-loopback origin (vscode-webview.test) with no #jupyter-config-data and a
    minimal anywidget model; VS Code's port forwarding, by TensorBoard being on the browser's own loopback;
    Electron's storage rules, by a browser profile that lets the cross-site TensorBoard iframe use localStorage.
    The board must show TensorBoard with the kernel's hint and, since the browser decides, without it."""
    monkeypatch.setenv("VSCODE_PID", "4242")
    monkeypatch.setenv("VSCODE_CWD", str(tmp_path))
    state = board_state_from_kernel(tmp_path, demo_logs)
    assert state["host_app"] == "vscode"
    port = state["port"]
    pages = {
        "hinted": harness_page(site.root, "vscode.html", state),
        "unhinted": harness_page(
            site.root,
            "vscode-nohint.html",
            {**state, "host_app": "", "routes": hosts.by_name("notebook").routes_for({})},
        ),
    }
    with chromium_allowing_third_party_storage(tmp_path, (MAP % "vscode-webview.test",)) as context:
        page = context.new_page()
        for name in pages.values():
            page.goto(f"http://vscode-webview.test:{site.port}/{name}")
            page.frame_locator("iframe.nbboard-frame").get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
            assert page.locator(".nbboard-frame").get_attribute("src") == f"http://127.0.0.1:{port}/"
            assert "via forwarded port" in page.locator(".nbboard-details").inner_text()
            assert page.locator(".nbboard-unreachable").count() == 0
        page.wait_for_timeout(1500)  # let the charts draw for the screenshot
        page.locator(".nbboard").screenshot(path=str(artifacts / "board-vscode.png"))


def test_remote_jupyter_without_proxy_gives_the_ssh_line_then_shows_the_board_once_forwarded(
    isolated: Path, demo_logs: Path, site: StaticSite, tmp_path: Path, artifacts: Path
) -> None:
    """A remote Jupyter without jupyter-server-proxy. Real: the kernel, its board and synced state (user and
    host computed by the kernel), TensorBoard, board.js in Chromium. Faked: the remote Jupyter page (a page
    on jupyter.remote.test with #jupyter-config-data, whose proxy/ path answers 404 as a server without the
    proxy does) and the network: TensorBoard's port is barred from the browser until the test lifts the bar,
    as `ssh -L` would make it reachable (the profile allows third-party storage, as a default browser does).
    The message must give the exact ssh line, the local URL and
    %board --tunnel; after forwarding, Reload shows the board."""
    state = board_state_from_kernel(tmp_path, demo_logs)
    port = state["port"]
    user, host = embed.kernel_login()
    assert (state["kernel_user"], state["kernel_host"]) == (user, host)
    ssh_line = f"ssh -L {port}:127.0.0.1:{port} {user}@{host}"
    head = '<script id="jupyter-config-data" type="application/json">{"baseUrl": "/jupyter/"}</script>'
    name = harness_page(site.root, "remote.html", state, head=head)
    origin = f"http://jupyter.remote.test:{site.port}"
    with chromium_allowing_third_party_storage(tmp_path, (MAP % "jupyter.remote.test",)) as context:
        barred = re.compile(rf"^https?://[^/]+:{port}/")
        context.route(barred, lambda route: route.abort())
        page = context.new_page()
        page.goto(f"{origin}/{name}")
        message = page.locator(".nbboard-unreachable")
        message.wait_for(timeout=30_000)
        text = message.inner_text()
        page.locator(".nbboard").screenshot(path=str(artifacts / "board-remote-unreachable.png"))
        lines = [line.strip() for line in text.splitlines()]
        assert ssh_line in lines  # on a line of its own, to copy
        then_open, tunnel = f"then open http://127.0.0.1:{port}/", "or run %board --tunnel for a protected public link."
        assert lines.index(ssh_line) < lines.index(then_open) < lines.index(tunnel)
        assert f"tried {origin}/jupyter/proxy/{port}/, http://127.0.0.1:{port}/" in text
        # Terminals say the same, from the same source.
        assert ssh_line in embed.tunnel_hint("terminal", port)

        context.unroute(barred)  # the user ran the ssh line
        page.locator(".nbboard-reload").click()
        page.frame_locator("iframe.nbboard-frame").get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
        assert page.locator(".nbboard-frame").get_attribute("src") == f"http://127.0.0.1:{port}/"
        assert "via forwarded port" in page.locator(".nbboard-details").inner_text()
