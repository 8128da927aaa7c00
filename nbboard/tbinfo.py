"""TensorBoard's own info file (``<tempdir>/.tensorboard-info/pid-N.info``), written without trusting that directory.

TensorBoard creates that directory with mode 0777 and no sticky bit, and
writes its file there with a plain ``open(path, "w")``: another local user who
plants ``pid-N.info`` as a symlink for every pid makes your board overwrite
any file you can write, and a planted regular file makes your start fail.

Boards that run nbboard's entry point (:mod:`nbboard.serve`: direct starts and
the standby) replace TensorBoard's writer with :func:`write`: the file is
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to a descriptor of the
directory, and only when that directory is yours or root's with the sticky bit
(where nobody else can swap names under you). Anywhere else the board simply
has no info file: ``%tensorboard`` then does not list it, nbboard still does
(it has its own record). The file stays where ``%tensorboard`` and
``tensorboard.notebook.list()`` look for it, so they keep seeing nbboard's
boards on a machine of your own.

Boards that run another command (``NBBOARD_TENSORBOARD``, or TensorBoard's plain
entry point when the board's interpreter cannot import nbboard) cannot be
changed from inside: they get a private temp directory (:func:`private_env`),
so TensorBoard's own writer only ever writes into a 0700 directory of yours.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from typing import Any

from . import config, registry

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: (st_dev, st_ino) of the file this process wrote, so that only that very file is removed at exit.
_written: list[tuple[int, int]] = []


def name(pid: int) -> str:
    return f"pid-{pid}.info"


def _mine(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def trusted_dir(st: os.stat_result) -> bool:
    """May a file be created in a directory of this status? Yours, or root's with the sticky bit (like /tmp)."""
    if not stat.S_ISDIR(st.st_mode):
        return False
    return _mine(st) or (st.st_uid == 0 and bool(st.st_mode & stat.S_ISVTX))


def _open_dir(create: bool) -> int | None:
    """A descriptor of the shared info directory if it is one to write in, else None.

    Created with the sticky bit when missing: other users' TensorBoards can
    still add their files, but nobody can replace yours.
    """
    path = registry.tensorboard_info_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except OSError:
            pass
        else:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o1777)  # shared as TensorBoard shares it, but sticky
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _DIRECTORY | _CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if trusted_dir(st):
        if _mine(st) and st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
            # Yours but made as TensorBoard makes it (0777, a plain ``%tensorboard`` ran first): anyone
            # could delete or rename your boards' files there. Sticky, others still add theirs.
            with contextlib.suppress(OSError, AttributeError):  # os.fchmod: not on Windows before 3.13
                os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_ISVTX)
        return fd
    os.close(fd)
    return None


def write(text: str, pid: int | None = None) -> str:
    """Create this board's info file with ``text``; "" if written, else why not (never raises, never overwrites
    a file of someone else, never follows a link)."""
    pid = os.getpid() if pid is None else pid
    if os.open not in os.supports_dir_fd or not _NOFOLLOW:
        return _write_by_path(text, pid)  # Windows: the temp directory is the user's own
    try:
        fd = _open_dir(create=True)
    except OSError as e:
        return f"cannot open {registry.tensorboard_info_dir()}: {e.strerror or e}"
    if fd is None:
        return f"{registry.tensorboard_info_dir()} is not yours (nor root's with the sticky bit)"
    try:
        for _ in range(2):
            try:
                out = os.open(name(pid), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=fd)
            except FileExistsError:
                st = os.stat(name(pid), dir_fd=fd, follow_symlinks=False)
                if not (stat.S_ISREG(st.st_mode) and _mine(st)):
                    return f"{name(pid)} there belongs to someone else or is not a file"
                os.unlink(name(pid), dir_fd=fd)  # ours, left by an earlier process with this pid
                continue
            with os.fdopen(out, "w") as f:
                st = os.fstat(f.fileno())
                f.write(text)
            _written.append((st.st_dev, st.st_ino))
            return ""
        return f"{name(pid)} keeps reappearing"
    except OSError as e:
        return f"cannot write {name(pid)}: {e.strerror or e}"
    finally:
        os.close(fd)


def _write_by_path(text: str, pid: int) -> str:
    path = registry.tensorboard_info_dir()
    try:
        path.mkdir(exist_ok=True)
        out = os.open(path / name(pid), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    except OSError as e:
        return f"cannot write {path / name(pid)}: {e.strerror or e}"
    with os.fdopen(out, "w") as f:
        f.write(text)
    return ""


def remove(pid: int | None = None) -> None:
    """Delete ``pid``'s info file if it is a regular file of yours (this process's: only the one it wrote),
    in the shared directory and in nbboard's private one (boards of another command write there)."""
    pid = os.getpid() if pid is None else pid
    private = config.home() / "tmp" / ".tensorboard-info" / name(pid)
    for path in (registry.tensorboard_info_dir() / name(pid), private):
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if not (stat.S_ISREG(st.st_mode) and _mine(st)):
                continue
            if pid == os.getpid() and _written and (st.st_dev, st.st_ino) not in _written and path != private:
                continue
            os.unlink(path)


def install() -> None:
    """Make TensorBoard's ``manager`` in this process write and remove its info file through this module.

    A TensorBoard without ``_info_to_string`` (shaped differently than
    expected) then writes no info file at all, rather than an unsafe one.
    """
    from tensorboard import manager

    to_string = getattr(manager, "_info_to_string", None)

    def write_info_file(info: Any) -> None:
        why = write(f"{to_string(info)}\n") if callable(to_string) else "unknown TensorBoard info format"
        if why:
            print(f"nbboard: no %tensorboard info file for this board: {why}", file=sys.stderr, flush=True)

    def remove_info_file() -> None:
        remove()

    manager.write_info_file = write_info_file
    manager.remove_info_file = remove_info_file


def private_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` whose temp directory is private to you, for a board whose TensorBoard nbboard cannot change."""
    tmp = registry.private_tmp_dir()
    return {**env, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)}
