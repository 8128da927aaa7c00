"""Idle shutdown: a board that served no request for a while stops itself and leaves a note saying why.

For forgotten boards on shared GPU servers. It runs inside the board's own
process (:mod:`nbboard.serve` wraps TensorBoard's WSGI app with
:meth:`Watchdog.middleware`), so it needs no kernel alive: a board whose
notebook was closed a week ago still goes.

"A request" is anything a person (or their browser, or a public link's
visitor) asks TensorBoard for. nbboard's own liveness probes carry
:data:`PROBE_HEADER` and do not count: a ``%board`` re-run or a tunnel
helper checking that the board is alive must not keep it alive forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

#: Sent by nbboard's own probes (:func:`nbboard.liveness.answers`); such requests are not activity.
PROBE_HEADER = "X-Nbboard-Probe"
#: How the idle time reaches the board's process: an argument of nbboard's entry point that
#: :func:`split_flag` removes before TensorBoard parses the rest.
FLAG = "--nbboard_idle_timeout"


def flag(seconds: float) -> str:
    return f"{FLAG}={seconds:g}"


def split_flag(args: Sequence[str]) -> tuple[list[str], float]:
    """(TensorBoard's arguments, idle seconds or 0)."""
    rest: list[str] = []
    seconds = 0.0
    for arg in args:
        name, eq, value = arg.partition("=")
        if name == FLAG and eq:
            with contextlib.suppress(ValueError):
                seconds = max(0.0, float(value))
            continue
        rest.append(arg)
    return rest, seconds


class Watchdog:
    """Notes when the board last served a request, and calls ``on_idle`` once it has been idle ``timeout`` s."""

    def __init__(self, timeout: float, on_idle: Callable[[float], None]) -> None:
        self.timeout = timeout
        self.on_idle = on_idle
        self.last = time.monotonic()  # reset by middleware(): a board nobody opens is idle from when it serves

    def middleware(self, app: Any) -> Any:
        """Wrap TensorBoard's app; the idle clock starts now, as TensorBoard is about to serve."""
        self.last = time.monotonic()
        self.start()

        def noting(environ: dict[str, Any], start_response: Any) -> Any:
            if not environ.get("HTTP_" + PROBE_HEADER.upper().replace("-", "_")):
                self.last = time.monotonic()
            return app(environ, start_response)

        return noting

    def start(self) -> None:
        threading.Thread(target=self._watch, name="nbboard-idle", daemon=True).start()

    def _watch(self) -> None:
        interval = min(30.0, max(0.2, self.timeout / 10))
        while True:
            idle = time.monotonic() - self.last
            if idle >= self.timeout:
                self.on_idle(self.timeout)
                return
            time.sleep(min(interval, self.timeout - idle + 0.05))


def stop_this_board(timeout: float) -> None:
    """Leave the note ``nbboard list`` shows, drop this board's record, stop its data server and exit."""
    import psutil

    from . import fmt, procs, registry, tbinfo
    from .registry import EndedRecord

    reason = f"stopped after {fmt.duration(timeout)} idle"
    with contextlib.suppress(ValueError, OSError, registry.RegistryError):
        record = registry.read_board(registry.record_path(os.getpid()))
        registry.write_ended(
            EndedRecord(
                pid=record.pid, port=record.port, logdir=record.logdir, reason=reason, ended_at=int(time.time())
            )
        )
        registry.remove(record)
        registry.remove_log_file(record.log_path)
    tbinfo.remove()  # os._exit skips TensorBoard's own atexit clean-up of its info file
    print(f"nbboard: {reason}: TensorBoard exits", flush=True)
    procs.terminate_trees(psutil.Process().children())  # the data server goes with its board
    os._exit(0)
