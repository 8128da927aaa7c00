"""Telling a board view that stays open on the page that its TensorBoard has exited.

Once a board's process ends (a crash, ``nbboard kill`` in a terminal, the OOM
killer), any local program may take its port. A view that still believed in the
board would frame that program on its next Reload, and through
jupyter-server-proxy on Jupyter's own origin. So one daemon thread per kernel
re-checks the process identity of every board a view shows as running, a few
times a second, and the owner marks those views stopped: the front end then
drops the frame and disables Reload. Widget messages from a thread go out at
once, even while a cell runs (a training loop), where anything the front end
asked the kernel would wait behind that cell.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

#: Seconds between two checks of the same board: how long a view may still offer Reload after its board exited.
INTERVAL = 0.2


class Watched(Protocol):
    def recheck(self) -> bool:
        """Mark the view stopped if its board has exited; False once there is nothing left to watch."""


_lock = threading.Lock()
_watched: list[Watched] = []
_thread: threading.Thread | None = None


def watch(owner: Watched) -> None:
    """Re-check ``owner`` every :data:`INTERVAL` until its :meth:`Watched.recheck` returns False."""
    global _thread
    with _lock:
        if any(w is owner for w in _watched):
            return
        _watched.append(owner)
        if _thread is None:
            _thread = threading.Thread(target=_run, name="nbboard-watch", daemon=True)
            _thread.start()


def _run() -> None:
    global _thread
    while True:
        time.sleep(INTERVAL)
        with _lock:
            owners = list(_watched)
        done = []
        for owner in owners:
            try:
                keep = owner.recheck()
            except Exception:  # noqa: BLE001 - a view that cannot be checked is not watched again; the thread lives on
                keep = False
            if not keep:
                done.append(owner)
        with _lock:
            for owner in done:
                _watched.remove(owner)
            if not _watched:
                _thread = None
                return
