"""What nbboard knows about a board right now: its stored record plus what was checked on read.

Kept apart from :class:`~nbboard.registry.BoardRecord` so that nothing computed
(running or stale, why, its tunnel, whether ``start`` reused it) can ever be
written back to disk by mistake.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .registry import SOURCE_NBBOARD, BoardRecord, TunnelRecord


@dataclass(frozen=True)
class Instance:
    """One TensorBoard as the API returns it.

    Attributes:
      record: the stored facts (pid, port, logdir, argv, …).
      status: "running" (its process is the recorded one and answers HTTP), "starting", "stale" or "stopped".
      reason: why it is stale, for the user.
      tunnel: its open public tunnel, if any.
      reused: set by ``start`` when it returned a board that was already running.
    """

    record: BoardRecord
    status: str = "running"
    reason: str = ""
    tunnel: TunnelRecord | None = None
    reused: bool = False

    @property
    def pid(self) -> int:
        return self.record.pid

    @property
    def port(self) -> int:
        return self.record.port

    @property
    def logdir(self) -> str:
        return self.record.logdir

    @property
    def url(self) -> str:
        return self.record.url

    @property
    def source(self) -> str:
        return self.record.source

    @property
    def start_time(self) -> int:
        return self.record.start_time

    @property
    def version(self) -> str:
        return self.record.version

    @property
    def path_prefix(self) -> str:
        return self.record.path_prefix

    @property
    def log_path(self) -> str:
        return self.record.log_path

    @property
    def is_ours(self) -> bool:
        """Started by nbboard (not read from ``%tensorboard``'s registry)."""
        return self.record.source == SOURCE_NBBOARD

    def uptime(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.record.start_time)
