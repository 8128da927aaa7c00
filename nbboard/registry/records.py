"""The records nbboard keeps on disk, and their one codec.

Five frozen record types (a board, its tunnel, the standby, the note a board
leaves when it stops itself, and the status a board's own process reports)
and one JSON codec derived from their fields.
No I/O here: :mod:`nbboard.registry.store` reads and writes them.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "MAX_RECORD_BYTES",
    "SCHEMA",
    "SOURCE_NBBOARD",
    "SOURCE_TENSORBOARD",
    "BoardRecord",
    "BoardStatus",
    "EndedRecord",
    "Skipped",
    "StandbyRecord",
    "TunnelRecord",
    "decode",
    "encode",
]

#: Bumped when a record's meaning changes incompatibly.
SCHEMA = 1
#: Records are small; anything bigger is not one of ours.
MAX_RECORD_BYTES = 256 * 1024

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
      reports_status: it runs nbboard's entry point, which reports to its launcher in a status file
        (:class:`BoardStatus`); another command's board is read from its log.
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
    reports_status: bool = False
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


@dataclass(frozen=True)
class BoardStatus:
    """What a board's own process says about itself (see :mod:`nbboard.serve`), read by whoever launched it.

    Written by the board, never by a starter: it is the one channel from the
    board to the launcher (the log is for people). A board started by another
    command (``NBBOARD_TENSORBOARD``, or TensorBoard's plain entry point)
    writes none.

    Attributes:
      pid: the board's process; a status naming another pid is not this board's.
      port / version: where it serves and which TensorBoard it is, once it serves (0 and "" before).
      nodelay: TCP_NODELAY was set on its data server's sockets (see :mod:`nbboard.nodelay`).
      nodelay_note: on which sockets, or why not; "" until the board has tried.
      exited / exit_code / exit_reason: TensorBoard's main returned (or exited) with that code, and why
        when the board knows ("" otherwise: TensorBoard's own output in the log says it).
      path: the status file (not stored).
    """

    pid: int
    port: int = 0
    version: str = ""
    nodelay: bool = False
    nodelay_note: str = ""
    exited: bool = False
    exit_code: int = 0
    exit_reason: str = ""
    path: str = field(default="", compare=False, metadata={"stored": False})


# ---------------------------------------------------------------------------
# One codec for every record type, derived from the dataclass fields (as
# TensorBoard's manager.py derives its info format from TensorBoardInfo).

R = TypeVar("R", BoardRecord, TunnelRecord, EndedRecord, StandbyRecord, BoardStatus)
AnyRecord = BoardRecord | TunnelRecord | StandbyRecord | EndedRecord | BoardStatus


def _stored_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("stored", True)]


def encode(record: AnyRecord) -> str:
    """The JSON text of a record: every stored field, tuples as lists, plus the schema number."""
    data: dict[str, Any] = {"schema": SCHEMA}
    for f in _stored_fields(type(record)):
        value = getattr(record, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(data, indent=1)


def coerce(name: str, value: Any, kind: Any) -> Any:
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
        values[f.name] = coerce(f.name, data[f.name], hints[f.name])
    record = cls(**values, path=path)
    check_ranges(record)
    return record


def check_ranges(record: AnyRecord) -> None:
    if isinstance(record, (BoardRecord, StandbyRecord, EndedRecord, BoardStatus)) and (
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
