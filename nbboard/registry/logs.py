"""Logs of the processes nbboard starts (TensorBoard, tunnel helpers): naming, reading their tail, removing them."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

from ..errors import RegistryError
from .home import logs_dir
from .status import remove_status, status_id

__all__ = ["LOG_NAME", "new_log_path", "output_tail", "remove_log_file"]

#: Names nbboard gives its log files; nothing else in logs/ is ever deleted.
LOG_NAME = re.compile(r"^(tb|tunnel)-[0-9a-f]{12}\.log$")


def new_log_path(kind: str) -> str:
    return str(logs_dir() / f"{kind}-{uuid.uuid4().hex[:12]}.log")


def remove_log_file(log_path: str) -> None:
    """Delete a log, only if it is one nbboard named, in nbboard's own logs directory, and the status its
    board wrote (:mod:`.status`): nothing else reads one without the other."""
    if not log_path:
        return
    remove_status(status_id(log_path))
    path = Path(log_path)
    with contextlib.suppress(OSError, RegistryError):
        if LOG_NAME.match(path.name) and path.parent.resolve() == logs_dir().resolve() and not path.is_symlink():
            path.unlink()


def output_tail(log_path: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a log (at most its last 16 KiB), "" if unreadable."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
