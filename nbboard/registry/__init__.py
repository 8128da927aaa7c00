"""The registry: what nbboard keeps on disk, in a private directory of its own (``NBBOARD_HOME``).

One module a job; this package re-exports them so callers say ``registry.X``:

- :mod:`.records`: the record types (board, tunnel, standby, ended note, a board's status) and their one codec;
- :mod:`.home`: the 0700 directory and its subdirectories, never through a link;
- :mod:`.atomic`: atomic 0600 writes, trusted reads, the temp files a crash leaves;
- :mod:`.store`: one generic store, used for boards, tunnels, standbys and ended notes, with one rule
  for what a reader skips;
- :mod:`.status`: the status file a board's own process writes for its launcher (port, version, exit);
- :mod:`.tensorboard`: reading ``%tensorboard``'s own registry (its shared info directory);
- :mod:`.locks`, :mod:`.logs`: start locks, and the logs of the processes nbboard starts.

Files that cannot be trusted (junk, symlinks, other owners, a newer schema)
are skipped and reported, never deleted: they may belong to someone. The
registry knows nothing about liveness; :mod:`nbboard.liveness` decides
whether a record still describes a running board.
"""

from ..errors import RegistryError
from . import atomic, home, locks, logs, records, status, store, tensorboard
from .atomic import *  # noqa: F403
from .home import *  # noqa: F403
from .locks import *  # noqa: F403
from .logs import *  # noqa: F403
from .records import *  # noqa: F403
from .status import *  # noqa: F403
from .store import *  # noqa: F403
from .tensorboard import *  # noqa: F403

__all__ = [
    "RegistryError",
    *atomic.__all__,
    *home.__all__,
    *locks.__all__,
    *logs.__all__,
    *records.__all__,
    *status.__all__,
    *store.__all__,
    *tensorboard.__all__,
]
