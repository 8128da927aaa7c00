"""Is a tunnel's helper still running, and stopping it when its board goes away."""

from __future__ import annotations

import contextlib

import psutil

from .. import procs, registry
from ..registry import TunnelRecord
from . import ngrok


def helper_process(tunnel: TunnelRecord) -> psutil.Process | None:
    """The helper the record names, if it is still that process."""
    proc, _why = procs.find_launched(tunnel.helper_pid, tunnel.helper_create_time, tunnel.helper_argv)
    return proc


def stop_helper(tunnel: TunnelRecord) -> bool:
    """Stop the helper (and with it the gate and any ngrok agent); remove the record and the secret."""
    proc = helper_process(tunnel)
    if proc is not None:
        procs.terminate_tree(proc)
    registry.remove_tunnel(tunnel)
    with contextlib.suppress(OSError):  # left behind if the helper was killed before it could clean up
        ngrok.agent_config_path(registry.ensure_home() / "tunnels", tunnel.helper_pid).unlink()
    return proc is not None
