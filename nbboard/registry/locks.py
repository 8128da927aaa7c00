"""Cross-process start locks in the registry's locks/ directory, removed when nobody holds them."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RegistryError, shown
from .home import locks_dir

__all__ = ["LOCK_NAME", "lock", "remove_idle_locks"]

#: Start locks (one per logdir key) and the standby's; both are removed when nobody holds them.
LOCK_NAME = re.compile(r"^([0-9a-f]{24}|standby)\.lock$")


@contextlib.contextmanager
def lock(name: str, timeout: float) -> Iterator[None]:
    """A cross-process lock, so concurrent starts of one board launch it once.

    Lock files are removed when nobody holds them (:func:`remove_idle_locks`),
    so a lock won on a file that was unlinked meanwhile guards nothing: such a
    win is dropped and the lock taken again on the file the name now holds.
    """
    import filelock  # cross-platform (fcntl / msvcrt); imported late to keep %load_ext cheap

    path = locks_dir() / f"{name}.lock"
    deadline = time.monotonic() + timeout
    held = filelock.FileLock(str(path), timeout=timeout, mode=0o600)
    try:
        while True:
            held.acquire(timeout=max(0.0, deadline - time.monotonic()))
            if _lock_names_file(held, path):
                break
            held.release()
    except filelock.Timeout:
        raise RegistryError(
            f"another nbboard has held the start lock {shown(path)} for {timeout:g} s",
            "wait for the other start to finish, or run: nbboard kill",
        ) from None
    except OSError as e:
        raise RegistryError(
            f"cannot take the start lock {shown(path)}: {e.strerror or e}",
            f"remove it (rm {shown(path)}); nbboard recreates it",
        ) from None
    try:
        yield
    finally:
        held.release()


def _lock_names_file(held: Any, path: Path) -> bool:
    """True if the file ``held`` locked is still the one at ``path`` (not unlinked or replaced)."""
    fd = getattr(getattr(held, "_context", None), "lock_file_fd", None)
    if not isinstance(fd, int):
        return True  # a filelock that does not say (Windows deletes its lock files itself)
    try:
        mine, now = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return mine.st_nlink > 0 and (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def remove_idle_locks() -> int:
    """Delete lock files nobody holds; returns how many.

    Each is taken first (without waiting) and unlinked while held, so a lock
    another process holds is never removed, and a starter that opened the
    file just before it went takes the lock again (see :func:`lock`).
    """
    import filelock

    removed = 0
    try:
        entries = list(os.scandir(locks_dir()))
    except OSError:
        return 0
    for entry in entries:
        if not LOCK_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        idle = filelock.FileLock(entry.path, mode=0o600)
        try:
            idle.acquire(timeout=0)
        except (filelock.Timeout, OSError):
            continue
        try:
            if _lock_names_file(idle, Path(entry.path)):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass  # Windows cannot unlink a file it has open: filelock removes it on release there
        finally:
            idle.release()
    return removed
