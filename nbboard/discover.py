"""Finding logdirs when the user gave none: a bounded look for event files under a directory.

``%board`` with no logdir and no running board (and ``nbboard start`` with no
logdir) should not answer "no logdir given" when the training in the same
folder has been writing ``events.out.tfevents.*`` files all along. The search
is bounded in depth, entries and time, because the kernel's working
directory may be a home directory with a million files; it skips hidden and
virtualenv directories and whatever the exclusion list names.

What is offered is the top-level directory under the search root that holds
event files anywhere beneath it (``logs``, ``runs``, ``lightning_logs``): that
is what people pass as ``--logdir`` for Keras (``logs/fit/<date>/train``),
PyTorch (``runs/<date_host>``) and Lightning (``lightning_logs/version_0``).
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Directory names never searched: dependency trees and caches. Virtualenvs and conda
#: environments are recognised by their marker files, whatever their name.
DEFAULT_EXCLUDE = ("node_modules", "site-packages", "dist-packages", "__pycache__", "wandb")
#: The exclusion list, read from the search root (gitignore-like patterns). Not the project's
#: .gitignore: log directories are exactly what people put there.
IGNORE_FILES = (".nbboardignore",)
EVENT_MARK = "tfevents"


@dataclass(frozen=True)
class Candidate:
    """A directory to offer as ``--logdir``.

    Attributes:
      path: absolute path.
      runs: directories beneath it that hold event files (as far as the search looked).
      event_files: event files seen.
      latest: modification time (epoch s) of the newest event file seen.
    """

    path: str
    runs: int
    event_files: int
    latest: float


@dataclass(frozen=True)
class Discovery:
    """What a search found, newest first, and whether it stopped early (and why)."""

    root: str
    candidates: tuple[Candidate, ...]
    truncated: str = ""


def discover(
    root: str | os.PathLike[str],
    *,
    max_depth: int = 6,
    max_entries: int = 50_000,
    time_budget: float = 1.0,
    exclude: tuple[str, ...] = (),
) -> Discovery:
    """Look for event files under ``root``; never more than ``max_depth`` levels, entries or seconds.

    Not guaranteed to find everything: a search that hit a bound says so in
    ``truncated``, and what it found so far is still offered.
    """
    base = Path(root).resolve()
    patterns = DEFAULT_EXCLUDE + tuple(exclude) + _ignore_patterns(base)
    found: dict[str, list[float]] = {}  # top-level dir -> [runs, event files, latest]
    run_dirs: set[str] = set()
    walk = EventWalk(
        base,
        max_entries=max_entries,
        max_depth=max_depth,
        time_budget=time_budget,
        skip=lambda name, path: _skipped(name, path, base, patterns),
        is_event=lambda name: EVENT_MARK in name and name.startswith("events.out."),
    )
    for directory, entry in walk:
        top = _top_level(Path(entry.path), base)
        stats = found.setdefault(top, [0, 0, 0.0])
        if directory not in run_dirs:
            run_dirs.add(directory)
            stats[0] += 1
        stats[1] += 1
        try:
            stats[2] = max(stats[2], entry.stat(follow_symlinks=False).st_mtime)
        except OSError:
            pass
    candidates = sorted(
        (Candidate(path, int(s[0]), int(s[1]), s[2]) for path, s in found.items()),
        key=lambda c: (-c.latest, c.path),
    )
    return Discovery(str(base), tuple(candidates), walk.truncated)


class EventWalk:
    """The one bounded walk for event files, shared by :func:`discover` and :func:`nbboard.logdirs.survey`.

    Iterating yields ``(directory, entry)`` for each file ``is_event`` accepts.
    It stops after ``max_entries`` entries, ``time_budget`` seconds or (for
    directories below) ``max_depth`` levels and says which in ``truncated``.
    Unreadable directories are passed over; links to directories are not followed.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_entries: int,
        max_depth: int | None = None,
        time_budget: float | None = None,
        skip: Callable[[str, str], bool] | None = None,
        is_event: Callable[[str], bool] = lambda name: EVENT_MARK in name,
    ) -> None:
        self.root = root
        self.max_entries = max_entries
        self.max_depth = max_depth
        self.time_budget = time_budget
        self.skip = skip
        self.is_event = is_event
        self.truncated = ""

    def __iter__(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        deadline = None if self.time_budget is None else time.monotonic() + self.time_budget
        seen = 0
        stack: list[tuple[Path, int]] = [(self.root, 0)]
        while stack:
            directory, depth = stack.pop()
            try:
                with os.scandir(directory) as entries:
                    items = list(entries)
            except OSError:
                continue  # unreadable: not ours to report, keep looking elsewhere
            seen += len(items)
            for entry in items:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    too_deep = self.max_depth is not None and depth + 1 > self.max_depth
                    if too_deep:
                        self.truncated = self.truncated or f"stopped at depth {self.max_depth}"
                    elif self.skip is None or not self.skip(entry.name, entry.path):
                        stack.append((Path(entry.path), depth + 1))
                    continue
                if self.is_event(entry.name):
                    yield str(directory), entry
            if seen > self.max_entries:
                self.truncated = f"looked at {self.max_entries} entries"
                return
            if deadline is not None and time.monotonic() > deadline:
                self.truncated = f"searched for {self.time_budget:g} s"
                return


def _top_level(path: Path, base: Path) -> str:
    """The first directory under ``base`` on the way to ``path`` (``base`` itself for files directly in it)."""
    parts = path.relative_to(base).parts
    return str(base / parts[0]) if len(parts) > 1 else str(base)


def _skipped(name: str, path: str, base: Path, patterns: tuple[str, ...]) -> bool:
    if name.startswith("."):
        return True  # hidden: .git, .venv, .cache, .ipynb_checkpoints, .local …
    if os.path.exists(os.path.join(path, "pyvenv.cfg")) or os.path.isdir(os.path.join(path, "conda-meta")):
        return True  # a virtualenv or conda environment, whatever its name
    relative = os.path.relpath(path, base).replace(os.sep, "/")
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in patterns)


def _ignore_patterns(base: Path) -> tuple[str, ...]:
    """Directory patterns from the root's ignore files (gitignore-like; negations are not supported)."""
    patterns: list[str] = []
    for filename in IGNORE_FILES:
        text = _read_small_file(base / filename)
        if text is None:
            continue
        for line in text.splitlines()[:1000]:
            line = line.strip()
            if not line or line.startswith(("#", "!")):
                continue
            patterns.append(line.strip("/"))
    return tuple(p for p in patterns if p)


#: The most of an ignore file that is read: a thousand patterns fit many times over.
MAX_IGNORE_BYTES = 64 * 1024


def _read_small_file(path: Path) -> str | None:
    """The start of ``path`` if it is a regular file, else None.

    The search root can be a shared directory (a kernel started in /tmp):
    another user may plant the ignore file there as a FIFO, which a plain
    read would wait on forever, or as a link to /dev/zero, which never ends.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_IGNORE_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)
