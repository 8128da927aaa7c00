"""The board widget: synced state only; js/board.js (over the shared js/view.js) draws it and resolves its URL.

Python never guesses the browser-side URL: the kernel hands the front end the
host's routes (:mod:`nbboard.hosts`), and the browser tries them. Buttons
that need the kernel (Stop, Close link) arrive as custom messages and run the
callbacks the owner handed in (:class:`nbboard.embed.Board`); this module
knows no API. The state and action names are :mod:`nbboard.boardview`'s.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from . import frontend
from .boardview import Action, BoardState, Status
from .instance import Instance
from .links import http_link


class BoardWidget(anywidget.AnyWidget, BoardState):
    # anywidget hands _esm to the browser as one module: js/board.js with js/view.js inlined (frontend.module).
    _esm = frontend.module("board.js")
    _css = frontend.static("board.css")

    # Beyond BoardState (status, port, pid, logdir, …), what only the widget has:
    # How this browser may reach the port, in order (nbboard.hosts.Host.routes_for).
    routes = traitlets.List(traitlets.Dict()).tag(sync=True)
    # The public link carries its secret, and a front end may save synced state in the .ipynb ("save widget
    # state"): only whether a link is open is synced. The front end asks for the link itself with a custom
    # message when Public link is pressed (see _on_front_end_msg); the answer is never part of any output.
    tunnel_open = traitlets.Bool(False).tag(sync=True)
    # Logdirs found when none was given (status "choose"): [{"path", "label", "detail"}], newest first;
    # the front end sets ``chosen`` to the path of the one the user picks.
    candidates = traitlets.List(traitlets.Dict()).tag(sync=True)
    chosen = traitlets.Unicode("").tag(sync=True)

    def __init__(self, recheck: Callable[[], object] | None = None, **kwargs: Any) -> None:
        self._url = ""  # the loopback URL (Instance.url) for front ends without widgets
        self.handle: Any = None
        #: The owner's check that the board is still there (embed.Board): run when a front end asks for the whole
        #: state, i.e. when it makes its view anew (a page reload), so that the state it gets says so.
        self.recheck = recheck
        super().__init__(**kwargs)
        self.on_msg(self._on_front_end_msg)
        self.observe(self._on_tunnel_url, names="tunnel_url")

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        # ipywidgets asks for the whole state (key None) when the model is made and when a front end restores it
        # from the kernel (request_state, request_states): after a page reload, before any view frames the port.
        if key is None and self.recheck is not None:
            self.recheck()
        return super().get_state(key=key, drop_defaults=drop_defaults)

    def _on_tunnel_url(self, change: Any) -> None:
        if change["old"] and change["new"]:
            self.tunnel_open = False  # another link: views drop the one they fetched (a change event each way)
        self.tunnel_open = bool(change["new"])

    def show(self, instance: Instance) -> None:
        self._url = instance.url
        super().show(instance)

    # -- the view protocol (boardview.BoardView): the bundle goes out raw, never the widget object:
    # ipywidgets 7 displays a widget through ``_ipython_display_``, which ignores display_id, so an update
    # would show the widget twice.

    def display(self) -> None:
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        self.handle = display(data, metadata=metadata, raw=True, display_id=True)

    def refresh(self) -> None:
        """Re-send the bundle so the text/html fallback (nbconvert, no widgets) is current too."""
        if self.handle is not None:
            data, metadata = self._repr_mimebundle_()
            self.handle.update(data, metadata=metadata, raw=True)

    def show_again(self, height: int) -> bool:
        """A new view of the same model: no new comm, no front-end code sent again."""
        if self.comm is None:
            return False
        self.height = height
        self.display()
        return True

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == Action.TUNNEL_URL:  # Public link pressed: the link goes to that front end only
            url = http_link(self.tunnel_url)
            self.send(
                {"type": Action.TUNNEL_URL, "url": url}
                if url
                else {"type": Action.TUNNEL_URL, "error": "the public link is closed"}
            )
            return
        action = self.actions.get(str(content.get("type")))
        if action is not None:
            action()

    def fallback_html(self) -> str:
        """What front ends without widgets show (nbconvert, some editors)."""
        if self.status == Status.RUNNING:
            url = html.escape(self._url)
            return (
                f'<div class="nbboard-fallback">TensorBoard for <code>{html.escape(self.logdir)}</code> on port {self.port} '
                f'(pid {self.pid}): <a href="{url}" target="_blank">{url}</a></div>'
            )
        return f"<div class='nbboard-fallback'>TensorBoard: {html.escape(self.status)} {html.escape(self.error or self.note)}</div>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data or {})
        data["text/html"] = self.fallback_html()
        if self.status == Status.RUNNING:
            data["text/plain"] = f"TensorBoard running on port {self.port}: {self._url}"
        else:  # no port yet while starting ("port 0" read as a bug), none that matters once it failed
            detail = self.error or self.note
            data["text/plain"] = f"TensorBoard {self.status} for {self.logdir}" + (f": {detail}" if detail else "")
        return data, meta
