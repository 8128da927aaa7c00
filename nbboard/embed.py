"""Showing a board wherever the code runs: a widget in notebooks, a link in terminals.

Reads instances; never starts or stops anything itself (the widget's Stop
button goes through :func:`nbboard.api.kill`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .registry import Instance


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


def tunnel_hint(env: str) -> str:
    if env == "kaggle":
        return "Kaggle's browser cannot reach the kernel's ports: run %board --tunnel for a protected public link."
    if env in ("terminal", "plain"):
        return (
            "on a remote machine, forward the port (ssh -L PORT:127.0.0.1:PORT host) or run: nbboard tunnel --port PORT"
        )
    return ""


class Board:
    """One board output: created before TensorBoard starts, updated as it does."""

    def __init__(self, height: int, logdir: str = "") -> None:
        self.env = environment()
        self.widget: Any = None
        self.handle: Any = None
        if self.env in ("terminal", "plain"):
            return
        import time

        from IPython.display import display

        from .widget import BoardWidget

        self.widget = BoardWidget(height=height, logdir=logdir, status="starting", started_at=time.time())
        data, metadata = self.widget.bundle()
        self.handle = display(data, metadata=metadata, raw=True, display_id=True)

    def show(self, instance: Instance) -> None:
        from . import fmt

        if self.widget is None:
            print(fmt.started(instance))
            print(instance.url)
            hint = tunnel_hint(self.env).replace("PORT", str(instance.port))
            if hint:
                print(hint)
            return
        self.widget.show(instance)
        self._refresh()
        if self.env == "kaggle":
            print(tunnel_hint(self.env))

    def redisplay(self) -> None:
        from IPython.display import display

        data, metadata = self.widget.bundle()
        self.handle = display(data, metadata=metadata, raw=True, display_id=True)

    def fail(self, message: str) -> None:
        if self.widget is None:
            return
        self.widget.fail(message)
        self._refresh()

    def _refresh(self) -> None:
        """Re-send the bundle so the text/html fallback (nbconvert, no widgets) is current too.

        The bundle goes out raw, never the widget object: ipywidgets 7 displays a widget through
        ``_ipython_display_``, which ignores display_id, so an update would show the widget twice.
        """
        if self.handle is not None:
            data, metadata = self.widget.bundle()
            self.handle.update(data, metadata=metadata, raw=True)


def show(instance: Instance, height: int = 800) -> Board:
    """Display an existing instance (``nbboard.display``)."""
    board = Board(height, instance.logdir)
    board.show(instance)
    return board
