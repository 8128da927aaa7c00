"""The notebook services nbboard knows, one record each: how to tell it runs there, which view it gets, how a
browser there reaches a port of the kernel, and what to tell a user it cannot reach.

:mod:`nbboard.embed` (the view and the remote hint) and :mod:`nbboard.tunnels.providers` (the offline hint)
read these records; the widget's front end (js/board.js) only tries, in order, the :class:`Route` list it is
handed. Adding a host is one entry in :data:`HOSTS` (before the ones it should win over) and its test. No I/O.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass

#: The default hint, for a browser that cannot reach the kernel's loopback: forward the port, or tunnel.
SSH_HINT = (
    "To open it from another computer, forward the port there:\n"
    "    ssh -L {port}:127.0.0.1:{port} {user}@{host}\n"
    "then open http://127.0.0.1:{port}/\n"
    "or run {tunnel} for a protected public link."
)
OFFLINE_HINT = (
    "this machine may be offline, or a firewall or missing DNS blocks it: check the network "
    "(set HTTPS_PROXY if you must go through a proxy), or try another --provider"
)


@dataclass(frozen=True)
class Route:
    """One way a browser may reach TensorBoard's port, as js/board.js tries it.

    ``url`` is a template: ``%PORT%`` is the port; ``%PAGE_LOOPBACK%`` the page's own loopback name
    (the route is skipped when the page is not on the browser's machine); ``%ORIGIN%%BASE%`` the page's
    origin and Jupyter base URL (skipped on a page without one). ``page`` "remote" skips the route on a page
    served from the browser's machine. ``probe``: False for a template the host vouches for (used as is).
    """

    via: str  # what the board's header says ("via ...")
    url: str
    page: str = "any"  # "any" | "remote"
    probe: bool = True
    same_origin: bool = False

    def to_json(self) -> dict[str, object]:
        return {"via": self.via, "url": self.url, "page": self.page, "probe": self.probe,
                "same_origin": self.same_origin}  # fmt: skip


DIRECT = Route("direct", "http://%PAGE_LOOPBACK%:%PORT%/")
SERVER_PROXY = Route("jupyter-server-proxy", "%ORIGIN%%BASE%proxy/%PORT%/", same_origin=True)
# The browser's own loopback, where VS Code and `ssh -L` forward the kernel's ports.
FORWARDED = Route("forwarded port", "http://127.0.0.1:%PORT%/", page="remote")


@dataclass(frozen=True)
class Host:
    """One place a kernel can run.

    Attributes:
      name: what the board's state says (``host_app``) and what :func:`nbboard.embed.environment` returns.
      modules: it runs here if one of these modules is imported (Colab's runtime imports ``google.colab``).
      env: ...or if one of these environment variables is set (and the kernel is a notebook's, see ``kernel``).
      view: "colab" (an HTML/JS output), "widget" (the anywidget board) or "text" (a link, printed).
      routes: how the widget's browser reaches a port, tried in order (see :class:`Route`).
      proxy_template: a URL template with ``%PORT%`` the host serves every port under ("" if none);
        ``TENSORBOARD_PROXY_URL`` in the kernel's environment takes its place on any host.
      remote_hint: what to do when the browser cannot reach the port ({port}, {user}, {host}, {tunnel}).
      offline_hint: why a tunnel provider may be unreachable here.
      prints_hint: the hint is printed in the cell too (its browser never reaches a port without a tunnel).
      needs_kernel: True if a terminal IPython or plain Python with these markers is still a terminal.
    """

    name: str
    modules: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    view: str = "widget"
    routes: tuple[Route, ...] = (DIRECT, SERVER_PROXY, FORWARDED)
    proxy_template: str = ""
    remote_hint: str = SSH_HINT
    offline_hint: str = OFFLINE_HINT
    prints_hint: bool = False
    needs_kernel: bool = True  # False: this host even outside a notebook's kernel (Colab's runtime)

    def routes_for(self, environ: Mapping[str, str] | None = None) -> list[dict[str, object]]:
        """The routes js/board.js tries, first the proxy template if there is one."""
        environ = os.environ if environ is None else environ
        template = environ.get("TENSORBOARD_PROXY_URL", "") or self.proxy_template
        routes = list(self.routes)
        if template:
            via = "TENSORBOARD_PROXY_URL" if environ.get("TENSORBOARD_PROXY_URL") else self.name
            routes.insert(0, Route(via, template, probe=False))
        return [r.to_json() for r in routes]

    def hint(self, port: int, user: str, host: str, tunnel: str) -> str:
        return self.remote_hint.format(port=port, user=user, host=host, tunnel=tunnel)


#: Every host, most specific first; the last one of each view is the fallback.
HOSTS: tuple[Host, ...] = (
    Host("colab", modules=("google.colab",), view="colab", routes=(), remote_hint="", needs_kernel=False),
    Host(
        "kaggle",
        env=("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE"),
        routes=(DIRECT, SERVER_PROXY),  # Kaggle forwards no port to the browser's machine: nothing to probe there
        remote_hint="Kaggle's browser cannot reach the kernel's ports: run {tunnel} for a protected public link.",
        offline_hint=(
            "this is Kaggle, whose notebooks start with Internet off: turn Internet on in the notebook's settings "
            "(the Settings panel, Internet toggle; it needs a phone-verified account), then run this again"
        ),
        prints_hint=True,
    ),
    # VS Code forwards the kernel's ports to the browser's machine: its loopback first.
    Host("vscode", env=("VSCODE_PID", "VSCODE_CWD", "VSCODE_IPC_HOOK_CLI"), routes=(FORWARDED, DIRECT, SERVER_PROXY)),
    Host("notebook"),
)
TERMINAL = Host("terminal", view="text", routes=())  # IPython without a kernel
PLAIN = Host("plain", view="text", routes=())  # no IPython at all


def by_name(name: str) -> Host:
    for host in (*HOSTS, TERMINAL, PLAIN):
        if host.name == name:
            return host
    raise KeyError(name)


def detect(environ: Mapping[str, str] | None = None, modules: Collection[str] | None = None) -> Host:
    """The first host whose markers are here (the last, a plain notebook, if none). Whether IPython runs a
    kernel at all is :func:`nbboard.embed.environment`'s question (see ``Host.needs_kernel``)."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    for host in HOSTS:
        if any(m in modules for m in host.modules) or any(environ.get(k) for k in host.env):
            return host
    return HOSTS[-1]


def offline_hint(environ: Mapping[str, str] | None = None) -> str:
    """The fix to suggest when a tunnel provider cannot be reached (also from a helper process, no IPython)."""
    return detect(environ).offline_hint
