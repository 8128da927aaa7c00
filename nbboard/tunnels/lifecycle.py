"""Is a tunnel's helper still running, and stopping it when its board goes away."""

from __future__ import annotations

import contextlib

import psutil

from .. import procs, registry
from ..errors import NbboardError
from ..registry import TunnelRecord
from . import providers


def helper_process(tunnel: TunnelRecord) -> psutil.Process | None:
    """The helper the record names, if it is still that process."""
    proc, _why = procs.find_launched(tunnel.helper_pid, tunnel.helper_create_time, tunnel.helper_argv)
    return proc


def stop_helper(tunnel: TunnelRecord) -> bool:
    """Stop the helper (and with it the gate and any provider's agent); remove the record and the secret."""
    proc = helper_process(tunnel)
    if proc is not None:
        procs.terminate_tree(proc)
    registry.remove_tunnel(tunnel)
    with contextlib.suppress(NbboardError):  # what a helper killed before it could clean up leaves behind
        providers.get(tunnel.provider).cleanup(str(registry.ensure_home() / "tunnels"), tunnel.helper_pid)
    return proc is not None
