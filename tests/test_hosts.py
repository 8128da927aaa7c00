"""The board where notebooks run beyond a local Jupyter: VS Code's webview, and a remote Jupyter without
jupyter-server-proxy. Each renders the shipped js/board.js in headless Chromium for the synced state of a
real board (a real kernel ran ``%board``, a real TensorBoard serves it). And the host records themselves
(nbboard/hosts.py): what each is told, and which URLs its browser tries, in js/board.js run by node."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbboard import embed, hosts
from tests.browser import StaticSite, board_state_from_kernel, chromium_allowing_third_party_storage, harness_page
from tests.helpers import ROOT

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


# ---------------------------------------------------------------------------
# Issue 20, item 7: a host is one record


def _tried(routes: list[dict], page: str, base: str | None, port: int = 6006) -> list[str | None]:
    """What js/board.js's routeUrl makes of each route on a page at ``page`` (Jupyter base URL ``base``)."""
    config = "null" if base is None else json.dumps(json.dumps({"baseUrl": base}))
    script = (
        f"import {{ routeUrl }} from {json.dumps((ROOT / 'js' / 'board.js').as_uri())};"
        f"const location = new URL({json.dumps(page)});"
        f"const config = {config};"
        "const document = { getElementById: () => (config === null ? null : { textContent: config }), body: null };"
        f"const routes = {json.dumps(routes)};"
        f"console.log(JSON.stringify(routes.map((r) => routeUrl(r, {port}, {{ location, document }}))));"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_each_host_gets_the_urls_it_always_got() -> None:
    """The candidate order board.js had built in, now each host's routes: direct on a local page, then
    jupyter-server-proxy, then the browser's own loopback on a remote page (first on VS Code, never on Kaggle)."""
    notebook, vscode, kaggle = (hosts.by_name(n).routes_for({}) for n in ("notebook", "vscode", "kaggle"))
    local, remote = "http://localhost:8888/lab", "https://hub.example/user/me/lab"
    assert [r["via"] for r in notebook] == ["direct", "jupyter-server-proxy", "forwarded port"]
    assert _tried(notebook, local, "/") == ["http://localhost:6006/", "http://localhost:8888/proxy/6006/", None]
    assert _tried(notebook, "http://[::1]:8888/", None) == ["http://127.0.0.1:6006/", None, None]
    assert _tried(notebook, remote, "/user/me/") == [
        None,
        "https://hub.example/user/me/proxy/6006/",
        "http://127.0.0.1:6006/",
    ]
    assert [r["via"] for r in vscode][0] == "forwarded port"
    assert _tried(vscode, "vscode-webview://abc/index.html", None) == ["http://127.0.0.1:6006/", None, None]
    assert "forwarded port" not in [
        r["via"] for r in kaggle
    ]  # Kaggle forwards nothing: no probe of the user's own ports
    assert _tried(kaggle, "https://kkb-production.jupyter-proxy.kaggle.net/k/1/", None) == [None, None]


def test_a_proxy_template_comes_first_and_is_used_as_is() -> None:
    """TENSORBOARD_PROXY_URL, on any host, and a host's own template: the browser is not asked to probe it."""
    routes = hosts.by_name("vscode").routes_for({"TENSORBOARD_PROXY_URL": "/user/me/proxy/%PORT%"})
    assert routes[0] == {"via": "TENSORBOARD_PROXY_URL", "url": "/user/me/proxy/%PORT%", "page": "any",
                         "probe": False, "same_origin": False}  # fmt: skip
    assert _tried(routes[:1], "https://hub.example/lab", None) == ["/user/me/proxy/6006/"]


def test_a_forged_base_url_never_sends_the_probe_or_the_frame_to_another_host() -> None:
    """The jupyter-server-proxy route is the page's origin followed by Jupyter's base URL, which board.js reads
    from the page's first #jupyter-config-data (or body's data-base-url). On a front end without Jupyter's own
    element (VS Code's webview), a notebook's Markdown or HTML output can hold one: a base that is not a path
    ("@evil.example/", ".evil.example/", "//evil.example/") must not turn that route into another host, which
    would be probed with a JSON answer it controls and then framed as the board. Jupyter's own bases still work."""
    notebook = hosts.by_name("notebook").routes_for({})
    proxy = [r for r in notebook if r["via"] == "jupyter-server-proxy"]
    page = "https://hub.example/user/me/lab"
    for forged in ("@evil.example/", ".evil.example/", "//evil.example/", "/\\evil.example/", "evil/"):
        (url,) = _tried(proxy, page, forged)
        assert url is None, (forged, url)
    for base, expected in (
        ("/user/me/", "https://hub.example/user/me/proxy/6006/"),
        ("/", "https://hub.example/proxy/6006/"),
    ):
        assert _tried(proxy, page, base) == [expected]


def test_a_proxy_template_that_is_not_a_web_address_is_never_framed() -> None:
    """TENSORBOARD_PROXY_URL is used without a probe. A javascript: or data: value (a mistyped or planted
    environment variable) would run in the notebook's own page as the frame's source or the Open link: the
    route is skipped instead, and the next one is tried."""
    for value in ("javascript:alert(document.domain)//%PORT%", "data:text/html,<script>alert(1)</script>%PORT%"):
        routes = hosts.by_name("notebook").routes_for({"TENSORBOARD_PROXY_URL": value})
        assert _tried(routes, "http://localhost:8888/lab", "/") == [
            None,
            "http://localhost:6006/",
            "http://localhost:8888/proxy/6006/",
            None,
        ]


def test_adding_a_host_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that serves every port under its own path (SageMaker Studio's shape, say): one record, and
    detection, the routes the widget gets, the hints and the offline hint follow from it."""
    studio = hosts.Host(
        "studio",
        env=("STUDIO_TEST_MARKER",),
        proxy_template="%ORIGIN%/jupyter/default/proxy/%PORT%/",
        remote_hint="Studio shows ports at /jupyter/default/proxy/{port}/; or run {tunnel}.",
        offline_hint="Studio's space has no internet: give its domain a NAT gateway",
    )
    monkeypatch.setattr(hosts, "HOSTS", (studio, *hosts.HOSTS))
    environ = {"STUDIO_TEST_MARKER": "1"}
    assert hosts.detect(environ, modules=()) is studio and hosts.detect({}, modules=()).name == "notebook"
    routes = studio.routes_for(environ)
    assert routes[0]["via"] == "studio" and routes[0]["probe"] is False
    assert _tried(routes[:1], "https://d-1.studio.example/jupyter/default/lab", None) == [
        "https://d-1.studio.example/jupyter/default/proxy/6006/"
    ]
    monkeypatch.setenv("STUDIO_TEST_MARKER", "1")
    assert (
        embed.remote_hint("studio", 6006, "me", "box")
        == "Studio shows ports at /jupyter/default/proxy/6006/; or run %board --tunnel."
    )
    from nbboard.tunnels import providers

    assert providers.offline_hint() == studio.offline_hint


def test_kaggle_and_terminals_keep_their_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENSORBOARD_PROXY_URL", raising=False)
    assert embed.remote_hint("kaggle", 6006, "me", "box") == (
        "Kaggle's browser cannot reach the kernel's ports: run %board --tunnel for a protected public link."
    )
    assert embed.tunnel_hint("terminal", 6006).splitlines()[-1] == (
        "or run nbboard tunnel --port 6006 for a protected public link."
    )
    assert embed.tunnel_hint("notebook", 6006) == "" and embed.tunnel_hint("vscode", 6006) == ""
    assert embed.tunnel_hint("kaggle", 6006).startswith("Kaggle's browser")
    from nbboard.tunnels import providers

    monkeypatch.setenv("KAGGLE_URL_BASE", "https://www.kaggle.com")
    assert providers.offline_hint().startswith("this is Kaggle, whose notebooks start with Internet off")
    monkeypatch.delenv("KAGGLE_URL_BASE")
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert providers.offline_hint().startswith("this machine may be offline")
