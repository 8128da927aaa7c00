"""One store for every kind of record nbboard keeps: one ``pid-N.json`` file per record in a directory of its own.

Boards, tunnels, standbys and the notes of boards that ended are each a
:class:`Store`, so they share one rule for what a reader uses:

- temp files of a write in progress (``.tmp-…``) are passed over in silence;
- anything else that is not a small regular JSON file of this user (a link,
  another user's file, junk, a newer schema) is reported as skipped;
- a record under a name nbboard does not write (not ``pid-N.json``, or N not
  the record's own pid) is reported as skipped too: someone put it there.

Nothing skipped is ever deleted: it may belong to someone. A store deletes
only files of a name it writes, in its own directory, never through a link.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

from .. import config
from ..errors import RegistryError
from . import records
from .atomic import read_trusted_json, write_private
from .home import ensure_home, existing_dir
from .records import BoardRecord, EndedRecord, R, Skipped, StandbyRecord, TunnelRecord, decode, encode
from .tensorboard import is_info_file

__all__ = [
    "BOARDS",
    "ENDED",
    "ENDED_KEPT",
    "RECORD_NAME",
    "SECRET_NAME",
    "STANDBY_KEY_NAME",
    "STANDBYS",
    "TUNNELS",
    "Store",
    "read_all",
    "read_board",
    "read_ended",
    "read_standbys",
    "read_tunnels",
    "record_path",
    "remove",
    "remove_ended",
    "remove_standby",
    "remove_tunnel",
    "standby_path",
    "tunnel_path",
    "write",
    "write_ended",
    "write_standby",
    "write_tunnel",
]

#: Names nbboard gives the files it writes; it only ever deletes files named so.
RECORD_NAME = re.compile(r"^pid-([0-9]+)\.json$")
SECRET_NAME = re.compile(r"^tunnel-[0-9a-f]{12}\.secret$")
STANDBY_KEY_NAME = re.compile(r"^standby-[0-9a-f]{12}\.key$")

#: How long ``list`` keeps showing why a board ended.
ENDED_KEPT = 24 * 3600


@dataclass(frozen=True)
class Store(Generic[R]):
    """The records of one type, kept in ``<NBBOARD_HOME>/<subdir>/pid-<key>.json``."""

    subdir: str
    kind: type[R]
    key: Callable[[R], int]  # the pid a record's file is named after

    def path(self, pid: int) -> Path:
        return ensure_home() / self.subdir / f"pid-{pid}.json"

    def write(self, record: R) -> R:
        """Persist ``record`` atomically (0600); returns it with ``path`` set."""
        path = self.path(self.key(record))
        write_private(path, encode(record))
        return dataclasses.replace(record, path=str(path))

    def read(self) -> tuple[list[R], list[Skipped]]:
        """Every record this store can trust, by file name, and the files it skipped (see the module docstring)."""
        found: list[R] = []
        skipped: list[Skipped] = []
        directory = existing_dir(self.subdir)  # reading creates nothing: ``list`` changes nothing on disk
        if directory is None:
            return found, skipped
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as e:
            raise RegistryError(f"cannot read nbboard's registry: {e.strerror or e}") from None
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                continue
            path = Path(entry.path)
            try:
                record = decode(self.kind, read_trusted_json(path), str(path))
            except ValueError as e:
                skipped.append(Skipped(str(path), str(e)))
                continue
            match = RECORD_NAME.match(entry.name)
            if match and int(match[1]) == self.key(record):
                found.append(record)
            else:  # nbboard writes pid-<pid>.json: a record under another name was put there by hand
                skipped.append(Skipped(str(path), "a record under a name nbboard does not write; left alone"))
        return found, skipped

    def remove(self, record: R) -> bool:
        """Delete the record's file; True if it was there. Only a file this store names, in its directory."""
        return _remove_ours(record.path, self.subdir, RECORD_NAME)


BOARDS: Store[BoardRecord] = Store("boards", BoardRecord, lambda r: r.pid)
TUNNELS: Store[TunnelRecord] = Store("tunnels", TunnelRecord, lambda r: r.board_pid)
STANDBYS: Store[StandbyRecord] = Store("standby", StandbyRecord, lambda r: r.pid)
ENDED: Store[EndedRecord] = Store("ended", EndedRecord, lambda r: r.pid)


def _remove_ours(path_text: str, subdir: str, name: re.Pattern[str]) -> bool:
    """Unlink a file only if it has a name nbboard gives, in the directory nbboard keeps it in, and is no link."""
    path = Path(path_text) if path_text else None
    if path is None or not name.match(path.name) or path.parent != config.home() / subdir:
        return False
    try:
        if path.is_symlink():
            return False
        path.unlink()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# The functions the rest of nbboard calls, one store each


def record_path(pid: int) -> Path:
    return BOARDS.path(pid)


def write(record: BoardRecord) -> BoardRecord:
    """Persist a board's record; returns it with ``path`` set."""
    return BOARDS.write(record)


def read_board(path: Path) -> BoardRecord:
    """One board record file (ValueError if it is not one nbboard would trust)."""
    return decode(BoardRecord, read_trusted_json(path), str(path))


def read_all() -> tuple[list[BoardRecord], list[Skipped]]:
    """Every readable nbboard board record, and the files that were skipped."""
    return BOARDS.read()


def remove(record: BoardRecord | TunnelRecord) -> bool:
    """Delete the record file; True if it was there.

    Only a file of a name nbboard writes, in the directory it reads it from
    (its own boards/ or tunnels/, or TensorBoard's info directory).
    """
    if isinstance(record, TunnelRecord):
        return TUNNELS.remove(record)
    if record.source == records.SOURCE_TENSORBOARD:
        if not record.path or not is_info_file(Path(record.path)):
            return False
        try:
            os.unlink(record.path)
            return True
        except OSError:
            return False
    return BOARDS.remove(record)


def tunnel_path(board_pid: int) -> Path:
    return TUNNELS.path(board_pid)


def write_tunnel(record: TunnelRecord) -> TunnelRecord:
    return TUNNELS.write(record)


def read_tunnels() -> tuple[dict[int, TunnelRecord], list[Skipped]]:
    """Every tunnel record, by the pid of the board it exposes."""
    found, skipped = TUNNELS.read()
    return {r.board_pid: r for r in found}, skipped


def remove_tunnel(info: TunnelRecord) -> None:
    """Delete a tunnel's record and its secret file (only a secret nbboard named, in its secrets directory)."""
    TUNNELS.remove(info)
    _remove_ours(info.secret_file, "secrets", SECRET_NAME)


def standby_path(pid: int) -> Path:
    return STANDBYS.path(pid)


def write_standby(record: StandbyRecord) -> StandbyRecord:
    return STANDBYS.write(record)


def read_standbys() -> tuple[list[StandbyRecord], list[Skipped]]:
    """Every standby record, oldest pid file first."""
    return STANDBYS.read()


def remove_standby(record: StandbyRecord) -> None:
    """Delete a standby's record and its key file."""
    STANDBYS.remove(record)
    _remove_ours(record.secret_file, "secrets", STANDBY_KEY_NAME)


def write_ended(note: EndedRecord) -> EndedRecord:
    return ENDED.write(note)


def read_ended() -> tuple[list[EndedRecord], list[Skipped]]:
    """Every note of a board that stopped itself, oldest first."""
    found, skipped = ENDED.read()
    return sorted(found, key=lambda n: n.ended_at), skipped


def remove_ended(note: EndedRecord) -> None:
    ENDED.remove(note)
