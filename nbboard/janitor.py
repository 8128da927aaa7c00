"""Clearing what nbboard leaves behind: records, logs, tunnels, standbys, locks and temp files of what is gone.

:mod:`nbboard.api` decides which boards to stop or forget; this module does
the removing, so that each kind of trace is removed in one place. It never
stops a process that its record does not prove is the one nbboard started.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from . import liveness, procs, registry, standby, tbinfo
from .instance import Instance
from .registry import BoardRecord, EndedRecord, StandbyRecord, TunnelRecord
from .tunnels import lifecycle as tunnel_lifecycle

#: No record write takes this long: a temp file older than this is left over even if its writer's pid was reused.
WRITE_LIMIT = 60.0


@dataclass(frozen=True)
class Cleared:
    """What :func:`clear_everything` removed besides the boards ``kill`` chose."""

    stopped: tuple[Instance, ...] = ()  # processes of this registry that never got a record
    removed_logs: int = 0
    standbys: tuple[StandbyRecord, ...] = ()
    ended: tuple[EndedRecord, ...] = ()


def forget(instance: Instance) -> None:
    """Remove every trace of a board that is gone: record, log, tunnel, TensorBoard's info file."""
    if instance.tunnel is not None:
        tunnel_lifecycle.stop_helper(instance.tunnel)
    registry.remove(instance.record)
    if instance.is_ours:
        registry.remove_log_file(instance.log_path)
        if not psutil.pid_exists(instance.pid) or liveness.owner(instance.record)[0] is None:
            tbinfo.remove(instance.pid)


def stop_and_forget(instance: Instance, proc: psutil.Process | None) -> None:
    if proc is not None:
        procs.terminate_tree(proc)
    forget(instance)


def stop_tunnels(tunnels: Iterable[TunnelRecord]) -> None:
    """Stop tunnel helpers (each removes its record, secret and log)."""
    for tunnel in tunnels:
        tunnel_lifecycle.stop_helper(tunnel)


def sweep(orphan_tunnels: Iterable[TunnelRecord]) -> None:
    """What every start clears: helpers of boards that are gone, dead standbys, idle locks, dead writes,
    notes of ended boards older than :data:`registry.ENDED_KEPT`."""
    stop_tunnels(orphan_tunnels)
    standby.collect_garbage()
    registry.remove_idle_locks()  # one per logdir ever started would otherwise stay forever
    remove_dead_writes()
    for note in registry.read_ended()[0]:
        if note.ended_at < time.time() - registry.ENDED_KEPT:
            registry.remove_ended(note)


def clear_everything(orphan_tunnels: Iterable[TunnelRecord]) -> Cleared:
    """What ``kill`` with no selector clears besides the boards: standbys, ended notes, orphan tunnels,
    unrecorded processes of this registry, orphan logs, idle locks and dead writes."""
    standbys = standby.clear()
    ended = registry.read_ended()[0]
    for note in ended:
        registry.remove_ended(note)
    stop_tunnels(orphan_tunnels)
    stopped = _stop_unrecorded()
    removed_logs = _remove_orphan_logs()
    registry.remove_idle_locks()
    remove_dead_writes()
    return Cleared(tuple(stopped), removed_logs, tuple(standbys), tuple(ended))


def remove_dead_writes() -> int:
    """Remove the temp files of writes whose writer died before renaming them (a starter killed mid-write);
    returns how many. A write in progress (its writer alive, the file fresh) is left alone."""
    removed = 0
    for temp in registry.temp_files():
        alive = temp.writer_pid is not None and psutil.pid_exists(temp.writer_pid)
        if not alive or temp.age > WRITE_LIMIT or temp.age < -WRITE_LIMIT:
            registry.remove_temp_file(temp)
            removed += 1
    return removed


def _stop_unrecorded() -> list[Instance]:
    """Processes this registry started whose record was never written (their starter died in between)."""
    records, _ = registry.read_all()
    tunnels, _ = registry.read_tunnels()
    known = {r.pid for r in records} | {t.helper_pid for t in tunnels.values()}
    strays = procs.tagged(procs.OWNER_VAR, procs.owner_tag(), known)
    # Only the roots: a stray's own children (TensorBoard's data server) go with it.
    stray_pids = {p.pid for p in strays}
    roots = [p for p in strays if _parent_pid(p) not in stray_pids | known]
    procs.terminate_trees(roots)
    return [
        Instance(
            BoardRecord(pid=p.pid, port=0, logdir="(unrecorded)", create_time=0.0, cache_key="", argv=(), start_time=0),
            status="stopped",
        )
        for p in roots
    ]


def _parent_pid(proc: psutil.Process) -> int:
    try:
        return proc.ppid()
    except psutil.Error:
        return 0


def _remove_orphan_logs() -> int:
    """Logs nbboard named whose board or tunnel has no record any more (and the status files of logs gone)."""
    records, _ = registry.read_all()
    tunnels, _ = registry.read_tunnels()
    in_use = {r.log_path for r in records} | {t.log_path for t in tunnels.values()}
    removed = 0
    recent = time.time() - 30  # a start in another process may not have written its record yet
    for path in registry.logs_dir().glob("*.log"):
        if not registry.LOG_NAME.match(path.name) or str(path) in in_use or path.is_symlink():
            continue
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < recent:
                path.unlink()
                removed += 1
    for sid in registry.status_files():  # a board's status goes with its log
        if not (registry.logs_dir() / f"{sid}.log").exists():
            registry.remove_status(sid)
    return removed
