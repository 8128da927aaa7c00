"""Logdirs: how a user's words become TensorBoard arguments and a reuse key.

Local paths are resolved to absolute ones so that ``runs``, ``./runs/`` and
``/home/me/runs`` from any working directory name the same board. Remote URLs
(``gs://``, ``s3://``, ``hdfs://``…) and ``--logdir_spec`` values are passed
through verbatim: nbboard cannot see inside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError, shown

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Flags nbboard sets itself; passing them through would fight its own.
_OWN_FLAGS = frozenset({"--logdir", "--logdir_spec", "--port"})


@dataclass(frozen=True)
class Logdir:
    """What to serve.

    Attributes:
      display: what ``list`` shows (absolute path, or the remote URL/spec as given).
      kind: "local", "remote" or "spec".
      args: the TensorBoard arguments that select it.
    """

    display: str
    kind: str
    args: tuple[str, ...]

    @property
    def local_path(self) -> Path | None:
        return Path(self.display) if self.kind == "local" else None


def is_remote(logdir: str) -> bool:
    return bool(_REMOTE.match(logdir))


#: Longest logdir (or --logdir_spec) nbboard accepts, in characters. Its record holds it twice, JSON-escaped
#: (up to 12 bytes a character), and must stay under the registry's size cap; real bucket paths are far
#: shorter (object names in GCS and S3 are at most 1024 bytes).
MAX_LOGDIR_CHARS = 4096
#: Longest pass-through TensorBoard flags nbboard accepts, all together, in characters (same reason).
MAX_EXTRA_CHARS = 8192
#: What a file system allows when it cannot be asked (os.pathconf is POSIX only).
DEFAULT_NAME_MAX, DEFAULT_PATH_MAX = 255, 4096

_HINT = "--logdir takes the directory your training writes to"


def resolve(
    logdir: str | os.PathLike[str] | None = None, logdir_spec: str | None = None, *, check: bool = True
) -> Logdir:
    """Turn the user's logdir (or logdir spec) into a Logdir.

    Raises UsageError for what can never work: a NUL byte, a name or path
    longer than the file system allows, a file instead of a directory, a
    directory (or a parent) this user cannot read. ``check=False`` skips the
    look at the file system (``kill --logdir`` names a board, not a place to
    serve). A local logdir that does not exist yet is fine: training may
    create it later.
    """
    if logdir_spec is not None and logdir is not None:
        raise UsageError(
            "give either a logdir or --logdir_spec, not both",
            "--logdir_spec name1:/path1,name2:/path2 compares several directories",
        )
    if logdir_spec is not None:
        spec = _checked_text(str(logdir_spec).strip(), "--logdir_spec")
        if not spec:
            raise UsageError("--logdir_spec is empty", "--logdir_spec name1:/path1,name2:/path2")
        return Logdir(spec, "spec", ("--logdir_spec", spec))
    if logdir is None or not str(os.fspath(logdir)).strip():
        raise UsageError("no logdir given", "nbboard start --logdir DIR (the directory your training writes to)")
    text = _checked_text(str(os.fspath(logdir)).strip(), "logdir")
    if is_remote(text):
        return Logdir(text, "remote", ("--logdir", text))
    expanded = os.path.expanduser(text)
    try:
        absolute = os.path.normpath(os.path.abspath(expanded))
    except OSError as e:  # the working directory was deleted: a relative path names nothing
        raise UsageError(
            f"cannot resolve the relative logdir '{shown(text)}': the current directory is gone ({e.strerror or e})",
            "give an absolute path, or change to an existing directory first",
        ) from None
    _check_lengths(absolute)
    # realpath: a symlinked logdir and its target are one board.
    absolute = os.path.realpath(absolute)
    _check_lengths(absolute)
    if check:
        _check_usable(Path(absolute))
    return Logdir(absolute, "local", ("--logdir", absolute))


def _checked_text(text: str, what: str) -> str:
    try:
        os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate from a Python string: no file system name or argv holds it
        raise UsageError(
            f"the {what} '{shown(text)}' holds characters this system cannot put in a path", "check its spelling"
        ) from None
    if "\0" in text:
        raise UsageError(
            f"the {what} '{shown(text)}' contains a NUL byte (\\x00), which no path can contain",
            "check how the path was built (a C string or a binary read can leave one)",
        )
    if len(text) > MAX_LOGDIR_CHARS:
        raise UsageError(
            f"the {what} is {len(text)} characters long; nbboard accepts up to {MAX_LOGDIR_CHARS}",
            "point at a shorter path (a parent directory holds every run below it)",
        )
    return text


def _limits(path: str) -> tuple[int, int]:
    """(longest name, longest path) in bytes on the file system holding ``path`` (its nearest existing parent)."""
    probe = path
    while True:
        try:
            return os.pathconf(probe, "PC_NAME_MAX"), os.pathconf(probe, "PC_PATH_MAX")
        except (AttributeError, ValueError):  # no pathconf (Windows), or the name is unknown here
            return DEFAULT_NAME_MAX, DEFAULT_PATH_MAX
        except OSError:
            parent = os.path.dirname(probe)
            if parent == probe:
                return DEFAULT_NAME_MAX, DEFAULT_PATH_MAX
            probe = parent


def _check_lengths(absolute: str) -> None:
    name_max, path_max = _limits(absolute)
    for part in Path(absolute).parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise UsageError(
                f"a name in the logdir is {size} bytes long ('{shown(part, 60)}'); this file system allows at most {name_max}",
                "use shorter directory names",
            )
    size = len(os.fsencode(absolute))
    if size >= path_max:
        raise UsageError(
            f"the logdir is {size} bytes long once made absolute; this system allows paths up to {path_max - 1}",
            "use a shorter path",
        )


def _check_usable(path: Path) -> None:
    """A directory TensorBoard (running as this user) can read, or one that does not exist yet."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        blocker = next((p for p in reversed(path.parents) if p.is_file()), path.parent)
        raise UsageError(
            f"{shown(blocker)} is a file, not a directory; {_HINT}", f"e.g. --logdir {shown(blocker.parent)}"
        ) from None
    except PermissionError:
        raise UsageError(
            f"cannot look inside {shown(_unreadable_parent(path))}: permission denied, so TensorBoard could not read {shown(path)}",
            "pick a directory you can read, or ask its owner for access",
        ) from None
    except OSError as e:
        raise UsageError(f"cannot use the logdir {shown(path)}: {e.strerror or e}", _HINT) from None
    if stat.S_ISREG(st.st_mode):
        raise UsageError(f"{shown(path)} is a file, not a directory; {_HINT}", f"e.g. --logdir {shown(path.parent)}")
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{shown(path)} is not a directory; {_HINT}", "")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UsageError(
            f"cannot read {shown(path)}: permission denied, so TensorBoard could not read it either",
            "pick a directory you can read, or ask its owner for access",
        )


def _unreadable_parent(path: Path) -> Path:
    """The first directory on the way to ``path`` this user may not look into."""
    for parent in reversed(path.parents):
        try:
            os.stat(parent)
        except OSError:
            return parent.parent
        if not os.access(parent, os.X_OK):
            return parent
    return path.parent


def normalise_extra(extra_args: Sequence[str]) -> tuple[str, ...]:
    """Canonical form of pass-through TensorBoard flags: ``--flag=value``.

    ``--flag value`` and ``--flag=value`` mean the same to TensorBoard, so the
    reuse key must not tell them apart. Flags nbboard sets itself are refused
    with a pointer to nbboard's own option.
    """
    args = [str(a) for a in extra_args]
    for arg in args:
        if "\0" in arg:
            raise UsageError(f"the TensorBoard flag '{shown(arg)}' contains a NUL byte (\\x00)", "remove it")
        try:
            os.fsencode(arg)
        except UnicodeEncodeError:
            raise UsageError(
                f"the TensorBoard flag '{shown(arg)}' holds characters no command line can", "retype it"
            ) from None
    if sum(len(a) for a in args) > MAX_EXTRA_CHARS:
        raise UsageError(
            f"the TensorBoard flags are {sum(len(a) for a in args)} characters long; nbboard accepts up to {MAX_EXTRA_CHARS}",
            "pass fewer or shorter flags",
        )
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg in ("-", "--"):
            raise UsageError(
                f"unexpected argument {arg!r} among TensorBoard flags",
                "extra TensorBoard flags look like --name=value, e.g. -- --samples_per_plugin scalars=500",
            )
        name, eq, value = arg.partition("=")
        if name.startswith("-") and not name.startswith("--"):
            name = "-" + name
        if name in _OWN_FLAGS:
            raise UsageError(
                f"{name} is an nbboard option, not a pass-through flag",
                f"give it before the `--`: nbboard start {name} …",
            )
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, eq = args[i + 1], "="
            i += 1
        out.append(f"{name}={value}" if eq else name)
        i += 1
    return tuple(out)


def binds_publicly(extra: Sequence[str]) -> bool:
    """True when the user's own flags choose the interface (``--host``/``--bind_all``)."""
    return any(a.split("=", 1)[0] in ("--host", "--bind_all") for a in extra)


def flag_value(extra: Sequence[str], name: str) -> str | None:
    for a in extra:
        key, eq, value = a.partition("=")
        if key == name and eq:
            return value
    return None


def cache_key(logdir: Logdir, extra: Sequence[str]) -> str:
    """Reuse key: the resolved logdir plus the sorted normalised flags."""
    payload = json.dumps({"logdir": logdir.display, "kind": logdir.kind, "flags": sorted(extra)})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Survey:
    """A bounded look inside a local logdir before starting."""

    path: str
    exists: bool
    runs: int
    event_files: int
    truncated: bool

    def note(self) -> str:
        """A sentence for the user, or "" when the logdir looks fine."""
        if not self.exists:
            return (
                f"note: {self.path} does not exist yet; TensorBoard will start anyway and show runs "
                "as soon as your training writes event files there."
            )
        if self.event_files == 0 and not self.truncated:
            return (
                f"note: no event files (events.out.tfevents.*) under {self.path}: TensorBoard will say "
                '"No dashboards are active" until your training writes summaries there. '
                "Check that the path matches your writer's log_dir."
            )
        return ""


def survey(logdir: Logdir, limit: int = 5000) -> Survey | None:
    """Count event files and the directories holding them, looking at ``limit`` entries at most.

    Returns None for remote logdirs and specs, which nbboard cannot inspect.
    """
    path = logdir.local_path
    if path is None:
        return None
    try:
        if not path.is_dir():
            return Survey(str(path), path.exists(), 0, 0, False)
    except OSError:  # resolve() has said why already, unless it was asked not to look
        return None
    from .discover import EventWalk

    walk = EventWalk(path, max_entries=limit)
    runs: set[str] = set()
    events = 0
    for directory, _entry in walk:
        events += 1
        runs.add(directory)
    return Survey(str(path), True, len(runs), events, bool(walk.truncated))
