"""The board on Colab: one HTML/JS output, drawn the way Colab's own tools draw theirs.

Colab draws third-party widgets only through a widget manager it loads from a CDN, and comm messages
from later cells may never reach views in earlier outputs. So on Colab the board is plain HTML (header,
state and message, readable with no script at all) plus js/colab_board.js, which asks
``google.colab.kernel.proxyPort`` for TensorBoard's URL and runs the buttons through
``google.colab.kernel.invokeFunction``. The kernel side of those calls is one callback registered with
``google.colab.output.register_callback``. Every change of state re-sends the output under its display
id (update_display_data), so a starting board becomes a running or failed one in place.

Like the widget, a view holds state only (:class:`nbboard.boardview.BoardState`): Stop and Close link run
the callbacks its owner (:class:`nbboard.embed.Board`) handed in, which call the API. The markup here is what
a reader without scripts sees (a saved notebook); with scripts, js/view.js (the widget's view too) redraws its
header and messages from the same state, in the same words (tests/test_view_contract.py).
"""

from __future__ import annotations

import contextlib
import html
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from . import frontend
from .boardview import LIVE, Action, BoardState, Status
from .links import http_link

#: The name under which the kernel answers the output's buttons (``invokeFunction(CALLBACK, [view, action])``).
CALLBACK = "nbboard.board"

#: How many outputs with live buttons the kernel answers for; older ones ask for their cell to run again.
KEEP_VIEWS = 64
#: The state the output shows (and its script draws from): all of BoardState but what Colab never draws (the
#: secret link, and the hints for browsers that cannot reach a port: Colab's proxy reaches every port).
DRAWN = tuple(sorted(set(BoardState.class_trait_names()) - {"tunnel_url", "host_app", "remote_hint"}))
_views: dict[str, ColabView] = {}  # view id -> view whose buttons can still act, oldest first (see _forget_old)
_registered = False


class ColabView(BoardState):
    """One board's Colab output. Each attribute change updates the output in place (one update per
    :meth:`hold_sync` block); nothing is shown twice: the output is displayed once, by :meth:`display`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view_id = secrets.token_hex(8)
        self.handle: Any = None
        self._held = 0
        self._sent: tuple[object, ...] = ()
        self.observe(self._changed)
        _views[self.view_id] = self
        _forget_old()
        self.callback = CALLBACK if _register_callback() else ""

    def display(self) -> None:
        """Send the output once; later changes update it under the same display id."""
        from IPython.display import display

        self._sent = self._drawn()
        self.handle = display(self, display_id=True)

    def refresh(self) -> None:
        """Nothing to do: every change under :meth:`hold_sync` already updated the output."""

    def show_again(self, height: int) -> bool:
        """No: a board shown again on Colab is a new output (its buttons are bound to this one's id)."""
        return False

    @contextlib.contextmanager
    def hold_sync(self) -> Iterator[None]:
        """Batch changes into one update of the output (the widget's ``hold_sync``, for embed.Board)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            self._refresh()

    def _changed(self, _change: Any) -> None:
        self._refresh()
        if self.status not in LIVE:
            _views.pop(self.view_id, None)  # ended: its output's buttons no longer reach the kernel

    def _refresh(self) -> None:
        if self._held or self.handle is None:
            return
        drawn = self._drawn()
        if drawn != self._sent:  # e.g. remote_hint or a new tunnel URL: nothing on screen changes
            self._sent = drawn
            self.handle.update(self)

    def _drawn(self) -> tuple[object, ...]:
        """What the output shows (the uptime counts on in the browser)."""
        return (*(getattr(self, name) for name in DRAWN), bool(self.tunnel_url))

    # -- what the output shows

    def html(self, script: bool = True) -> str:
        """The output: markup a reader without scripts understands, then the script that brings it to life."""
        elapsed = max(0.0, time.time() - self.started_at) if self.started_at else 0.0
        config = {
            "view": self.view_id,
            "callback": self.callback,
            **{name: getattr(self, name) for name in DRAWN},
            "elapsed": round(elapsed, 1),  # the browser counts on from here: no clock skew with the kernel
        }
        parts = [
            f'<div class="nbboard nbboard-colab" data-state="{_e(self.status)}">',
            _header(self, elapsed),
            _note(self),
            f'<div class="nbboard-body">{_body(self, elapsed)}</div>',
            f'<script type="application/json" class="nbboard-config">{_script_json(config)}</script>',
            "</div>",
        ]
        if script:
            hidden = ".nbboard-colab [hidden] { display: none !important; }"  # over board.css's display rules
            parts.insert(0, f"<style>{frontend.static('board.css').read_text()}\n{hidden}</style>")
            parts.append(f"<script>{frontend.script('colab_board.js')}</script>")
        return "".join(parts)

    def text(self) -> str:
        """For front ends that show text only."""
        if self.status == Status.FAILED:
            return f"TensorBoard could not start:\n{self.error}"
        if self.status == Status.RUNNING:
            return f"TensorBoard running on port {self.port} (pid {self.pid}) for {self.logdir}"
        return f"TensorBoard {self.status}" + (f": {self.note}" if self.note else "")

    def _repr_mimebundle_(self, **_kwargs: Any) -> dict[str, str]:
        return {"text/html": self.html(), "text/plain": self.text()}


def _header(view: ColabView, elapsed: float) -> str:
    from .fmt import clock

    status = view.status
    details = []
    if view.port:
        details.append(f"port {view.port}")
    if view.pid:
        details.append(f"pid {view.pid}")
    if status == Status.RUNNING and view.started_at:
        details.append(f"up {clock(elapsed)}")
    if status == Status.STARTING:
        details.append(f"starting… {clock(elapsed)}")
    where = f"kernel on {view.kernel_user}@{view.kernel_host}" if view.kernel_host else ""
    title = f"TensorBoard · {view.logdir}" if view.logdir else "TensorBoard"
    live = status == Status.RUNNING
    tunnel = (
        '<button class="nbboard-button nbboard-tunnel" title="Open the public link (it carries its secret)">'
        "Public link ↗</button>"
        '<button class="nbboard-button nbboard-close-tunnel" title="Close the public link">Close link</button>'
        if view.tunnel_url and live
        else ""
    )
    stop = "" if (live or status == Status.STARTING) and view.pid else " disabled"
    return (
        '<div class="nbboard-header">'
        f'<span class="nbboard-state" data-state="{_e(status)}">{_e(status)}</span>'
        f'<span class="nbboard-title">{_e(title)}</span>'
        f'<span class="nbboard-details" title="{_e(where)}">{" · ".join(details)}</span>'
        '<span class="nbboard-actions" hidden>'
        '<a class="nbboard-button nbboard-open" target="_blank" rel="noopener" hidden>Open in tab ↗</a>'
        f"{tunnel}"
        f'<button class="nbboard-button nbboard-reload" title="Reload the board"{"" if live else " disabled"}>Reload</button>'
        f'<button class="nbboard-button nbboard-stop" title="Stop this TensorBoard"{stop}>Stop</button>'
        "</span></div>"
    )


def _body(view: ColabView, elapsed: float) -> str:
    from .fmt import clock

    status = view.status
    if status == Status.STARTING:
        what = f" for {_e(view.logdir)}" if view.logdir else ""
        return _message("progress", f"Starting TensorBoard{what}… {clock(elapsed)}")
    if status == Status.FAILED:
        error = view.error or "TensorBoard failed to start."
        return _message("failed", "TensorBoard could not start:", f'<pre class="nbboard-error">{_e(error)}</pre>')
    if status == Status.RUNNING:
        return _message(
            "pending",
            f"TensorBoard is running on port {view.port} of the kernel's machine (pid {view.pid}); "
            "it shows here while this notebook is connected to that kernel. If it does not, run the cell again.",
        )
    if status == Status.STOPPED:
        return _message("stopped", _e(view.note or f"TensorBoard on port {view.port} was stopped."))
    return _message("stale", _e(view.note or f"TensorBoard is {status}."))


def _note(view: ColabView) -> str:
    """What the last button did, above a live board (a stopped one says it in its body)."""
    if not view.note or view.status != Status.RUNNING:
        return ""
    return f'<div class="nbboard-message nbboard-note">nbboard: {_e(view.note)}</div>'


def _message(kind: str, text: str, extra: str = "") -> str:
    return f'<div class="nbboard-message nbboard-{kind}"><div>{text}</div>{extra}</div>'


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _script_json(value: object) -> str:
    """JSON that cannot end the ``<script>`` element it sits in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- the kernel's side of the output's buttons


def _forget_old() -> None:
    """Keep the callback's table bounded: a board that ended (stopped, failed, stale) has no button that
    reaches the kernel any more, and of the rest only the newest :data:`KEEP_VIEWS` outputs are kept (each
    keeps its board's callbacks alive; re-running a cell in a long session would otherwise pile them up)."""
    for view_id, view in list(_views.items()):
        if view.status not in LIVE:
            del _views[view_id]
    for view_id in list(_views)[: max(0, len(_views) - KEEP_VIEWS)]:
        del _views[view_id]


def _register_callback() -> bool:
    """Register :data:`CALLBACK` with Colab once per kernel; False where google.colab has no output module."""
    global _registered
    if not _registered:
        try:
            from google.colab import output
        except ImportError:
            return False
        output.register_callback(CALLBACK, on_invoke)
        _registered = True
    return True


def on_invoke(view_id: Any = "", action: Any = "") -> Any:
    """Run a button of the output ``view_id``; answer with the board's new markup (or an error to show)."""
    from IPython.display import JSON

    return JSON(answer(view_id, action))


def answer(view_id: Any, action: Any) -> dict[str, str]:
    view = _views.get(view_id) if isinstance(view_id, str) else None
    if view is None:
        return {"error": "this kernel does not know this board (the runtime restarted?): run the cell again"}
    if action == Action.TUNNEL_URL:
        if not view.tunnel_url:
            return {"error": "the public link is closed"}
        link = http_link(view.tunnel_url)  # never a javascript: link, whatever the tunnel server said
        return {"tunnel_url": link} if link else {"error": "the public link is not an http(s) URL"}
    run = view.actions.get(action) if isinstance(action, str) else None
    if run is None:
        return {"error": f"unknown action {str(action)[:40]!r}"}
    run()
    return {"status": view.status, "note": view.note, "html": view.html(script=False)}
