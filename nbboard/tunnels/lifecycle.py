"""Stopping a tunnel's helper process, called when its board goes away."""

from __future__ import annotations

import contextlib
import os

from .. import procs
from ..registry import TunnelInfo


def stop_helper(tunnel: TunnelInfo) -> bool:
    """Stop the helper that holds ``tunnel``, if it is still the process the record names."""
    proc, _why = procs.find_launched(tunnel.helper_pid, tunnel.helper_create_time, ())
    if proc is not None:
        procs.terminate_tree(proc)
    if tunnel.secret_file:
        with contextlib.suppress(OSError):
            os.unlink(tunnel.secret_file)
    return proc is not None
