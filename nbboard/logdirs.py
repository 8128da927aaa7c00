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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Flags nbboard sets itself; passing them through would fight its own.
_OWN_FLAGS = {"--logdir": "--logdir", "--logdir_spec": "--logdir_spec", "--port": "--port"}


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


def resolve(logdir: str | os.PathLike[str] | None = None, logdir_spec: str | None = None) -> Logdir:
    """Turn the user's logdir (or logdir spec) into a Logdir."""
    if logdir_spec is not None and logdir is not None:
        raise UsageError(
            "give either a logdir or --logdir_spec, not both",
            "--logdir_spec name1:/path1,name2:/path2 compares several directories",
        )
    if logdir_spec is not None:
        spec = str(logdir_spec).strip()
        if not spec:
            raise UsageError("--logdir_spec is empty", "--logdir_spec name1:/path1,name2:/path2")
        return Logdir(spec, "spec", ("--logdir_spec", spec))
    if logdir is None or not str(logdir).strip():
        raise UsageError("no logdir given", "nbboard start --logdir DIR (the directory your training writes to)")
    text = str(os.fspath(logdir)).strip()
    if is_remote(text):
        return Logdir(text, "remote", ("--logdir", text))
    path = Path(os.path.expanduser(text))
    absolute = os.path.normpath(os.path.abspath(path))
    # realpath: a symlinked logdir and its target are one board.
    absolute = os.path.realpath(absolute)
    return Logdir(absolute, "local", ("--logdir", absolute))


def normalise_extra(extra_args: Sequence[str]) -> tuple[str, ...]:
    """Canonical form of pass-through TensorBoard flags: ``--flag=value``.

    ``--flag value`` and ``--flag=value`` mean the same to TensorBoard, so the
    reuse key must not tell them apart. Flags nbboard sets itself are refused
    with a pointer to nbboard's own option.
    """
    args = [str(a) for a in extra_args]
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
            own = _OWN_FLAGS[name]
            raise UsageError(
                f"{name} is an nbboard option, not a pass-through flag",
                f"give it before the `--`: nbboard start {own} …",
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
    if not path.is_dir():
        return Survey(str(path), path.exists(), 0, 0, False)
    seen = 0
    runs: set[str] = set()
    events = 0
    truncated = False
    for root, dirs, files in os.walk(path):
        seen += len(dirs) + len(files)
        for name in files:
            if "tfevents" in name:
                events += 1
                runs.add(root)
        if seen > limit:
            truncated = True
            break
    return Survey(str(path), True, len(runs), events, truncated)
