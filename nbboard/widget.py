"""The board widget: synced state only; js/board.js draws it and resolves its URL.

Python never guesses the browser-side URL: the front end knows whether it is
on localhost, behind jupyter-server-proxy or in Colab. Buttons that need the
kernel (Stop, Close link) arrive as custom messages and run the callbacks the
owner handed in (:class:`nbboard.embed.Board`); this module knows no API.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .instance import Instance
from .links import http_link


def _static(name: str) -> Path:
    """The front end: ``nbboard/static`` in a wheel, ``js/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "static" / name, here.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"nbboard's front end {name} is missing; reinstall nbboard")


#: ``import { … } from "./x.js";`` at the start of a line: a module of ``js/`` that board.js uses.
_IMPORT = re.compile(r'^import \{[^}]*\} from "\./([a-z_]+\.js)";$', re.MULTILINE)


def _module(name: str) -> str:
    """``name`` with the modules it imports inlined: anywidget loads one ES module, with no path to import from
    (the browser tests load js/ as it is, imports and all)."""
    return _IMPORT.sub(
        lambda m: _static(m.group(1)).read_text(encoding="utf-8"), _static(name).read_text(encoding="utf-8")
    )


class BoardWidget(anywidget.AnyWidget):
    _esm = _module("board.js")
    _css = _static("board.css")

    status = traitlets.Unicode("starting").tag(sync=True)  # starting | running | failed | stopped | stale | choose
    port = traitlets.Int(0).tag(sync=True)
    pid = traitlets.Int(0).tag(sync=True)
    logdir = traitlets.Unicode("").tag(sync=True)
    path_prefix = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(800).tag(sync=True)
    started_at = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    proxy_template = traitlets.Unicode("").tag(sync=True)
    # The public link carries its secret, and a front end may save synced state in the .ipynb ("save widget
    # state"): only whether a link is open is synced. The front end asks for the link itself with a custom
    # message when Public link is pressed (see _on_front_end_msg); the answer is never part of any output.
    tunnel_url = traitlets.Unicode("")  # not synced
    tunnel_open = traitlets.Bool(False).tag(sync=True)
    # Where the kernel runs, for a browser that cannot reach its loopback (set by embed.Board):
    host_app = traitlets.Unicode("").tag(sync=True)  # "vscode" | "kaggle" | "colab" | "": a hint, the browser probes
    kernel_user = traitlets.Unicode("").tag(sync=True)
    kernel_host = traitlets.Unicode("").tag(sync=True)
    remote_hint = traitlets.Unicode("").tag(sync=True)
    # Logdirs found when none was given (status "choose"): [{"path", "label", "detail"}], newest first;
    # the front end sets ``chosen`` to the path of the one the user picks.
    candidates = traitlets.List(traitlets.Dict()).tag(sync=True)
    chosen = traitlets.Unicode("").tag(sync=True)  # embed.remote_hint: ssh -L line, local URL, tunnel

    def __init__(self, actions: dict[str, Callable[[], None]] | None = None, **kwargs: Any) -> None:
        self._url = ""  # the loopback URL (Instance.url) for front ends without widgets
        #: What the front end's buttons do, by message type ("stop", "close_tunnel").
        self.actions: dict[str, Callable[[], None]] = dict(actions or {})
        kwargs.setdefault("proxy_template", os.environ.get("TENSORBOARD_PROXY_URL", ""))
        super().__init__(**kwargs)
        self.on_msg(self._on_front_end_msg)
        self.observe(self._on_tunnel_url, names="tunnel_url")

    def _on_tunnel_url(self, change: Any) -> None:
        if change["old"] and change["new"]:
            self.tunnel_open = False  # another link: views drop the one they fetched (a change event each way)
        self.tunnel_open = bool(change["new"])

    def show(self, instance: Instance) -> None:
        """Point the board at a running instance."""
        self._url = instance.url
        with self.hold_sync():
            for name, value in instance.board_state().items():
                setattr(self, name, value)

    def fail(self, message: str) -> None:
        with self.hold_sync():
            self.error = message
            self.status = "failed"

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "tunnel_url":  # Public link pressed: the link goes to that front end only
            url = http_link(self.tunnel_url)
            self.send(
                {"type": "tunnel_url", "url": url}
                if url
                else {"type": "tunnel_url", "error": "the public link is closed"}
            )
            return
        action = self.actions.get(str(content.get("type")))
        if action is not None:
            action()

    def fallback_html(self) -> str:
        """What front ends without widgets show (nbconvert, some editors)."""
        if self.status == "running":
            url = html.escape(self._url)
            return (
                f'<div class="nbboard-fallback">TensorBoard for <code>{html.escape(self.logdir)}</code> on port {self.port} '
                f'(pid {self.pid}): <a href="{url}" target="_blank">{url}</a></div>'
            )
        return f"<div class='nbboard-fallback'>TensorBoard: {html.escape(self.status)} {html.escape(self.error or self.note)}</div>"

    def bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(data, metadata) to publish raw: the same on ipywidgets 7 and 8 (see ``embed.Board._refresh``)."""
        return self._repr_mimebundle_()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data or {})
        data["text/html"] = self.fallback_html()
        if self.status == "running":
            data["text/plain"] = f"TensorBoard running on port {self.port}: {self._url}"
        else:  # no port yet while starting ("port 0" read as a bug), none that matters once it failed
            detail = self.error or self.note
            data["text/plain"] = f"TensorBoard {self.status} for {self.logdir}" + (f": {detail}" if detail else "")
        return data, meta
