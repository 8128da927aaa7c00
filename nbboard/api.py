"""nbboard's one public API: start, list, kill (and tunnel, display).

The CLI and the ``%board`` magic are thin skins over these functions. They
raise :class:`~nbboard.errors.NbboardError` subclasses for everything a user
can get wrong, with the fix in the message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import inputs, janitor, launcher, liveness, logdirs, procs, registry, reuse, serve, standby
from .config import BoardConfig, get_default
from .errors import (
    NbboardError,
    NoSuchBoardError,
    PortInUseError,
    StartFailedError,
    StartTimedOutError,
    TensorBoardNotInstalledError,
    UsageError,
    shown,
)
from .instance import Instance
from .logdirs import Logdir
from .registry import (
    SOURCE_NBBOARD,
    SOURCE_TENSORBOARD,
    EndedRecord,
    Skipped,
    StandbyRecord,
    TunnelRecord,
)
from .tunnels import lifecycle as tunnel_lifecycle


@dataclass(frozen=True)
class Scan:
    """Every instance of this user, checked; the registry files that were skipped; the notes of boards that
    stopped themselves (``--idle-timeout``); and the standbys waiting to become the next board."""

    instances: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]
    ended: tuple[EndedRecord, ...] = ()
    standbys: tuple[StandbyRecord, ...] = ()


@dataclass(frozen=True)
class KillReport:
    """What ``kill`` did: boards it stopped, stale records it removed, files it left alone."""

    stopped: tuple[Instance, ...] = ()
    cleaned: tuple[Instance, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    removed_logs: int = 0
    standbys: tuple[StandbyRecord, ...] = ()
    ended: tuple[EndedRecord, ...] = ()


# ---------------------------------------------------------------------------
# start


def start(
    logdir: str | os.PathLike[str] | Logdir | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float | None = None,
    restart: bool = False,
    *,
    logdir_spec: str | None = None,
    idle_timeout: float | str | None = None,
    config: BoardConfig | None = None,
    standby_hook: Callable[[], None] | None = None,
) -> Instance:
    """Start a TensorBoard for ``logdir``, or return the live one already serving it.

    ``standby_hook`` is called before a launch looks for a standby (the magic
    hurries the standby it is about to start, so a start right after
    ``%load_ext`` can use it).

    ``idle_timeout`` ("2h", or seconds; default ``config.idle_timeout``, None
    for never) makes a new board stop itself after serving no request for that
    long, kernel or no kernel; ``list`` then says why it ended. A board that is
    reused keeps the setting it was started with.

    ``logdir`` may be a :class:`~nbboard.logdirs.Logdir` the caller already
    resolved (the CLI and the magic do), or a path/URL to resolve here. The
    returned Instance has ``reused=True`` when nothing was launched. A record
    whose process died, or whose pid now belongs to another program, is never
    reused: it is dropped and a fresh board starts. Concurrent calls for one
    logdir (from several processes) launch it once.
    """
    cfg = config or get_default()
    seconds = inputs.seconds(cfg.start_timeout if timeout is None else timeout)
    port = None if port is None else inputs.port(port)
    idle = idle_timeout if idle_timeout is not None else cfg.idle_timeout
    idle_seconds = inputs.idle_timeout(idle) if idle not in (None, "", 0) else 0.0
    target = logdir if isinstance(logdir, Logdir) else logdirs.resolve(logdir, logdir_spec)
    extra = logdirs.normalise_extra(extra_args)
    command = launcher.tensorboard_command()
    if command is None:
        raise TensorBoardNotInstalledError()
    if idle_seconds and command != serve.command():
        raise UsageError(
            "--idle-timeout is enforced by nbboard's own TensorBoard entry point, and NBBOARD_TENSORBOARD names another command",
            "unset NBBOARD_TENSORBOARD, or leave --idle-timeout out",
        )
    key = logdirs.cache_key(target, extra)
    registry.ensure_home()
    collect_garbage()
    stopped: list[Instance] = []
    with registry.lock(key, timeout=seconds + 30):
        reusable, doomed = reuse.settle_existing(key, port, restart, seconds)
        if reusable is not None:
            return reusable
        old_ports = {c.instance.port for c in doomed if c.proc is not None and c.instance.port}
        if port is None and restart and old_ports:
            port = max(old_ports)  # keep open browser tabs working after --restart
        if port is not None and port not in old_ports:
            reuse.ensure_port_free(port)  # before anything is stopped: a taken port must not cost the old board
        if restart and old_ports:
            registry.check_writable()  # nor a registry the new record cannot be written to
        for c in doomed:
            janitor.stop_and_forget(c.instance, c.proc)
            if c.proc is not None and restart:
                stopped.append(c.instance)
        spec = launcher.LaunchSpec(
            command=tuple(command),
            logdir_args=tuple(target.args),
            logdir_display=target.display,
            extra=tuple(extra),
            cache_key=key,
            timeout=seconds,
            bind_host=cfg.bind_host,
            port=port,
            path_prefix=logdirs.flag_value(extra, "--path_prefix") or "",
            bind_publicly=logdirs.binds_publicly(extra),
            standby=standby.enabled(cfg),
            idle_timeout=idle_seconds,
        )
        result = launcher.launch(spec, standby_hook)
    try:
        return _launch_outcome(result, port)
    except NbboardError as e:
        if stopped:
            old = ", ".join(f"pid {i.pid} on port {i.port}" for i in stopped)
            e.message += (
                f"\n--restart had already stopped the board that served {shown(target.display)} ({old}); nothing serves it now: "
                "run the same start without --restart to bring one back"
            )
        raise


def _launch_outcome(result: launcher.LaunchResult, port: int | None) -> Instance:
    if isinstance(result, launcher.Launched):
        return Instance(result.record, status="running")
    if isinstance(result, launcher.Failed):
        if port is not None and "already in use" in result.output_tail:
            raise PortInUseError(port)
        raise StartFailedError(result.exit_code, result.output_tail, result.log_path)
    if isinstance(result, launcher.ExecFailed):
        if isinstance(result.error, FileNotFoundError):
            raise TensorBoardNotInstalledError(f"{result.command} not found")
        raise NbboardError(f"cannot run {result.command}: {result.error.strerror or result.error}")
    if isinstance(result, launcher.TimedOut):
        raise StartTimedOutError(result.timeout, result.output_tail)
    raise TypeError(f"unexpected result from launcher.launch: {result!r}; this is an nbboard bug, please report it")


# ---------------------------------------------------------------------------
# list


def scan() -> Scan:
    """Check every record of both registries; changes nothing.

    Stale records stay listed (marked "stale", with the reason) until
    :func:`collect_garbage` runs, which ``start`` and ``kill`` do. A board
    whose starter died before it read the port is listed with the port the
    board told (:func:`launcher.learned`); only a start or a kill records it.
    """
    checked, _, skipped = _check_all(record_learned=False)
    ended, ended_skipped = registry.read_ended()
    return Scan(tuple(c.instance for c in checked), skipped + tuple(ended_skipped), tuple(ended), standby.running())


def _check_all(record_learned: bool = True) -> tuple[list[reuse.Checked], dict[int, TunnelRecord], tuple[Skipped, ...]]:
    """Every record checked, oldest first, with live tunnels attached; the tunnel records
    left over (their helper or board is gone); and the registry files skipped. What a starting
    board told since its starter died is recorded only if ``record_learned``."""
    records, skipped = registry.read_all()
    tb_records, tb_skipped = registry.read_tensorboard_registry()
    tunnels, tunnel_skipped = registry.read_tunnels()
    ours = {r.pid for r in records}
    checked: list[reuse.Checked] = []
    for record in records + [r for r in tb_records if r.pid not in ours]:
        if record.state == "starting" and record.source == SOURCE_NBBOARD:
            record = launcher.learn_port(record) if record_learned else launcher.learned(record)
        inst, proc = liveness.check(record)
        tunnel = tunnels.pop(inst.pid, None)
        if tunnel is not None and proc is not None and tunnel_lifecycle.helper_process(tunnel) is not None:
            inst = dataclasses.replace(inst, tunnel=tunnel)
        elif tunnel is not None:
            tunnels[inst.pid] = tunnel  # its helper or its board is gone: garbage
        checked.append(reuse.Checked(inst, proc))
    checked.sort(key=lambda c: (c.instance.start_time, c.instance.pid))
    return checked, tunnels, tuple(skipped + tunnel_skipped + tb_skipped)


def collect_garbage() -> list[Instance]:
    """Drop what can never work again; returns the board records removed.

    nbboard records whose process is gone (or whose pid now belongs to another
    program) are deleted with their logs, and tunnel helpers whose board is
    gone are stopped. Records of ``%tensorboard``'s registry are left to
    ``kill``. A stale board whose process is still ours (hung) is kept, so that
    ``kill`` can stop it.
    """
    checked, orphan_tunnels, _ = _check_all()
    pruned = []
    for c in checked:
        if c.instance.is_ours and c.instance.status == "stale" and c.proc is None:
            janitor.forget(c.instance)
            pruned.append(c.instance)
    janitor.sweep(orphan_tunnels.values())
    return pruned


def list_instances() -> list[Instance]:
    """Every TensorBoard of this user: nbboard's and ``%tensorboard``'s, stale ones marked."""
    return list(scan().instances)


def newest_running() -> Instance | None:
    running = [i for i in list_instances() if i.status == "running"]
    return running[-1] if running else None


def still_running(instance: Instance) -> bool:
    """Whether ``instance``'s process is still the board it names (pid, creation time, command line).

    A view asks before it shows a board again (a page reload): once the board
    has exited, another program may hold its port, and must never be framed
    as the board. Process identity only, no HTTP: a board too busy to answer
    at once is still the board."""
    proc, _why = liveness.owner(instance.record)
    return proc is not None


# ---------------------------------------------------------------------------
# kill


def kill(
    port: int | None = None, pid: int | None = None, logdir: str | os.PathLike[str] | Logdir | None = None
) -> KillReport:
    """Stop boards and clear stale records.

    With no selector: every board of this user (nbboard's and
    ``%tensorboard``'s) is stopped, every stale record of both registries
    removed, and old logs and idle lock files cleared. A process is signalled
    only when it runs as this user and its record proves it is that
    TensorBoard; a record pointing at a reused pid, or at another user's
    process, is dropped (reported with the reason), the process left alone,
    root included. Raises NoSuchBoardError when a selector matches nothing.
    """
    port = None if port is None else inputs.port(port)
    pid = None if pid is None else inputs.pid(pid)
    if logdir is None:
        selected_logdir = None
    else:
        selected_logdir = (logdir if isinstance(logdir, Logdir) else logdirs.resolve(logdir, check=False)).display
    checked, orphan_tunnels, skipped = _check_all()
    everything = port is None and pid is None and selected_logdir is None
    chosen = [
        c
        for c in checked
        if everything
        or (
            (port is None or c.instance.port == port)
            and (pid is None or c.instance.pid == pid)
            and (selected_logdir is None or c.instance.logdir.rstrip("/\\") == selected_logdir.rstrip("/\\"))
        )
    ]
    if not chosen and not everything:
        what = ", ".join(
            part
            for part in (
                f"port {port}" if port is not None else "",
                f"pid {pid}" if pid is not None else "",
                f"logdir {selected_logdir}" if selected_logdir is not None else "",
            )
            if part
        )
        known = ", ".join(f"{c.instance.port} ({c.instance.logdir})" for c in checked) or "none"
        raise NoSuchBoardError(f"no TensorBoard with {what}; boards here: {known}", "see them all with: nbboard list")
    procs.terminate_trees([c.proc for c in chosen if c.proc is not None])
    stopped = [dataclasses.replace(c.instance, status="stopped") for c in chosen if c.proc is not None]
    cleaned = [c.instance for c in chosen if c.proc is None]
    for c in chosen:
        janitor.forget(c.instance)
    cleared = janitor.clear_everything(orphan_tunnels.values()) if everything else janitor.Cleared()
    stopped += cleared.stopped
    return KillReport(tuple(stopped), tuple(cleaned), skipped, cleared.removed_logs, cleared.standbys, cleared.ended)


__all__ = [
    "Instance",
    "KillReport",
    "Scan",
    "SOURCE_NBBOARD",
    "SOURCE_TENSORBOARD",
    "kill",
    "list_instances",
    "newest_running",
    "collect_garbage",
    "scan",
    "start",
    "tunnel",
    "close_tunnels",
    "tunnel_urls",
]


# ---------------------------------------------------------------------------
# tunnel


def tunnel(
    logdir: str | os.PathLike[str] | Logdir | None = None,
    port: int | None = None,
    provider: str | None = None,
    *,
    host: str | None = None,
    auth: bool = True,
    ttl: float | str | None = None,
    timeout: float = 30.0,
    protocol: str | None = None,
    extra_args: Sequence[str] = (),
    config: BoardConfig | None = None,
):  # type: ignore[no-untyped-def]
    """Open a public tunnel to a board: ``logdir`` starts or reuses it, ``port`` picks a running one.

    Returns a TunnelResult whose ``url`` carries the secret. The tunnel goes
    through nbboard's authenticating gate unless ``auth=False``. Reuses a live
    tunnel of the same board. ``protocol`` is cloudflared's transport ("http2"
    where UDP is blocked). When the tunnel fails, a board this call started
    keeps running (a retry reuses it at once) and the error says so.
    """
    from .tunnels import manager

    cfg = config or get_default()
    seconds = manager.parse_ttl(ttl)
    port = None if port is None else inputs.port(port)
    started = False
    if logdir is not None:
        board = start(logdir, extra_args=extra_args, config=cfg)
        started = not board.reused
        board = next((i for i in list_instances() if i.pid == board.pid), board)
    else:
        board = _running_board(port)
    try:
        return manager.open_tunnel(
            board,
            provider or cfg.tunnel_provider,
            host=host,
            auth=auth,
            ttl=seconds,
            timeout=timeout,
            protocol=protocol,
        )
    except NbboardError as e:
        if not started:
            raise
        e.message += (
            f"\n  (TensorBoard on port {board.port}, which this command started for {board.logdir}, is still "
            f"running: a retry reuses it; stop it with: nbboard kill --port {board.port})"
        )
        raise


def _running_board(port: int | None) -> Instance:
    if port is None:
        newest = newest_running()
        if newest is None:
            raise NoSuchBoardError(
                "no TensorBoard is running", "nbboard tunnel --logdir DIR starts one and opens a tunnel"
            )
        return newest
    for inst in list_instances():
        if inst.status == "running" and inst.port == port:
            return inst
    raise NoSuchBoardError(
        f"no TensorBoard of yours answers on port {port}",
        "see them with: nbboard list; or start one: nbboard tunnel --logdir DIR",
    )


def close_tunnels(port: int | None = None) -> list[Instance]:
    """Close the tunnel of the board on ``port`` (all tunnels without a port); boards keep running."""
    port = None if port is None else inputs.port(port)
    closed = []
    for inst in list_instances():
        if inst.tunnel is not None and (port is None or inst.port == port):
            tunnel_lifecycle.stop_helper(inst.tunnel)
            closed.append(inst)
    if port is not None and not closed:
        raise NoSuchBoardError(f"no open tunnel for port {port}", "see tunnels with: nbboard list")
    return closed


def tunnel_urls(port: int | None = None) -> list[tuple[Instance, str]]:
    """Full tunnel URLs (with their secrets) for their owner."""
    from .tunnels import manager

    port = None if port is None else inputs.port(port)
    return [
        (i, manager.full_url(i.tunnel))
        for i in list_instances()
        if i.tunnel is not None and (port is None or i.port == port)
    ]
