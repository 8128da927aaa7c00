"""The registry directory (``NBBOARD_HOME``) and its subdirectories, made and kept private.

Each is a real 0700 directory of this user: links are refused rather than
followed, another user's directory is refused, loose modes are tightened on
the very directory that was checked.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .. import config
from ..errors import RegistryError, shown

__all__ = ["SUBDIRS", "boards_dir", "ensure_home", "existing_dir", "locks_dir", "logs_dir", "private_tmp_dir"]

#: The registry directory's subdirectories; each is made private like the directory itself.
SUBDIRS = ("boards", "logs", "locks", "secrets", "tunnels", "standby", "ended", "status", "tmp")


def ensure_home() -> Path:
    """Create the registry directory (0700) and its subdirectories; return it.

    Each must be a real directory of this user: a symlink (or a Windows
    junction) is refused rather than followed, so nbboard never chmods or
    creates files in a directory the link points at, and never cleans up
    files there. Its parents may be links (macOS's /tmp is one). Raises
    RegistryError, with how to fix it, when a directory cannot be used.
    """
    root = config.home()
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        _check_parents(root)
        _private_dir(root, root)
        for name in SUBDIRS:
            _private_dir(root / name, root)
    except OSError as e:
        raise RegistryError(
            f"cannot use nbboard's registry directory {shown(root)}: {e.strerror or e}",
            "set NBBOARD_HOME to a writable directory of your own",
        ) from None
    return root


def existing_dir(name: str) -> Path | None:
    """The registry's subdirectory ``name`` to read from, or None if it does not exist (yet).

    The checks of :func:`ensure_home` apply to the directory and every
    subdirectory there is (RegistryError for a link, a file, another user's
    directory), but nothing is created or tightened: readers such as ``list``
    change nothing on disk.
    """
    root = config.home()
    try:
        _checked(root, root)
        _check_parents(root)
        for sub in SUBDIRS:
            with contextlib.suppress(FileNotFoundError):
                _checked(root / sub, root)
        _checked(root / name, root)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RegistryError(f"cannot read nbboard's registry directory {shown(root)}: {e.strerror or e}") from None
    return root / name


def _private_dir(path: Path, root: Path) -> None:
    """Make ``path`` a 0700 directory of this user, or raise RegistryError saying why it cannot be."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = _checked(path, root)
    if stat.S_IMODE(st.st_mode) & 0o077:
        _chmod_private(path, st)


def _checked(path: Path, root: Path) -> os.stat_result:
    """``path``'s lstat if it is a directory nbboard may use, else RegistryError saying why not."""
    st = os.lstat(path)
    which = "nbboard's registry directory" if path == root else "the registry's subdirectory"
    if _is_link(st):
        target = os.path.realpath(path)
        if path == root:
            fix = f"set NBBOARD_HOME to a real directory of your own (nbboard creates it), or replace the link: rm {shown(path)}"
        else:
            fix = f"remove the link (rm {shown(path)}); nbboard recreates it as a private directory"
        raise RegistryError(
            f"{which} {shown(path)} is a symbolic link (to {shown(target)}); nbboard does not follow it, so that it "
            "never changes or deletes files in a directory it did not create",
            fix,
        )
    if not stat.S_ISDIR(st.st_mode):
        raise RegistryError(
            f"{which} {shown(path)} is not a directory",
            "move that file away, or set NBBOARD_HOME to a directory of your own",
        )
    if path == root and (stat.S_IMODE(st.st_mode) & 0o002 or path.parent == path):
        # /tmp, /, a shared drop folder: making it private would lock everyone else out of it.
        raise RegistryError(
            f"{which} {shown(path)} is {'the file system root' if path.parent == path else 'writable by every user'}; "
            "nbboard keeps its state in a private directory of its own and will not chmod this one",
            f"set NBBOARD_HOME to a new directory, e.g. NBBOARD_HOME={shown(path / ('nbboard-' + _user()))}",
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise RegistryError(
            f"{which} {shown(path)} belongs to another user (uid {st.st_uid}); nbboard keeps its state only in "
            "directories you own",
            "set NBBOARD_HOME to a directory of your own, e.g. NBBOARD_HOME=~/.nbboard",
        )
    return st


def _check_parents(root: Path) -> None:
    """RegistryError if another user could put something else at ``root``'s path.

    Checking ``root`` itself is not enough when another user controls a
    directory above it (NBBOARD_HOME=/tmp/you/nbboard, /tmp/you made by them):
    they can swap the registry for a link between nbboard's check and its use,
    and nbboard would then write and delete files wherever the link points.
    Each directory above must be yours or root's, and not writable by every
    user unless sticky (as /tmp is); a link on the way must be yours or
    root's (macOS's /tmp is root's link). Your home directory and what is
    above it are trusted as they are: some platforms give you a home that
    another uid owns (OpenShift's arbitrary uids), and the default registry
    is under it.
    """
    if not hasattr(os, "getuid"):
        return  # Windows: the per-user profile is private
    me = os.getuid()
    try:
        trusted = {Path.home(), Path(os.path.realpath(Path.home()))}
    except (RuntimeError, KeyError, OSError):  # no home known: every directory above is checked
        trusted = set()
    resolved = Path(os.path.realpath(root.parent))
    for chain, look in ((list(root.parents), os.lstat), ([resolved, *resolved.parents], os.stat)):
        for path in chain:
            if path in trusted:
                break
            _check_parent(root, path, look(path), me)


def _check_parent(root: Path, path: Path, st: os.stat_result, me: int) -> None:
    """RegistryError if ``path`` (a directory or link above the registry) is one another user can change."""
    if st.st_uid not in (me, 0):
        why = f"belongs to another user (uid {st.st_uid})"
    elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
        why = "is writable by every user (and not sticky, as /tmp is)"
    else:
        return
    raise RegistryError(
        f"nbboard's registry directory {shown(root)} is inside {shown(path)}, which {why}: they could replace "
        "the registry with a link and make nbboard write or delete files elsewhere",
        "set NBBOARD_HOME to a directory under one of your own, e.g. NBBOARD_HOME=~/.nbboard",
    )


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name known (a container without one): any name will do
        return "me"


def _is_link(st: os.stat_result) -> bool:
    """A symlink, or on Windows any reparse point (junctions are not symlinks to ``S_ISLNK``)."""
    reparse = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0)
    return stat.S_ISLNK(st.st_mode) or bool(getattr(st, "st_file_attributes", 0) & reparse)


def _chmod_private(path: Path, seen: os.stat_result) -> None:
    """chmod 0700 the very directory that was checked, never what a link swapped in since points at."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    directory = getattr(os, "O_DIRECTORY", 0)
    if not (nofollow and directory and os.chmod in os.supports_fd):
        os.chmod(path, 0o700)  # Windows: only the read-only flag changes; the per-user profile is private
        return
    fd = os.open(path, os.O_RDONLY | nofollow | directory)
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
            os.chmod(fd, 0o700)
    finally:
        os.close(fd)


def boards_dir() -> Path:
    return ensure_home() / "boards"


def logs_dir() -> Path:
    return ensure_home() / "logs"


def locks_dir() -> Path:
    return ensure_home() / "locks"


def private_tmp_dir() -> Path:
    """A 0700 temp directory for boards whose TensorBoard would write into the shared one (see nbboard.tbinfo)."""
    return ensure_home() / "tmp"
