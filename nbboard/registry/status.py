"""The status file a board's own process writes for its launcher: port, version, TCP_NODELAY, exit.

One small file a board, ``<NBBOARD_HOME>/status/tb-<12 hex>.json``, named
after the board's log: that name is new at every launch and known to both
sides before the board runs, where a pid may be a reused one. The board
writes it atomically, 0600, in this user's private registry
(:func:`.atomic.write_private`); the launcher reads it without following
links, and only if it is this user's (:func:`.atomic.read_trusted_json`). It
goes when the board's log goes (:func:`.logs.remove_log_file`).

Only boards run by nbboard's entry point write one (:mod:`nbboard.serve`,
which the standby runs too); the launcher knows which those are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path

from .. import config
from .atomic import read_trusted_json, write_private
from .home import ensure_home
from .records import BoardStatus, decode, encode

__all__ = ["STATUS_NAME", "read_status", "remove_status", "status_files", "status_id", "write_status"]

#: A board's status file; its stem is the stem of the board's log (``logs.LOG_NAME``'s ``tb-`` names).
STATUS_NAME = re.compile(r"^(tb-[0-9a-f]{12})\.json$")
_ID = re.compile(r"^tb-[0-9a-f]{12}$")


def status_id(log_path: str) -> str:
    """The id under which the board whose log is ``log_path`` reports ("" for a log not named as a board's)."""
    name = Path(log_path).name if log_path else ""
    stem = name[: -len(".log")] if name.endswith(".log") else ""
    return stem if _ID.match(stem) else ""


def _path(sid: str) -> Path | None:
    """Where status ``sid`` lives; None for an id nbboard never gives (nothing outside ``status/`` is named)."""
    return config.home() / "status" / f"{sid}.json" if _ID.match(sid) else None


def write_status(sid: str, status: BoardStatus) -> BoardStatus:
    """Replace board ``sid``'s status (atomic, 0600); returns it with ``path`` set. Raises RegistryError."""
    path = _path(sid)
    if path is None:
        raise ValueError(f"not a board's status id: {sid!r}")
    ensure_home()
    write_private(path, encode(status))
    return dataclasses.replace(status, path=str(path))


def read_status(sid: str, pid: int) -> BoardStatus | None:
    """What board ``sid`` (see :func:`status_id`) with ``pid`` reported, or None: nothing yet, or nothing to trust.

    Creates nothing and changes nothing (the read path of ``list`` uses it).
    """
    path = _path(sid)
    if path is None:
        return None
    try:
        status = decode(BoardStatus, read_trusted_json(path), str(path))
    except ValueError:  # not written yet, mid-replace on Windows, or not one to trust
        return None
    return status if status.pid == pid else None


def remove_status(sid: str) -> None:
    """Delete board ``sid``'s status (only a file named so, in ``status/``, never through a link)."""
    path = _path(sid)
    if path is None:
        return
    with contextlib.suppress(OSError):
        if not path.is_symlink():
            path.unlink()


def status_files() -> list[str]:
    """The id of every status file, for the clean-up of those whose log is gone."""
    try:
        names = os.listdir(config.home() / "status")
    except OSError:
        return []
    return [m[1] for name in names if (m := STATUS_NAME.match(name))]
