"""Real peers for browser tests: a JupyterLab server and headless Debian Chromium (Playwright)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(root: Path) -> str:
    """A JupyterLab settings dir without the "Jupyter news" toast (it covers part of the page and asks the network)."""
    settings = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    return str(root / "lab-settings")


class JupyterServer:
    """``jupyter lab`` on 127.0.0.1 with a token, its settings and runtime files under ``root``."""

    def __init__(self, root: Path, notebook_dir: Path) -> None:
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.base = f"http://127.0.0.1:{self.port}/"
        env = os.environ.copy()
        env.update(
            JUPYTERLAB_SETTINGS_DIR=lab_settings(root),
            JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
            JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        )
        self.log = open(root / "jupyter.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                f"--port={self.port}", f"--IdentityProvider.token={self.token}",
                "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
                f"--ServerApp.root_dir={notebook_dir}", "--ServerApp.port_retries=0",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(root / 'jupyter.log').read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + "api/status", headers=self.headers, timeout=2).ok:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("jupyter lab did not answer in 90 s")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def open_session(self, path: str) -> None:
        """Create the kernel session first, so the page opens with no "Select Kernel" dialog."""
        body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
        r = requests.post(self.base + "api/sessions", json=body, headers=self.headers, timeout=60)
        r.raise_for_status()

    def stop(self) -> None:
        with contextlib.suppress(requests.RequestException):
            for s in requests.get(self.base + "api/sessions", headers=self.headers, timeout=5).json():
                requests.delete(self.base + f"api/sessions/{s['id']}", headers=self.headers, timeout=10)
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def _chromium_env(tmp: Path) -> Iterator[dict[str, str]]:
    # Chromium writes its profile and caches under XDG dirs: keep them in the test's tmp, not under ~.
    # Its singleton socket lives in TMPDIR, whose path must stay short (a unix socket path limit).
    short_tmp = tempfile.mkdtemp(prefix="nbb-chr-", dir="/tmp" if os.path.isdir("/tmp") else None)
    try:
        yield {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp / "xdg-config"),
            "XDG_CACHE_HOME": str(tmp / "xdg-cache"),
            "TMPDIR": short_tmp,
        }
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)


@contextlib.contextmanager
def chromium(tmp: Path, extra_args: tuple[str, ...] = ()) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with _chromium_env(tmp) as env, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], env=env)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_allowing_third_party_storage(tmp: Path, extra_args: tuple[str, ...] = ()) -> Iterator[object]:
    """A browser context whose profile lets cross-site iframes use their storage, as VS Code's Electron
    webviews and browsers with default settings do. Debian's Chromium 156 blocks third-party storage by
    default, and TensorBoard in a cross-site iframe then fails on localStorage ("Data could not be loaded")."""
    from playwright.sync_api import sync_playwright

    profile = tmp / "chromium-profile"
    (profile / "Default").mkdir(parents=True, exist_ok=True)
    prefs = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    with _chromium_env(tmp) as env, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], env=env
        )
        try:
            yield context
        finally:
            context.close()


class _LoopbackServer:
    """An HTTP server in a thread on 127.0.0.1, stopped by close()."""

    def _serve(self, handler: object) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ForwardingProxy(_LoopbackServer):
    """A minimal reverse proxy on 127.0.0.1 to one upstream port: a stand-in for a hosted
    notebook's port proxy (Colab's proxyPort URLs), which cannot run here."""

    def __init__(self, upstream_port: int, extra_headers: dict[str, str] | None = None) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers.update(extra_headers or {})
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_HEAD = _forward

        self._serve(Handler)


class StaticSite(_LoopbackServer):
    """A plain HTTP server on 127.0.0.1 for a directory: the stand-in notebook pages."""

    def __init__(self, root: Path) -> None:
        from functools import partial
        from http.server import SimpleHTTPRequestHandler

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        self.root = root
        self._serve(partial(Quiet, directory=str(root)))


# A notebook front end reduced to what board.js uses: anywidget's model API over a state dict.
HARNESS = """<!doctype html><html><head><link rel="stylesheet" href="board.css"></head><body>%(head)s<div id="host"></div><script type="module">
%(prelude)s
const state = %(state)s;
const listeners = {};
window.sent = [];
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (listeners["change:" + k] || []).forEach((f) => f()); },
  on: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
  off: () => {},
  save_changes: () => {},
  send: (m) => window.sent.push(m),
};
const mod = await import("./board.js");
mod.default.render({ model, el: document.getElementById("host") });
</script></body></html>"""


def harness_page(site: Path, name: str, state: dict, prelude: str = "", head: str = "") -> str:
    """Write a page that renders the shipped js/board.js for ``state``; returns its name."""
    # anywidget's _esm (board.js imports view.js and frame_park.js), _css
    for front_end in ("board.js", "view.js", "frame_park.js", "board.css"):
        if not (site / front_end).exists():
            shutil.copy(Path(__file__).resolve().parent.parent / "js" / front_end, site / front_end)
    public = {k: v for k, v in state.items() if not k.startswith("_")}  # not the widget's own _esm/_css
    (site / name).write_text(
        HARNESS % {"state": json.dumps(public).replace("</", "<\\/"), "prelude": prelude, "head": head}
    )
    return name


def board_state_from_kernel(cwd: Path, logdir: Path) -> dict:
    """Run ``%board`` in a real kernel (started with this process's environment, as VS Code or Kaggle
    would start it with theirs) and return the board widget's synced state, as its front end gets it."""
    from tests.kernel import Kernel, widget_state

    kernel = Kernel(cwd)
    try:
        kernel.text("%load_ext nbboard")
        outs = kernel.run(f"%board --logdir {logdir}")
        errors = [o for o in outs if o["type"] == "error"]
        assert not errors, "\n".join(errors[0]["traceback"])
        state = widget_state(outs)
        assert state["status"] == "running", state
        return state
    finally:
        kernel.shutdown()


CHP = Path(__file__).resolve().parent / "peers" / "node_modules" / ".bin" / "configurable-http-proxy"


class JupyterHub:
    """A real JupyterHub on 127.0.0.1: configurable-http-proxy from npm, a shared-password authenticator,
    SimpleLocalProcessSpawner (no system users) and single-user JupyterLab servers at ``/user/<name>/``
    with jupyter-server-proxy. Every state file lives under ``root``; single-user servers get ``env``."""

    PASSWORD = "nbboard-hub-test"

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        if not CHP.exists():
            subprocess.run(["bash", str(CHP.parents[2] / "install.sh")], check=True, timeout=600)
        self.port, api_port, proxy_api_port = free_port(), free_port(), free_port()
        self.root = root / "hub"
        self.root.mkdir()
        self.base = f"http://127.0.0.1:{self.port}/"
        user_env = {
            "PATH": os.environ.get("PATH", ""),
            "JUPYTERLAB_SETTINGS_DIR": lab_settings(self.root),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.root / "lab-workspaces"),
            **env,
        }
        config = f"""
c.JupyterHub.bind_url = "http://127.0.0.1:{self.port}/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {api_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.ConfigurableHTTPProxy.pid_file = {str(self.root / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{self.root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {str(self.root / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(self.root / "jupyterhub.pid")!r}
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {self.PASSWORD!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = {str(self.root / "home" / "{username}")!r}
c.Spawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root", "--LabApp.expose_app_in_browser=True"]
c.Spawner.default_url = "/lab"
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = c.Spawner.http_timeout = 120
c.Spawner.environment = {user_env!r}
"""
        (self.root / "jupyterhub_config.py").write_text(config)
        self.log = open(self.root / "jupyterhub.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.root / "jupyterhub_config.py")],
            cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited: {self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                # The proxy answers 404 until the hub has added its route: wait for the hub itself.
                if requests.get(self.base + "hub/api/", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"jupyterhub did not answer in 90 s: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.root / "jupyterhub.log").read_text(errors="replace")[-3000:]

    def processes(self) -> list[object]:
        """Live processes of this hub: working under its root (hub, single-user servers, kernels) or its proxy."""
        import psutil

        found = []
        for p in psutil.process_iter(["cmdline", "cwd", "status"]):
            cmd = p.info["cmdline"] or []
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            ours = str(p.info["cwd"] or "").startswith(str(self.root))
            proxy = any("configurable-http-proxy" in c for c in cmd) and str(self.port) in cmd
            if ours or proxy:
                found.append(p)
        return found

    def running(self) -> list[str]:
        return [" ".join(p.info["cmdline"] or []) for p in self.processes()]  # type: ignore[attr-defined]

    def listening(self) -> set[str]:
        """The addresses this hub's processes listen on."""
        import psutil

        addresses = set()
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                conns = p.net_connections("inet") if hasattr(p, "net_connections") else p.connections("inet")  # type: ignore[attr-defined]
                addresses |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
        return addresses

    def stop(self) -> list[str]:
        """SIGTERM the hub (it stops its proxy and single-user servers); returns what outlived it, killed."""
        import signal

        import psutil

        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        _, alive = psutil.wait_procs(family, timeout=15)
        leftovers = []
        for p in alive:
            with contextlib.suppress(psutil.Error):
                leftovers.append(" ".join(p.cmdline()))
                p.kill()
        self.log.close()
        return leftovers
