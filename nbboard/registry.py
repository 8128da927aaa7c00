"""The info-file registry: one JSON record per TensorBoard nbboard started.

Records are written atomically (temp file + ``os.replace``) with mode 0600 in
a 0700 directory. Reading is strict about the keys nbboard needs and ignores
unknown ones, so an older nbboard can still read a newer record of the same
schema. Files that cannot be trusted (junk, symlinks, other owners, a newer
schema) are skipped and reported, never deleted: they may belong to someone.

This module knows nothing about liveness; :mod:`nbboard.liveness` decides
whether a record still describes a running board.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import stat
import tempfile
import time
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import config
from .errors import RegistryError, shown

#: Bumped when a record's meaning changes incompatibly.
SCHEMA = 1
#: Records are small; anything bigger is not one of ours.
MAX_RECORD_BYTES = 256 * 1024

#: Names nbboard gives the files it writes; it only ever deletes files named so.
RECORD_NAME = re.compile(r"^pid-[0-9]+\.json$")
SECRET_NAME = re.compile(r"^tunnel-[0-9a-f]{12}\.secret$")
STANDBY_KEY_NAME = re.compile(r"^standby-[0-9a-f]{12}\.key$")
#: Start locks (one per logdir key) and the standby's; both are removed when nobody holds them.
LOCK_NAME = re.compile(r"^([0-9a-f]{24}|standby)\.lock$")

SOURCE_NBBOARD = "nbboard"
SOURCE_TENSORBOARD = "tensorboard"


@dataclass(frozen=True)
class TunnelRecord:
    """A public tunnel in front of a board (see :mod:`nbboard.tunnels`), as stored on disk.

    Attributes:
      provider: a name in nbboard.tunnels.providers.NAMES (ngrok, cloudflared, localtunnel).
      public_url: URL without the secret.
      helper_pid / helper_create_time / helper_argv: the detached helper that holds the tunnel.
      gate_port: loopback port of the authenticating gate (0 when --no-auth).
      board_pid: the board this tunnel exposes.
      expires_at: epoch seconds, 0 for no expiry.
      secret_file: 0600 file holding the secret; the secret itself is never in a record.
      log_path: the helper's log.
      auth: False only when the user asked for --no-auth.
      path: the record file (not stored).
    """

    provider: str
    public_url: str
    helper_pid: int
    helper_create_time: float
    gate_port: int
    board_pid: int
    expires_at: int = 0
    secret_file: str = ""
    log_path: str = ""
    auth: bool = True
    helper_argv: tuple[str, ...] = ()
    path: str = field(default="", compare=False, metadata={"stored": False})


@dataclass(frozen=True)
class BoardRecord:
    """One TensorBoard, as stored on disk: only facts written when it was launched.

    What is computed on read (running or stale, why, its tunnel) lives in
    :class:`nbboard.instance.Instance`, never here.

    Attributes:
      pid / create_time / argv: the process; all three must match before nbboard signals it.
      port / host / path_prefix: where it serves.
      logdir: absolute local path, or a remote URL / logdir spec exactly as given.
      cache_key: reuse key (logdir + normalised extra flags).
      start_time: epoch seconds when nbboard launched it.
      version: TensorBoard's version, once it printed it.
      log_path: TensorBoard's combined stdout/stderr.
      state: "starting" until it first answered, then "ready".
      source: "nbboard", or "tensorboard" for a record read from ``%tensorboard``'s registry.
      nodelay: TCP_NODELAY was set on its data server's sockets (see :mod:`nbboard.nodelay`).
      nodelay_note: on which sockets, or why not.
      from_standby: it was nbboard's standby before it became this board (its argv names no logdir).
      idle_timeout: seconds without a request after which the board stops itself (0: never; see nbboard.idle).
      path: the record file (not stored).
    """

    pid: int
    port: int
    logdir: str
    create_time: float
    cache_key: str
    argv: tuple[str, ...]
    start_time: int
    host: str = "127.0.0.1"
    path_prefix: str = ""
    version: str = ""
    log_path: str = ""
    state: str = "ready"
    source: str = SOURCE_NBBOARD
    nodelay: bool = False
    nodelay_note: str = ""
    from_standby: bool = False
    idle_timeout: float = 0.0
    path: str = field(default="", compare=False, metadata={"stored": False})

    @property
    def url(self) -> str:
        """Loopback URL. 127.0.0.1, not "localhost": that may resolve to ::1,
        where TensorBoard is not listening ("localhost refused to connect")."""
        host = self.host
        if host in ("", "localhost", "0.0.0.0", "::", "::1"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        prefix = self.path_prefix.strip("/")
        return f"http://{host}:{self.port}/" + (f"{prefix}/" if prefix else "")


@dataclass(frozen=True)
class EndedRecord:
    """A note a board leaves when it stops itself (``--idle-timeout``), so ``list`` can say why it is gone.

    Attributes:
      pid / port / logdir: the board that ended.
      reason: for the user, e.g. "stopped after 2 h idle".
      ended_at: epoch seconds.
      path: the note file (not stored).
    """

    pid: int
    port: int
    logdir: str
    reason: str
    ended_at: int
    path: str = field(default="", compare=False, metadata={"stored": False})


@dataclass(frozen=True)
class StandbyRecord:
    """The standby (see :mod:`nbboard.standby`): TensorBoard imported ahead of time, waiting for a board's arguments.

    Attributes:
      pid / create_time / argv: the process; all three must match before nbboard signals or uses it.
      python: the interpreter it runs; only a start from the same interpreter may use it.
      version: the nbboard version that spawned it (fixes the hand-off protocol).
      start_time: epoch seconds when it was spawned.
      idle_timeout: seconds after which it exits unused.
      port: loopback port where it takes a board's arguments; 0 until it is ready.
      secret_file: 0600 file with the key both sides of a hand-off prove they hold; the key is never in a record.
      log_path: its output, which becomes the board's log.
      state: "starting" (importing TensorBoard) until it listens, then "ready".
      path: the record file (not stored).
    """

    pid: int
    create_time: float
    argv: tuple[str, ...]
    python: str
    version: str
    start_time: int
    idle_timeout: float
    port: int = 0
    secret_file: str = ""
    log_path: str = ""
    state: str = "starting"
    path: str = field(default="", compare=False, metadata={"stored": False})


# ---------------------------------------------------------------------------
# One codec for every record type, derived from the dataclass fields (as
# TensorBoard's manager.py derives its info format from TensorBoardInfo).

R = TypeVar("R", BoardRecord, TunnelRecord, EndedRecord, StandbyRecord)


def _stored_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("stored", True)]


def encode(record: BoardRecord | TunnelRecord | StandbyRecord | EndedRecord) -> str:
    """The JSON text of a record: every stored field, tuples as lists, plus the schema number."""
    data: dict[str, Any] = {"schema": SCHEMA}
    for f in _stored_fields(type(record)):
        value = getattr(record, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(data, indent=1)


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (int, float, str, bool or tuple[str, ...]); ValueError otherwise."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    elif typing.get_origin(kind) is tuple:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a field type this codec was not taught
        raise TypeError(f"record field {name!r} has an unsupported type {kind!r}")
    if not ok:
        raise ValueError(f"key {name!r} has the wrong type")
    return value


def decode(cls: type[R], data: dict[str, Any], path: str = "") -> R:
    """Build a record of ``cls`` from parsed JSON.

    Strict about the keys it needs (missing or wrongly typed ones raise
    ValueError with a short reason); unknown keys are ignored, so an older
    nbboard can still read a newer record of the same schema.
    """
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise ValueError("no schema number")
    if schema > SCHEMA:
        raise ValueError(f"written by a newer nbboard (schema {schema}); upgrade nbboard to manage it")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in _stored_fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"missing key {f.name!r}")
            continue
        values[f.name] = _coerce(f.name, data[f.name], hints[f.name])
    record = cls(**values, path=path)
    _check_ranges(record)
    return record


def _check_ranges(record: BoardRecord | TunnelRecord | StandbyRecord | EndedRecord) -> None:
    if isinstance(record, (BoardRecord, StandbyRecord, EndedRecord)) and (
        record.pid <= 0 or not 0 <= record.port <= 65535
    ):
        raise ValueError("pid or port out of range")
    if isinstance(record, TunnelRecord) and (record.helper_pid <= 0 or record.board_pid <= 0):
        raise ValueError("pid out of range")


@dataclass(frozen=True)
class Skipped:
    """A registry file nbboard did not use, and why."""

    path: str
    why: str


# ---------------------------------------------------------------------------
# Directory

#: The registry directory's subdirectories; each is made private like the directory itself.
SUBDIRS = ("boards", "logs", "locks", "secrets", "tunnels", "standby", "ended", "tmp")


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
        _private_dir(root, root)
        for name in SUBDIRS:
            _private_dir(root / name, root)
    except OSError as e:
        raise RegistryError(
            f"cannot use nbboard's registry directory {shown(root)}: {e.strerror or e}",
            "set NBBOARD_HOME to a writable directory of your own",
        ) from None
    return root


def _private_dir(path: Path, root: Path) -> None:
    """Make ``path`` a 0700 directory of this user, or raise RegistryError saying why it cannot be."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
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
    if stat.S_IMODE(st.st_mode) & 0o077:
        _chmod_private(path, st)


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


def record_path(pid: int) -> Path:
    return boards_dir() / f"pid-{pid}.json"


# ---------------------------------------------------------------------------
# Writing


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

    Readers never read them; :func:`nbboard.api.collect_garbage` removes those whose writer is gone.
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


def write(record: BoardRecord) -> BoardRecord:
    """Persist ``record``; returns it with ``path`` set."""
    path = record_path(record.pid)
    write_private(path, encode(record))
    return dataclasses.replace(record, path=str(path))


def remove(record: BoardRecord | TunnelRecord) -> bool:
    """Delete the record file; True if it was there.

    Only a file of a name nbboard writes, in the directory it reads it from
    (its own boards/ or tunnels/, or TensorBoard's info directory).
    """
    if not record.path:
        return False
    path = Path(record.path)
    if isinstance(record, BoardRecord) and record.source == SOURCE_TENSORBOARD:
        ours = TENSORBOARD_INFO_NAME.match(path.name) and path.parent == tensorboard_info_dir()
    else:
        ours = RECORD_NAME.match(path.name) and path.parent in (config.home() / "boards", config.home() / "tunnels")
    if not ours:
        return False
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Reading


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


def read_board(path: Path) -> BoardRecord:
    """One board record file (ValueError if it is not one nbboard would trust)."""
    return decode(BoardRecord, read_trusted_json(path), str(path))


def read_all() -> tuple[list[BoardRecord], list[Skipped]]:
    """Every readable nbboard record, and the files that were skipped."""
    found: list[BoardRecord] = []
    skipped: list[Skipped] = []
    try:
        entries = sorted(os.scandir(boards_dir()), key=lambda e: e.name)
    except OSError as e:
        raise RegistryError(f"cannot read nbboard's registry: {e.strerror or e}") from None
    for entry in entries:
        if entry.name.startswith(".tmp-"):
            continue
        path = Path(entry.path)
        try:
            record = read_board(path)
        except ValueError as e:
            skipped.append(Skipped(str(path), str(e)))
            continue
        if RECORD_NAME.match(entry.name) and record.pid == _pid_in_name(entry.name):
            found.append(record)
        else:  # nbboard writes pid-<pid>.json: a record under another name was put there by hand
            skipped.append(Skipped(str(path), "a record under a name nbboard does not write; left alone"))
    return found, skipped


def _pid_in_name(name: str) -> int:
    return int(name[len("pid-") : -len(".json")])


# ---------------------------------------------------------------------------
# Tunnel records: one per board, beside the board records, written by the API only


def tunnel_path(board_pid: int) -> Path:
    return ensure_home() / "tunnels" / f"pid-{board_pid}.json"


def write_tunnel(record: TunnelRecord) -> TunnelRecord:
    path = tunnel_path(record.board_pid)
    write_private(path, encode(record))
    return dataclasses.replace(record, path=str(path))


def read_tunnels() -> tuple[dict[int, TunnelRecord], list[Skipped]]:
    """Every tunnel record, by the pid of the board it exposes."""
    found: dict[int, TunnelRecord] = {}
    skipped: list[Skipped] = []
    for path in sorted((ensure_home() / "tunnels").glob("pid-*.json")):
        if not RECORD_NAME.match(path.name):
            continue
        try:
            record = decode(TunnelRecord, read_trusted_json(path), str(path))
            found[record.board_pid] = record
        except ValueError as e:
            skipped.append(Skipped(str(path), str(e)))
    return found, skipped


def remove_tunnel(info: TunnelRecord) -> None:
    """Delete a tunnel's record and its secret file (only a secret nbboard named, in its secrets directory)."""
    remove(info)
    secret = Path(info.secret_file) if info.secret_file else None
    if secret is not None and SECRET_NAME.match(secret.name) and secret.parent == config.home() / "secrets":
        with contextlib.suppress(OSError):
            if not secret.is_symlink():
                secret.unlink()


# ---------------------------------------------------------------------------
# Standby records: beside the board records, read and written by nbboard.standby only


def standby_path(pid: int) -> Path:
    return ensure_home() / "standby" / f"pid-{pid}.json"


#: The records kept one file per pid in a directory of their own.
N = TypeVar("N", StandbyRecord, EndedRecord)


def _write_note(subdir: str, record: N) -> N:
    path = ensure_home() / subdir / f"pid-{record.pid}.json"
    write_private(path, encode(record))
    return dataclasses.replace(record, path=str(path))


def _read_notes(cls: type[N], subdir: str) -> tuple[list[N], list[Skipped]]:
    found: list[N] = []
    skipped: list[Skipped] = []
    for path in sorted((ensure_home() / subdir).glob("pid-*.json")):
        try:
            found.append(decode(cls, read_trusted_json(path), str(path)))
        except ValueError as e:
            skipped.append(Skipped(str(path), str(e)))
    return found, skipped


def _remove_ours(path_text: str, subdir: str, name: re.Pattern[str]) -> None:
    """Unlink a file only if it has a name nbboard gives, in the directory nbboard keeps it in."""
    path = Path(path_text) if path_text else None
    if path is not None and name.match(path.name) and path.parent == config.home() / subdir:
        with contextlib.suppress(OSError):
            if not path.is_symlink():
                path.unlink()


def write_standby(record: StandbyRecord) -> StandbyRecord:
    return _write_note("standby", record)


def read_standbys() -> tuple[list[StandbyRecord], list[Skipped]]:
    """Every standby record, oldest pid file first."""
    return _read_notes(StandbyRecord, "standby")


def remove_standby(record: StandbyRecord) -> None:
    """Delete a standby's record and its key file."""
    _remove_ours(record.path, "standby", RECORD_NAME)
    _remove_ours(record.secret_file, "secrets", STANDBY_KEY_NAME)


# ---------------------------------------------------------------------------
# Notes of boards that stopped themselves (see nbboard.idle)

#: How long ``list`` keeps showing why a board ended.
ENDED_KEPT = 24 * 3600


def write_ended(note: EndedRecord) -> EndedRecord:
    return _write_note("ended", note)


def read_ended() -> tuple[list[EndedRecord], list[Skipped]]:
    """Every note of a board that stopped itself, oldest first."""
    found, skipped = _read_notes(EndedRecord, "ended")
    return sorted(found, key=lambda n: n.ended_at), skipped


def remove_ended(note: EndedRecord) -> None:
    _remove_ours(note.path, "ended", RECORD_NAME)


# ---------------------------------------------------------------------------
# TensorBoard's own registry (what %tensorboard writes)


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
        _coerce(key, data[key], kind)
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
    _check_ranges(record)
    return record


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


# ---------------------------------------------------------------------------
# Logs of the processes nbboard starts (TensorBoard, tunnel helpers)

#: Names nbboard gives its log files; nothing else in logs/ is ever deleted.
LOG_NAME = re.compile(r"^(tb|tunnel)-[0-9a-f]{12}\.log$")


def new_log_path(kind: str) -> str:
    return str(logs_dir() / f"{kind}-{uuid.uuid4().hex[:12]}.log")


def remove_log_file(log_path: str) -> None:
    """Delete a log, only if it is one nbboard named, in nbboard's own logs directory."""
    if not log_path:
        return
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
