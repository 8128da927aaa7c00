"""The registry: what nbboard keeps on disk, in a private directory of its own (``NBBOARD_HOME``).

One module a job; this package re-exports them so callers say ``registry.X``:

- :mod:`.records`: the four record types (board, tunnel, standby, ended note) and their one codec;
- :mod:`.home`: the 0700 directory and its subdirectories, never through a link;
- :mod:`.atomic`: atomic 0600 writes, trusted reads, the temp files a crash leaves;
- :mod:`.store`: one generic store, used for boards, tunnels, standbys and ended notes, with one rule
  for what a reader skips;
- :mod:`.tensorboard`: reading ``%tensorboard``'s own registry (its shared info directory);
- :mod:`.locks`, :mod:`.logs`: start locks, and the logs of the processes nbboard starts.

Files that cannot be trusted (junk, symlinks, other owners, a newer schema)
are skipped and reported, never deleted: they may belong to someone. The
registry knows nothing about liveness; :mod:`nbboard.liveness` decides
whether a record still describes a running board.
"""

from ..errors import RegistryError
from .atomic import TEMP_NAME, TempFile, check_writable, read_trusted_json, remove_temp_file, temp_files, write_private
from .home import SUBDIRS, boards_dir, ensure_home, locks_dir, logs_dir, private_tmp_dir
from .locks import LOCK_NAME, lock, remove_idle_locks
from .logs import LOG_NAME, new_log_path, output_tail, remove_log_file
from .records import (
    MAX_RECORD_BYTES,
    SCHEMA,
    SOURCE_NBBOARD,
    SOURCE_TENSORBOARD,
    BoardRecord,
    EndedRecord,
    Skipped,
    StandbyRecord,
    TunnelRecord,
    decode,
    encode,
)
from .store import (
    BOARDS,
    ENDED,
    ENDED_KEPT,
    RECORD_NAME,
    SECRET_NAME,
    STANDBY_KEY_NAME,
    STANDBYS,
    TUNNELS,
    Store,
    read_all,
    read_board,
    read_ended,
    read_standbys,
    read_tunnels,
    record_path,
    remove,
    remove_ended,
    remove_standby,
    remove_tunnel,
    standby_path,
    tunnel_path,
    write,
    write_ended,
    write_standby,
    write_tunnel,
)
from .tensorboard import TENSORBOARD_INFO_NAME, read_tensorboard_registry, tensorboard_info_dir

__all__ = [
    "BOARDS",
    "ENDED",
    "ENDED_KEPT",
    "LOCK_NAME",
    "LOG_NAME",
    "MAX_RECORD_BYTES",
    "RECORD_NAME",
    "SCHEMA",
    "SECRET_NAME",
    "SOURCE_NBBOARD",
    "SOURCE_TENSORBOARD",
    "STANDBYS",
    "STANDBY_KEY_NAME",
    "SUBDIRS",
    "TEMP_NAME",
    "TENSORBOARD_INFO_NAME",
    "TUNNELS",
    "BoardRecord",
    "EndedRecord",
    "RegistryError",
    "Skipped",
    "StandbyRecord",
    "Store",
    "TempFile",
    "TunnelRecord",
    "boards_dir",
    "check_writable",
    "decode",
    "encode",
    "ensure_home",
    "lock",
    "locks_dir",
    "logs_dir",
    "new_log_path",
    "output_tail",
    "private_tmp_dir",
    "read_all",
    "read_board",
    "read_ended",
    "read_standbys",
    "read_tensorboard_registry",
    "read_trusted_json",
    "read_tunnels",
    "record_path",
    "remove",
    "remove_ended",
    "remove_idle_locks",
    "remove_log_file",
    "remove_standby",
    "remove_temp_file",
    "remove_tunnel",
    "standby_path",
    "temp_files",
    "tensorboard_info_dir",
    "tunnel_path",
    "write",
    "write_ended",
    "write_private",
    "write_standby",
    "write_tunnel",
]
