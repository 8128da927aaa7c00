"""What a board's view is, said once: its statuses, the actions its buttons send, the state it shows, and
the small protocol both views (the widget in :mod:`nbboard.widget`, Colab's output in :mod:`nbboard.colab`)
offer to their owner, :class:`nbboard.embed.Board`.

js/view.js, the one front end both views draw with, mirrors :data:`STATUSES` and :data:`ACTIONS`;
tests/test_view_contract.py reads every name the JS uses and checks it against these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import traitlets

if TYPE_CHECKING:
    from .instance import Instance


class Status:
    """What a board is doing, as its view shows it (``status``)."""

    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"
    STALE = "stale"
    CHOOSE = "choose"  # no logdir given: the view offers the ones found


class Action:
    """What a view sends its kernel: buttons that run a callback of the owner, and two requests the view
    answers itself (the public link, only on demand, and "shown", once TensorBoard loaded in the frame)."""

    STOP = "stop"
    CLOSE_TUNNEL = "close_tunnel"
    TUNNEL_URL = "tunnel_url"
    SHOWN = "shown"


STATUSES = (Status.STARTING, Status.RUNNING, Status.FAILED, Status.STOPPED, Status.STALE, Status.CHOOSE)
ACTIONS = (Action.STOP, Action.CLOSE_TUNNEL, Action.TUNNEL_URL, Action.SHOWN)
#: A view in one of these has buttons that still reach the kernel (Stop, Close link).
LIVE = (Status.STARTING, Status.RUNNING)


class BoardState(traitlets.HasTraits):
    """The state both views show, one trait each. ``sync`` is the widget's word (it syncs these to its front
    end); Colab's output puts them in its markup. ``tunnel_url`` is never synced nor drawn: it carries the
    tunnel's secret, and front ends save outputs (and widget state) in the notebook."""

    status = traitlets.Unicode(Status.STARTING).tag(sync=True)
    port = traitlets.Int(0).tag(sync=True)
    pid = traitlets.Int(0).tag(sync=True)
    logdir = traitlets.Unicode("").tag(sync=True)
    path_prefix = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(800).tag(sync=True)
    started_at = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    tunnel_url = traitlets.Unicode("")  # not synced
    # Where the kernel runs (set by embed.Board from nbboard.hosts):
    host_app = traitlets.Unicode("").tag(sync=True)  # the host's name
    kernel_user = traitlets.Unicode("").tag(sync=True)
    kernel_host = traitlets.Unicode("").tag(sync=True)
    remote_hint = traitlets.Unicode("").tag(sync=True)  # the host's hint: ssh -L line, local URL, tunnel

    def __init__(self, actions: dict[str, Callable[[], None]] | None = None, **kwargs: Any) -> None:
        #: What the view's buttons do, by action name (:class:`Action`); the owner may add to it.
        self.actions: dict[str, Callable[[], None]] = dict(actions or {})
        super().__init__(**kwargs)

    def show(self, instance: Instance) -> None:
        """Point the board at a running instance."""
        with self.hold_sync():
            for name, value in state_of(instance).items():
                setattr(self, name, value)

    def fail(self, message: str) -> None:
        with self.hold_sync():
            self.error = message
            self.status = Status.FAILED

    @contextlib.contextmanager
    def hold_sync(self) -> Iterator[None]:  # the widget's own batches its sync messages
        yield


def state_of(instance: Instance) -> dict[str, object]:
    """What a view shows of ``instance``, by trait name."""
    return {
        "port": instance.port,
        "pid": instance.pid,
        "logdir": instance.logdir,
        "path_prefix": instance.path_prefix,
        "started_at": float(instance.start_time),
        "error": "",
        "note": "",
        "status": instance.status,
    }


class BoardView(Protocol):
    """What :class:`nbboard.embed.Board` (and the magic that keeps it) asks of a view: the state of
    :class:`BoardState`, its callbacks, and how it reaches the cell's output."""

    actions: dict[str, Callable[[], None]]
    status: str
    port: int
    pid: int
    logdir: str
    started_at: float
    height: int
    note: str
    tunnel_url: str
    kernel_user: str
    kernel_host: str
    remote_hint: str

    def show(self, instance: Instance) -> None: ...

    def fail(self, message: str) -> None: ...

    def hold_sync(self) -> contextlib.AbstractContextManager[None]: ...

    def display(self) -> None:
        """Show the view in the current cell's output; later changes update that output."""

    def refresh(self) -> None:
        """Bring the view's output up to date (after changes made under ``hold_sync``)."""

    def show_again(self, height: int) -> bool:
        """Show the same view once more in a new output, ``height`` px high; False if this view cannot (then
        the caller makes a new one)."""
