"""Atomic, private file I/O for the registry: one write path, one trusted read, and the temp files a crash leaves.

Files are written atomically (temp file + ``os.replace``) with mode 0600, and
read without following links, only when they are small regular files of this
user. A writer killed mid-write leaves ``.tmp-<pid>-…`` behind; readers never
read those, and :func:`temp_files` finds them for clean-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config
from ..errors import RegistryError, shown
from .home import SUBDIRS, boards_dir
from .records import MAX_RECORD_BYTES

__all__ = [
    "TEMP_NAME",
    "TempFile",
    "check_writable",
    "read_trusted_json",
    "remove_temp_file",
    "temp_files",
    "write_private",
]


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, mode 0600.

    Refuses text the readers would refuse (over MAX_RECORD_BYTES): a record
    written but never read back would let duplicate boards start unseen.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_RECORD_BYTES:
        raise RegistryError(
            f"cannot write {shown(path)}: it would be {len(data)} bytes, over the registry's limit of "
            f"{MAX_RECORD_BYTES}",
            "shorten the logdir or the TensorBoard flags",
        )
    # The writer's pid in the name: a writer killed before the rename (SIGKILL) leaves this file, and whoever
    # finds it can tell it from a write in progress (see temp_files).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # an interrupt too: never leave a temp file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(e, OSError):
            raise
        raise RegistryError(
            f"cannot write {shown(path)}: {e.strerror or e}",
            "free some disk space or set NBBOARD_HOME to a writable directory",
        ) from None


def check_writable() -> None:
    """Raise RegistryError now if a record could not be written (a full disk, a read-only file system)."""
    probe = boards_dir() / f".tmp-{os.getpid()}-probe.json"
    write_private(probe, "{}")
    with contextlib.suppress(OSError):
        os.unlink(probe)


#: Temp files of :func:`write_private` (``.tmp-<writer pid>-<random>.json``; an older nbboard named no pid).
TEMP_NAME = re.compile(r"^\.tmp-(?:([0-9]+)-)?[A-Za-z0-9_]+\.json$")


@dataclass(frozen=True)
class TempFile:
    """A temp file of an atomic write, which only a writer killed mid-write leaves behind."""

    path: str
    writer_pid: int | None  # None: named by an nbboard that did not record its pid
    age: float  # seconds since it was last written


def temp_files() -> list[TempFile]:
    """Every temp file of an atomic write in the registry (this user's, regular files, named as nbboard names them).

    Readers never read them; :func:`nbboard.janitor.remove_dead_writes` removes those whose writer is gone.
    """
    root = config.home()
    found: list[TempFile] = []
    now = time.time()
    for directory in (root, *(root / name for name in SUBDIRS)):
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            match = TEMP_NAME.match(entry.name)
            if not match:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
                continue
            pid = int(match[1]) if match[1] else None
            found.append(TempFile(entry.path, pid, now - st.st_mtime))
    return found


def remove_temp_file(temp: TempFile) -> None:
    """Delete a temp file found by :func:`temp_files` (never a link, never outside the registry)."""
    path = Path(temp.path)
    root = config.home()
    if TEMP_NAME.match(path.name) and path.parent in (root, *(root / name for name in SUBDIRS)):
        with contextlib.suppress(OSError):
            if not path.is_symlink():
                path.unlink()


def read_trusted_json(path: Path) -> dict[str, Any]:
    """Read one small JSON object without following symlinks.

    Raises ValueError with a short reason for anything that is not one.
    """
    if path.is_symlink():
        raise ValueError("is a symlink")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ValueError(f"cannot open: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise ValueError(f"owned by uid {st.st_uid}, not you")
        if st.st_size > MAX_RECORD_BYTES:
            raise ValueError(f"too large ({st.st_size} bytes)")
        raw = os.read(fd, MAX_RECORD_BYTES + 1)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
