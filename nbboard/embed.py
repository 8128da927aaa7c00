"""Showing a board wherever the code runs: a widget in notebooks, an HTML/JS output on Colab
(:mod:`nbboard.colab`), a link in terminals.

Reads instances and never re-implements lifecycle: the board's Stop and
Close link buttons call :func:`nbboard.api.kill` and
:func:`nbboard.api.close_tunnels`, handed to the view (the widget or Colab's output, both a
:class:`nbboard.boardview.BoardView`) as callbacks. Which host this is, which view it gets and what its
users are told come from :mod:`nbboard.hosts`.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from . import hosts
from .boardview import Action, BoardView, Status, state_of
from .config import BoardConfig, get_default
from .discover import Discovery
from .instance import Instance

if TYPE_CHECKING:
    from .widget import BoardWidget


def environment() -> str:
    """The host's name (:data:`nbboard.hosts.HOSTS`: "colab", "kaggle", "vscode", "notebook"), or "terminal"
    (IPython without a kernel) or "plain" (no IPython)."""
    host = hosts.detect()
    if not host.needs_kernel:
        return host.name
    try:
        from IPython import get_ipython
    except ImportError:
        return hosts.PLAIN.name
    shell = get_ipython()
    if shell is None:
        return hosts.PLAIN.name
    if getattr(shell, "kernel", None) is None:
        return hosts.TERMINAL.name
    return host.name


def host() -> hosts.Host:
    """The host this kernel runs on, as :func:`environment` names it."""
    return hosts.by_name(environment())


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
    """How to see a board from a browser that cannot reach the kernel's loopback (the host's own wording).

    The one wording for terminals and for the widget's "unreachable" message.
    """
    tunnel = f"nbboard tunnel --port {port}" if hosts.by_name(env).view == "text" else "%board --tunnel"
    return hosts.by_name(env).hint(port, user, host, tunnel)


def tunnel_hint(env: str, port: int) -> str:
    """What terminals (and hosts whose browsers reach no port, Kaggle's) print under the board's URL."""
    here = hosts.by_name(env)
    if here.view == "text" or here.prints_hint:
        return remote_hint(env, port, *kernel_login())
    return ""


class Board:
    """One board output: created before TensorBoard starts, updated as it does."""

    def __init__(self, height: int, logdir: str = "", instance: Instance | None = None) -> None:
        """``instance``: a board already known (a reuse): the output is drawn in its state from the first
        frame, never as "starting" first (on Colab each update re-renders the whole output)."""
        self.env = environment()
        self.host = hosts.by_name(self.env)
        self.view: BoardView | None = None
        self._offered: set[str] = set()  # logdirs offered as buttons (see offer)
        self._config: BoardConfig | None = None
        self._standby_hook: Callable[[], None] | None = None
        self._instance = instance  # the board shown, once known (see recheck)
        self._lock = threading.RLock()  # recheck runs in nbboard.watch's thread too
        if self.host.view == "text":
            return
        user, host = kernel_login()
        state = dict(
            actions={Action.STOP: self.stop, Action.CLOSE_TUNNEL: self.close_tunnel},
            height=height,
            logdir=logdir,
            status=Status.STARTING,
            started_at=time.time(),
            host_app=self.host.name,
            kernel_user=user,
            kernel_host=host,
        )
        if instance is not None:
            state.update(state_of(instance), remote_hint=remote_hint(self.env, instance.port, user, host))
        if self.host.view == "colab":  # no widget manager there: an HTML/JS output that updates itself
            from .colab import ColabView

            self.view = ColabView(**state)
        else:
            from .widget import BoardWidget

            self.view = BoardWidget(routes=self.host.routes_for(), recheck=self.recheck, **state)
        self.view.display()

    def show(self, instance: Instance) -> None:
        from . import fmt

        if self.view is None:
            print(fmt.started(instance))
            print(instance.url)
            hint = tunnel_hint(self.env, instance.port)
            if hint:
                print(hint)
            return
        view = self.view
        with self._lock:
            self._instance = instance
            view.remote_hint = remote_hint(self.env, instance.port, view.kernel_user, view.kernel_host)
            view.show(instance)
        view.refresh()
        if self.host.view == "widget" and view.status == Status.RUNNING:
            from . import watch

            watch.watch(self)
        hint = tunnel_hint(self.env, instance.port)
        if hint:
            print(hint)

    def redisplay(self, height: int) -> bool:
        """Show this running board once more in the current cell, ``height`` px high; False if its view
        cannot (then make a new Board)."""
        view = self.view
        return view is not None and view.status == Status.RUNNING and view.show_again(height)

    def fail(self, message: str) -> None:
        if self.view is None:
            return
        self.view.fail(message)
        self.view.refresh()

    def offer(
        self, found: Discovery, config: BoardConfig | None = None, standby_hook: Callable[[], None] | None = None
    ) -> None:
        """Show the logdirs ``found`` as buttons; the one the user picks starts in this same output.

        Terminals and Colab (no widget) get the ``%board --logdir …`` lines to copy instead.
        """
        from . import fmt

        if self.view is None or self.host.view != "widget":
            print(f"nbboard: no TensorBoard is running; {fmt.candidates(found, '%board')}")
            return
        widget = cast("BoardWidget", self.view)  # host.view "widget": the only view with buttons for logdirs
        self._offered = {c.path for c in found.candidates}
        self._config = config
        self._standby_hook = standby_hook
        with widget.hold_sync():
            widget.candidates = [
                {
                    "path": c.path,
                    "label": fmt.logdir_argument(c.path, found.root),
                    "detail": fmt.candidate_detail(c.runs, c.latest),
                }
                for c in found.candidates
            ]
            widget.note = f"found under {found.root}" + (
                f" (search stopped early: {found.truncated})" if found.truncated else ""
            )
            widget.status = Status.CHOOSE
        widget.observe(self._chose, "chosen")
        widget.refresh()

    def _chose(self, change: Any) -> None:
        """The user picked a logdir (a button of :meth:`offer`): start it here."""
        from . import api
        from .errors import NbboardError

        path = str(change["new"])
        if path not in self._offered:
            return  # only what was offered: the front end cannot start an arbitrary directory
        view = self.view
        assert view is not None
        cast("BoardWidget", view).unobserve(self._chose, "chosen")
        with view.hold_sync():
            view.logdir = path
            view.started_at = time.time()
            view.status = Status.STARTING
        try:
            instance = api.start(path, config=self._config, standby_hook=self._standby_hook)
        except NbboardError as e:
            self.fail(str(e))
            return
        self.show(instance)

    def recheck(self) -> bool:
        """Show the board stopped if it has exited, since another program may hold its port by now: it is never
        framed again. Asked when a front end wants the whole state (a page reload) and, while the page stays
        open, by :mod:`nbboard.watch`. False when there is no running board to check (any more)."""
        from . import api

        with self._lock:
            view, instance = self.view, self._instance
            if view is None or instance is None or view.status != Status.RUNNING or view.pid != instance.pid:
                return False
            if getattr(view, "comm", True) is None:  # the widget was closed: no front end to tell
                return False
            if api.still_running(instance):
                return True
            with view.hold_sync():
                view.note = (
                    f"TensorBoard on port {view.port} (pid {view.pid}) has exited. Run the cell again to start it."
                )
                view.status = Status.STOPPED
            return False

    def stop(self) -> None:
        """Stop this board's TensorBoard (the widget's Stop button)."""
        from . import api
        from .errors import NbboardError

        view = self.view
        assert view is not None
        with self._lock:  # nbboard.watch must not call it "exited" between the kill and this note
            try:
                report = api.kill(pid=view.pid)
                stopped = bool(report.stopped)
                note = f"stopped TensorBoard on port {view.port} (pid {view.pid})" if stopped else "already stopped"
            except NbboardError:
                note = f"TensorBoard on port {view.port} had already stopped"
            with view.hold_sync():
                view.note = note
                view.status = Status.STOPPED

    def close_tunnel(self) -> None:
        """Close this board's public tunnel (the widget's Close link button); the board keeps running."""
        from . import api
        from .errors import NbboardError

        view = self.view
        assert view is not None
        try:
            api.close_tunnels(port=view.port)
            view.note = "closed the public link"
        except NbboardError:
            view.note = "the public link was already closed"
        view.tunnel_url = ""


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
