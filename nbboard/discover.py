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
import time
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
    deadline = time.monotonic() + time_budget
    found: dict[str, list[float]] = {}  # top-level dir -> [runs, event files, latest]
    run_dirs: set[str] = set()
    seen = 0
    truncated = ""
    stack: list[tuple[Path, int]] = [(base, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as entries:
                items = list(entries)
        except OSError:
            continue  # unreadable: not ours to report, keep looking elsewhere
        seen += len(items)
        for entry in items:
            name = entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if depth + 1 <= max_depth and not _skipped(name, entry.path, base, patterns):
                    stack.append((Path(entry.path), depth + 1))
                elif depth + 1 > max_depth:
                    truncated = truncated or f"stopped at depth {max_depth}"
                continue
            if EVENT_MARK not in name or not name.startswith("events.out."):
                continue
            top = _top_level(Path(entry.path), base)
            stats = found.setdefault(top, [0, 0, 0.0])
            if str(directory) not in run_dirs:
                run_dirs.add(str(directory))
                stats[0] += 1
            stats[1] += 1
            try:
                stats[2] = max(stats[2], entry.stat(follow_symlinks=False).st_mtime)
            except OSError:
                pass
        if seen > max_entries:
            truncated = f"looked at {max_entries} entries"
            break
        if time.monotonic() > deadline:
            truncated = f"searched for {time_budget:g} s"
            break
    candidates = sorted(
        (Candidate(path, int(s[0]), int(s[1]), s[2]) for path, s in found.items()),
        key=lambda c: (-c.latest, c.path),
    )
    return Discovery(str(base), tuple(candidates), truncated)


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
        try:
            text = (base / filename).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines()[:1000]:
            line = line.strip()
            if not line or line.startswith(("#", "!")):
                continue
            patterns.append(line.strip("/"))
    return tuple(p for p in patterns if p)
