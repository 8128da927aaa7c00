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
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config
from .errors import RegistryError

#: Bumped when a record's meaning changes incompatibly.
SCHEMA = 1
#: Records are small; anything bigger is not one of ours.
MAX_RECORD_BYTES = 256 * 1024

SOURCE_NBBOARD = "nbboard"
SOURCE_TENSORBOARD = "tensorboard"


@dataclass(frozen=True)
class TunnelInfo:
    """A public tunnel in front of a board (see :mod:`nbboard.tunnels`).

    Attributes:
      provider: "ngrok" or "localtunnel".
      public_url: URL without the secret.
      helper_pid / helper_create_time: the detached helper that holds the tunnel.
      gate_port: loopback port of the authenticating gate (0 when --no-auth).
      expires_at: epoch seconds, 0 for no expiry.
      secret_file: 0600 file holding the secret; the secret itself is never in a record.
      log_path: the helper's log.
    """

    provider: str
    public_url: str
    helper_pid: int
    helper_create_time: float
    gate_port: int
    board_pid: int = 0
    expires_at: int = 0
    secret_file: str = ""
    log_path: str = ""
    auth: bool = True
    helper_argv: tuple[str, ...] = ()
    path: str = field(default="", compare=False)


@dataclass(frozen=True)
class Instance:
    """One TensorBoard known to nbboard.

    Attributes:
      pid / create_time: the process; both must match before nbboard signals it.
      port / host / path_prefix: where it serves.
      logdir: absolute local path, or a remote URL / logdir spec exactly as given.
      cache_key: reuse key (logdir + normalised extra flags).
      argv: the full command line nbboard launched.
      version: TensorBoard's version.
      start_time: epoch seconds when nbboard launched it.
      log_path: TensorBoard's combined stdout/stderr.
      state: "starting" until it first answered, then "ready".
      source: "nbboard", or "tensorboard" for a record from ``%tensorboard``'s registry.
      status: computed on read: "running", "starting" or "stale".
      reason: why a record is stale, for the user.
      path: the record file.
      reused: set by ``start`` when it returned an existing board.
    """

    pid: int
    port: int
    logdir: str
    host: str = "127.0.0.1"
    path_prefix: str = ""
    create_time: float = 0.0
    cache_key: str = ""
    argv: tuple[str, ...] = ()
    version: str = ""
    start_time: int = 0
    log_path: str = ""
    state: str = "ready"
    tunnel: TunnelInfo | None = None
    source: str = SOURCE_NBBOARD
    status: str = "running"
    reason: str = ""
    path: str = field(default="", compare=False)
    reused: bool = False

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

    def uptime(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.start_time)

    def to_json(self) -> dict[str, Any]:
        """The public JSON form (``nbboard list --json``): no secrets."""
        data = {
            "pid": self.pid,
            "port": self.port,
            "logdir": self.logdir,
            "url": self.url,
            "status": self.status,
            "source": self.source,
            "reason": self.reason,
            "start_time": self.start_time,
            "uptime_s": round(self.uptime(), 1),
            "version": self.version,
            "record": self.path,
            "log": self.log_path,
        }
        if self.tunnel is not None:
            from .tunnels.secrets import mask

            data["tunnel"] = {
                "provider": self.tunnel.provider,
                "url": mask(self.tunnel.public_url, self.tunnel.auth),
                "helper_pid": self.tunnel.helper_pid,
                "expires_at": self.tunnel.expires_at,
                "auth": self.tunnel.auth,
            }
        return data


@dataclass(frozen=True)
class Skipped:
    """A registry file nbboard did not use, and why."""

    path: str
    why: str


# ---------------------------------------------------------------------------
# Directory


def ensure_home() -> Path:
    """Create the registry directory (0700) and its subdirectories.

    Raises RegistryError when it cannot be created or is not private.
    """
    root = config.home()
    try:
        for sub in (root, root / "boards", root / "logs", root / "locks", root / "secrets", root / "tunnels"):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
            _make_private(sub)
    except OSError as e:
        raise RegistryError(
            f"cannot use nbboard's registry directory {root}: {e.strerror or e}",
            "set NBBOARD_HOME to a writable directory of your own",
        ) from None
    return root


def _make_private(path: Path) -> None:
    st = path.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise RegistryError(
            f"{path} belongs to another user (uid {st.st_uid}); nbboard will not use it",
            "set NBBOARD_HOME to a directory of your own",
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)


def boards_dir() -> Path:
    return ensure_home() / "boards"


def logs_dir() -> Path:
    return ensure_home() / "logs"


def locks_dir() -> Path:
    return ensure_home() / "locks"


def record_path(pid: int) -> Path:
    return boards_dir() / f"pid-{pid}.json"


# ---------------------------------------------------------------------------
# Writing


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.chmod(tmp, 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise RegistryError(
            f"cannot write {path}: {e.strerror or e}",
            "free some disk space or set NBBOARD_HOME to a writable directory",
        ) from None


def write(instance: Instance) -> Instance:
    """Persist ``instance``; returns it with ``path`` set."""
    path = record_path(instance.pid)
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "pid": instance.pid,
        "create_time": instance.create_time,
        "port": instance.port,
        "host": instance.host,
        "path_prefix": instance.path_prefix,
        "logdir": instance.logdir,
        "cache_key": instance.cache_key,
        "argv": list(instance.argv),
        "version": instance.version,
        "start_time": instance.start_time,
        "log_path": instance.log_path,
        "state": instance.state,
    }
    write_private(path, json.dumps(record, indent=1))
    return dataclasses.replace(instance, path=str(path))


def remove(instance: Instance) -> bool:
    """Delete the record file of ``instance``; True if it was there."""
    if not instance.path:
        return False
    try:
        os.unlink(instance.path)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Reading

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "pid": int,
    "create_time": (int, float),
    "port": int,
    "logdir": str,
    "cache_key": str,
    "argv": list,
    "start_time": int,
}
_OPTIONAL_STR = ("host", "path_prefix", "version", "log_path", "state")


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


def _check_types(data: dict[str, Any], required: dict[str, type | tuple[type, ...]]) -> None:
    for key, kind in required.items():
        if key not in data:
            raise ValueError(f"missing key {key!r}")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"key {key!r} has the wrong type")


def parse_record(data: dict[str, Any], path: str = "") -> Instance:
    """Build an Instance from a record; unknown keys are ignored."""
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise ValueError("no schema number")
    if schema > SCHEMA:
        raise ValueError(f"written by a newer nbboard (schema {schema}); upgrade nbboard to manage it")
    _check_types(data, _REQUIRED)
    for key in _OPTIONAL_STR:
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"key {key!r} has the wrong type")
    if not all(isinstance(a, str) for a in data["argv"]):
        raise ValueError("key 'argv' has the wrong type")
    if data["pid"] <= 0 or not (0 <= data["port"] <= 65535):
        raise ValueError("pid or port out of range")
    return Instance(
        pid=data["pid"],
        port=data["port"],
        logdir=data["logdir"],
        host=data.get("host", "127.0.0.1"),
        path_prefix=data.get("path_prefix", ""),
        create_time=float(data["create_time"]),
        cache_key=data["cache_key"],
        argv=tuple(data["argv"]),
        version=data.get("version", ""),
        start_time=data["start_time"],
        log_path=data.get("log_path", ""),
        state=data.get("state", "ready"),
        path=path,
    )


def read_all() -> tuple[list[Instance], list[Skipped]]:
    """Every readable nbboard record, and the files that were skipped."""
    found: list[Instance] = []
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
            found.append(parse_record(read_trusted_json(path), str(path)))
        except ValueError as e:
            skipped.append(Skipped(str(path), str(e)))
    return found, skipped


# ---------------------------------------------------------------------------
# Tunnel records: one per board, beside the board records, written by the API only

_TUNNEL_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "provider": str,
    "public_url": str,
    "helper_pid": int,
    "helper_create_time": (int, float),
    "gate_port": int,
    "board_pid": int,
}


def tunnel_path(board_pid: int) -> Path:
    return ensure_home() / "tunnels" / f"pid-{board_pid}.json"


def write_tunnel(info: TunnelInfo) -> TunnelInfo:
    path = tunnel_path(info.board_pid)
    data = dataclasses.asdict(info)
    data.pop("path")
    data["helper_argv"] = list(info.helper_argv)
    data["schema"] = SCHEMA
    write_private(path, json.dumps(data, indent=1))
    return dataclasses.replace(info, path=str(path))


def read_tunnels() -> tuple[dict[int, TunnelInfo], list[Skipped]]:
    found: dict[int, TunnelInfo] = {}
    skipped: list[Skipped] = []
    names = {f.name for f in dataclasses.fields(TunnelInfo)} - {"path"}
    for path in sorted((ensure_home() / "tunnels").glob("pid-*.json")):
        try:
            data = read_trusted_json(path)
            if not isinstance(data.get("schema"), int) or data["schema"] > SCHEMA:
                raise ValueError("written by a newer nbboard; upgrade nbboard to manage it")
            _check_types(data, _TUNNEL_REQUIRED)
            kwargs = {k: v for k, v in data.items() if k in names}
            kwargs["helper_argv"] = tuple(str(a) for a in kwargs.get("helper_argv") or ())
            info = TunnelInfo(**kwargs, path=str(path))
            found[info.board_pid] = info
        except (ValueError, TypeError) as e:
            skipped.append(Skipped(str(path), str(e)))
    return found, skipped


def remove_tunnel(info: TunnelInfo) -> None:
    with contextlib.suppress(OSError):
        if info.path:
            os.unlink(info.path)
    with contextlib.suppress(OSError):
        if info.secret_file and Path(info.secret_file).parent == ensure_home() / "secrets":
            os.unlink(info.secret_file)


# ---------------------------------------------------------------------------
# TensorBoard's own registry (what %tensorboard writes)


def tensorboard_info_dir() -> Path:
    """``<tempdir>/.tensorboard-info``, as ``tensorboard.manager`` computes it."""
    return Path(tempfile.gettempdir()) / ".tensorboard-info"


_TB_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "pid": int,
    "port": int,
    "start_time": int,
    "version": str,
}


def read_tensorboard_registry() -> tuple[list[Instance], list[Skipped]]:
    """Records from ``%tensorboard``'s registry, as Instances of source "tensorboard"."""
    found: list[Instance] = []
    skipped: list[Skipped] = []
    directory = tensorboard_info_dir()
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return found, skipped
    for entry in entries:
        if not entry.name.endswith(".info"):
            continue
        path = Path(entry.path)
        try:
            data = read_trusted_json(path)
            _check_types(data, _TB_REQUIRED)
            logdir = data.get("logdir") or data.get("db") or ""
            found.append(
                Instance(
                    pid=data["pid"],
                    port=data["port"],
                    logdir=str(logdir),
                    host="127.0.0.1",
                    path_prefix=str(data.get("path_prefix") or ""),
                    cache_key=str(data.get("cache_key", "")),
                    version=data["version"],
                    start_time=data["start_time"],
                    source=SOURCE_TENSORBOARD,
                    path=str(path),
                )
            )
        except ValueError as e:
            # Another user's files live here too (the directory is shared): not ours to report loudly.
            if "not you" not in str(e):
                skipped.append(Skipped(str(path), str(e)))
    return found, skipped


@contextlib.contextmanager
def lock(name: str, timeout: float) -> Iterator[None]:
    """A cross-process lock, so concurrent starts of one board launch it once."""
    import filelock  # cross-platform (fcntl / msvcrt); imported late to keep %load_ext cheap

    path = locks_dir() / f"{name}.lock"
    try:
        with filelock.FileLock(str(path), timeout=timeout, mode=0o600):
            yield
    except filelock.Timeout:
        raise RegistryError(
            f"another nbboard has held the start lock {path} for {timeout:g} s",
            "wait for the other start to finish, or run: nbboard kill",
        ) from None
