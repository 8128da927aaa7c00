"""Reading TensorBoard's own registry (what ``%tensorboard`` writes) as board records.

Its directory is shared by every user and writable by all of them, so
nothing in it is opened before it is known to be a regular file of yours.
Writing this user's own info file is :mod:`nbboard.tbinfo`'s job.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from .atomic import read_trusted_json
from .records import SOURCE_TENSORBOARD, BoardRecord, Skipped, check_ranges, coerce

__all__ = ["TENSORBOARD_INFO_NAME", "read_tensorboard_registry", "tensorboard_info_dir"]


def tensorboard_info_dir() -> Path:
    """``<tempdir>/.tensorboard-info``, as ``tensorboard.manager`` computes it."""
    return Path(tempfile.gettempdir()) / ".tensorboard-info"


#: The names TensorBoard gives its info files.
TENSORBOARD_INFO_NAME = re.compile(r"^pid-([0-9]{1,10})\.info$")


def _pid_limit() -> int:
    """No pid on this machine is above this (Linux's pid_max; elsewhere no limit known)."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return max(int(f.read()), 32768)
    except (OSError, ValueError):
        return 2**32


def read_tensorboard_registry() -> tuple[list[BoardRecord], list[Skipped]]:
    """Records from ``%tensorboard``'s registry, as BoardRecords of source "tensorboard".

    The directory is shared by every user and writable by all of them, so
    nothing in it is opened before it is known to be a regular file of yours:
    a name TensorBoard would not give (``pid-N.info``, N a possible pid) costs
    nothing, a link, pipe or directory nothing more (the directory entry's
    type), a regular file one ``lstat``. Another user's entries are neither
    opened nor reported. TensorBoard's info files carry no creation time or
    command line: the liveness check for them uses ``start_time`` instead
    (see procs.find_tensorboard).
    """
    found: list[BoardRecord] = []
    skipped: list[Skipped] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    limit = _pid_limit()
    candidates = []
    try:
        with os.scandir(tensorboard_info_dir()) as it:
            for entry in it:
                match = TENSORBOARD_INFO_NAME.match(entry.name)
                if match and int(match.group(1)) <= limit and entry.is_file(follow_symlinks=False):
                    candidates.append(entry)
    except OSError:
        return found, skipped
    for entry in sorted(candidates, key=lambda e: e.name):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (uid is not None and st.st_uid != uid) or not stat.S_ISREG(st.st_mode):
            continue  # another user's (the directory is shared): not ours to open or to report
        path = Path(entry.path)
        try:
            found.append(_from_tensorboard_info(read_trusted_json(path), str(path)))
        except ValueError as e:
            skipped.append(Skipped(str(path), str(e)))
    return found, skipped


def _from_tensorboard_info(data: dict[str, Any], path: str) -> BoardRecord:
    for key, kind in (("pid", int), ("port", int), ("start_time", int), ("version", str)):
        if key not in data:
            raise ValueError(f"missing key {key!r}")
        coerce(key, data[key], kind)
    logdir = data.get("logdir") or data.get("db") or ""
    record = BoardRecord(
        pid=data["pid"],
        port=data["port"],
        logdir=str(logdir),
        create_time=0.0,
        cache_key=str(data.get("cache_key", "")),
        argv=(),
        start_time=data["start_time"],
        path_prefix=str(data.get("path_prefix") or ""),
        version=data["version"],
        source=SOURCE_TENSORBOARD,
        path=path,
    )
    check_ranges(record)
    return record


def is_info_file(path: Path) -> bool:
    """A file of a name TensorBoard gives its info files, in its info directory (the only ones nbboard deletes there)."""
    return bool(TENSORBOARD_INFO_NAME.match(path.name)) and path.parent == tensorboard_info_dir()
