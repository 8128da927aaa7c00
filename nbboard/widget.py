"""The board widget: synced state only; js/board.js draws it and resolves its URL.

Python never guesses the browser-side URL: the front end knows whether it is
on localhost, behind jupyter-server-proxy or in Colab. The one action that
needs the kernel, Stop, arrives as a custom message and goes through the API.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .registry import Instance


def _static(name: str) -> Path:
    """The front end: ``nbboard/static`` in a wheel, ``js/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "static" / name, here.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"nbboard's front end {name} is missing; reinstall nbboard")


class BoardWidget(anywidget.AnyWidget):
    _esm = _static("board.js")
    _css = _static("board.css")

    status = traitlets.Unicode("starting").tag(sync=True)  # starting | running | failed | stopped | stale
    port = traitlets.Int(0).tag(sync=True)
    pid = traitlets.Int(0).tag(sync=True)
    logdir = traitlets.Unicode("").tag(sync=True)
    path_prefix = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(800).tag(sync=True)
    started_at = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    proxy_template = traitlets.Unicode("").tag(sync=True)
    tunnel_url = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        self._url = ""  # the loopback URL (Instance.url) for front ends without widgets
        kwargs.setdefault("proxy_template", os.environ.get("TENSORBOARD_PROXY_URL", ""))
        super().__init__(**kwargs)
        self.on_msg(self._on_front_end_msg)

    def show(self, instance: Instance) -> None:
        """Point the board at a running instance."""
        self._url = instance.url
        with self.hold_sync():
            self.port = instance.port
            self.pid = instance.pid
            self.logdir = instance.logdir
            self.path_prefix = instance.path_prefix
            self.started_at = float(instance.start_time)
            self.error = ""
            self.note = ""
            self.status = "running" if instance.status == "running" else instance.status

    def fail(self, message: str) -> None:
        with self.hold_sync():
            self.error = message
            self.status = "failed"

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "stop":
            self.stop()
        elif isinstance(content, dict) and content.get("type") == "close_tunnel":
            self.close_tunnel()

    def close_tunnel(self) -> None:
        """Close this board's public tunnel (the widget's Close link button); the board keeps running."""
        from . import api
        from .errors import NbboardError

        try:
            api.close_tunnels(port=self.port)
            self.note = "closed the public link"
        except NbboardError:
            self.note = "the public link was already closed"
        self.tunnel_url = ""

    def stop(self) -> None:
        """Stop this board's TensorBoard (the widget's Stop button)."""
        from . import api
        from .errors import NbboardError

        try:
            report = api.kill(pid=self.pid)
            stopped = bool(report.stopped)
            note = f"stopped TensorBoard on port {self.port} (pid {self.pid})" if stopped else "already stopped"
        except NbboardError:
            note = f"TensorBoard on port {self.port} had already stopped"
        with self.hold_sync():
            self.note = note
            self.status = "stopped"

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
        data["text/plain"] = f"TensorBoard {self.status} on port {self.port}: {self._url}"
        return data, meta
