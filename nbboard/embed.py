"""Showing a board wherever the code runs: a widget in notebooks, an HTML/JS output on Colab
(:mod:`nbboard.colab`), a link in terminals.

Reads instances and never re-implements lifecycle: the board's Stop and
Close link buttons call :func:`nbboard.api.kill` and
:func:`nbboard.api.close_tunnels`, handed to the widget (or Colab view) as callbacks.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import sys
import time
from typing import Any

from .config import BoardConfig, get_default
from .discover import Discovery
from .instance import Instance


def environment() -> str:
    """ "colab", "kaggle", "notebook" (a Jupyter kernel), "terminal" (IPython) or "plain" (no IPython)."""
    if "google.colab" in sys.modules:
        return "colab"
    try:
        from IPython import get_ipython
    except ImportError:
        return "plain"
    shell = get_ipython()
    if shell is None:
        return "plain"
    if getattr(shell, "kernel", None) is None:
        return "terminal"
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.environ.get("KAGGLE_URL_BASE"):
        return "kaggle"
    return "notebook"


def host_app(env: str) -> str:
    """A hint for the front end about where the kernel runs ("vscode", "kaggle", "colab" or "").

    Only a hint: the browser still decides how to reach TensorBoard by probing.
    """
    if env in ("colab", "kaggle"):
        return env
    if any(os.environ.get(k) for k in ("VSCODE_PID", "VSCODE_CWD", "VSCODE_IPC_HOOK_CLI")):
        return "vscode"
    return ""


def kernel_login() -> tuple[str, str]:
    """The user and host for the ``ssh -L`` line a user types on their own computer."""
    user = ""
    with contextlib.suppress(KeyError, OSError, ImportError):  # no USER/LOGNAME and no passwd entry
        user = getpass.getuser()
    if not user:
        import psutil

        with contextlib.suppress(psutil.Error, KeyError):
            user = psutil.Process().username().rsplit("\\", 1)[-1]  # Windows: DOMAIN\user
    return user or "USER", socket.gethostname() or "HOST"


def remote_hint(env: str, port: int, user: str, host: str) -> str:
    """How to see a board from a browser that cannot reach the kernel's loopback.

    The one wording for terminals and for the widget's "unreachable" message.
    """
    tunnel = f"nbboard tunnel --port {port}" if env in ("terminal", "plain") else "%board --tunnel"
    if env == "kaggle":
        return f"Kaggle's browser cannot reach the kernel's ports: run {tunnel} for a protected public link."
    return (
        "To open it from another computer, forward the port there:\n"
        f"    ssh -L {port}:127.0.0.1:{port} {user}@{host}\n"
        f"then open http://127.0.0.1:{port}/\n"
        f"or run {tunnel} for a protected public link."
    )


def tunnel_hint(env: str, port: int) -> str:
    """What terminals (and Kaggle's cell output) print under the board's URL."""
    if env in ("kaggle", "terminal", "plain"):
        return remote_hint(env, port, *kernel_login())
    return ""


class Board:
    """One board output: created before TensorBoard starts, updated as it does."""

    def __init__(self, height: int, logdir: str = "", instance: Instance | None = None) -> None:
        """``instance``: a board already known (a reuse): the output is drawn in its state from the first
        frame, never as "starting" first (on Colab each update re-renders the whole output)."""
        self.env = environment()
        self.widget: Any = None
        self.handle: Any = None
        self._offered: set[str] = set()  # logdirs offered as buttons (see offer)
        self._config: BoardConfig | None = None
        if self.env in ("terminal", "plain"):
            return
        from IPython.display import display

        user, host = kernel_login()
        state = dict(
            actions={"stop": self.stop, "close_tunnel": self.close_tunnel},
            height=height,
            logdir=logdir,
            status="starting",
            started_at=time.time(),
            host_app=host_app(self.env),
            kernel_user=user,
            kernel_host=host,
        )
        if instance is not None:
            state.update(instance.board_state(), remote_hint=remote_hint(self.env, instance.port, user, host))
        if self.env == "colab":  # no widget manager there: an HTML/JS output that updates itself (handle stays None)
            from .colab import ColabView

            self.widget = ColabView(**state)
            self.widget.display()
            return

        from .widget import BoardWidget

        self.widget = BoardWidget(**state)
        data, metadata = self.widget.bundle()
        self.handle = display(data, metadata=metadata, raw=True, display_id=True)

    def show(self, instance: Instance) -> None:
        from . import fmt

        if self.widget is None:
            print(fmt.started(instance))
            print(instance.url)
            hint = tunnel_hint(self.env, instance.port)
            if hint:
                print(hint)
            return
        w = self.widget
        w.remote_hint = remote_hint(self.env, instance.port, w.kernel_user, w.kernel_host)
        w.show(instance)
        self._refresh()
        if self.env == "kaggle":
            print(tunnel_hint(self.env, instance.port))

    def redisplay(self) -> None:
        from IPython.display import display

        data, metadata = self.widget.bundle()
        self.handle = display(data, metadata=metadata, raw=True, display_id=True)

    def fail(self, message: str) -> None:
        if self.widget is None:
            return
        self.widget.fail(message)
        self._refresh()

    def offer(self, found: Discovery, config: BoardConfig | None = None) -> None:
        """Show the logdirs ``found`` as buttons; the one the user picks starts in this same output.

        Terminals and Colab (no widget) get the ``%board --logdir …`` lines to copy instead.
        """
        from . import fmt

        if self.widget is None or self.env == "colab":
            print(f"nbboard: no TensorBoard is running; {fmt.candidates(found, '%board')}")
            return
        self._offered = {c.path for c in found.candidates}
        self._config = config
        with self.widget.hold_sync():
            self.widget.candidates = [
                {
                    "path": c.path,
                    "label": fmt.logdir_argument(c.path, found.root),
                    "detail": fmt.candidate_detail(c.runs, c.latest),
                }
                for c in found.candidates
            ]
            self.widget.note = f"found under {found.root}" + (
                f" (search stopped early: {found.truncated})" if found.truncated else ""
            )
            self.widget.status = "choose"
        self.widget.observe(self._chose, "chosen")
        self._refresh()

    def _chose(self, change: Any) -> None:
        """The user picked a logdir (a button of :meth:`offer`): start it here."""
        from . import api
        from .errors import NbboardError

        path = str(change["new"])
        if path not in self._offered:
            return  # only what was offered: the front end cannot start an arbitrary directory
        widget = self.widget
        widget.unobserve(self._chose, "chosen")
        with widget.hold_sync():
            widget.logdir = path
            widget.started_at = time.time()
            widget.status = "starting"
        try:
            instance = api.start(path, config=self._config)
        except NbboardError as e:
            self.fail(str(e))
            return
        self.show(instance)

    def stop(self) -> None:
        """Stop this board's TensorBoard (the widget's Stop button)."""
        from . import api
        from .errors import NbboardError

        widget = self.widget
        try:
            report = api.kill(pid=widget.pid)
            stopped = bool(report.stopped)
            note = f"stopped TensorBoard on port {widget.port} (pid {widget.pid})" if stopped else "already stopped"
        except NbboardError:
            note = f"TensorBoard on port {widget.port} had already stopped"
        with widget.hold_sync():
            widget.note = note
            widget.status = "stopped"

    def close_tunnel(self) -> None:
        """Close this board's public tunnel (the widget's Close link button); the board keeps running."""
        from . import api
        from .errors import NbboardError

        widget = self.widget
        try:
            api.close_tunnels(port=widget.port)
            widget.note = "closed the public link"
        except NbboardError:
            widget.note = "the public link was already closed"
        widget.tunnel_url = ""

    def _refresh(self) -> None:
        """Re-send the bundle so the text/html fallback (nbconvert, no widgets) is current too.

        The bundle goes out raw, never the widget object: ipywidgets 7 displays a widget through
        ``_ipython_display_``, which ignores display_id, so an update would show the widget twice.
        """
        if self.handle is not None:
            data, metadata = self.widget.bundle()
            self.handle.update(data, metadata=metadata, raw=True)


def display(instance: Instance | None = None, height: int | None = None, config: BoardConfig | None = None) -> Board:
    """Show ``instance`` (default: the newest running board) inline, or print its URL in a terminal."""
    from . import api
    from .errors import NoSuchBoardError

    if instance is None:
        instance = api.newest_running()
        if instance is None:
            raise NoSuchBoardError(
                "no TensorBoard is running", "start one with nbboard.start('logs') or %board --logdir logs"
            )
    board = Board(height or (config or get_default()).height, instance.logdir)
    board.show(instance)
    return board
