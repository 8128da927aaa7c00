"""nbboard's one public API: start, list, kill (and tunnel, display).

The CLI and the ``%board`` magic are thin skins over these functions. They
raise :class:`~nbboard.errors.NbboardError` subclasses for everything a user
can get wrong, with the fix in the message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

from . import launcher, liveness, logdirs, procs, registry
from .config import BoardConfig, get_default
from .errors import (
    NbboardError,
    NoSuchBoardError,
    PortInUseError,
    StartFailedError,
    StartTimedOutError,
    TensorBoardNotInstalledError,
    UsageError,
)
from .registry import SOURCE_NBBOARD, SOURCE_TENSORBOARD, Instance, Skipped
from .tunnels import lifecycle as tunnel_lifecycle


@dataclass(frozen=True)
class Scan:
    """Every instance of this user, checked, plus the registry files that were skipped."""

    instances: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]
    pruned: tuple[Instance, ...] = ()


@dataclass(frozen=True)
class KillReport:
    """What ``kill`` did: boards it stopped, stale records it removed, files it left alone."""

    stopped: tuple[Instance, ...] = ()
    cleaned: tuple[Instance, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    removed_logs: int = 0


@dataclass
class _Checked:
    instance: Instance
    proc: psutil.Process | None = field(default=None)


# ---------------------------------------------------------------------------
# start


def start(
    logdir: str | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float | None = None,
    restart: bool = False,
    *,
    logdir_spec: str | None = None,
    config: BoardConfig | None = None,
) -> Instance:
    """Start a TensorBoard for ``logdir``, or return the live one already serving it.

    The returned Instance has ``reused=True`` when nothing was launched. A
    record whose process died, or whose pid now belongs to another program,
    is never reused: it is dropped and a fresh board starts. Concurrent calls
    for one logdir (from several processes) launch it once.
    """
    cfg = config or get_default()
    timeout = cfg.start_timeout if timeout is None else timeout
    port = validate_port(port)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}", "e.g. --timeout 60")
    target = logdirs.resolve(logdir, logdir_spec)
    extra = logdirs.normalise_extra(extra_args)
    command = launcher.tensorboard_command()
    if command is None:
        raise TensorBoardNotInstalledError()
    key = logdirs.cache_key(target, extra)
    registry.ensure_home()
    with registry.lock(key, timeout=timeout + 30):
        reusable, old_port = _settle_existing(key, port, restart, timeout)
        if reusable is not None:
            return reusable
        if port is None and restart and old_port:
            port = old_port  # keep open browser tabs working after --restart
        if port is not None:
            _ensure_port_free(port)
        result = launcher.launch(
            command,
            target.args,
            target.display,
            extra,
            port=port,
            cache_key=key,
            timeout=float(timeout),
            bind_host=cfg.bind_host,
            path_prefix=logdirs.flag_value(extra, "--path_prefix") or "",
            bind_publicly=logdirs.binds_publicly(extra),
        )
    return _launch_outcome(result, port)


def validate_port(port: object) -> int | None:
    """``port`` as an int in 1..65535, or None; a clear error otherwise."""
    if port is None:
        return None
    try:
        value = int(str(port).strip())
    except ValueError:
        raise UsageError(f"invalid port {port!r}: expected a number from 1 to 65535", "e.g. --port 6006") from None
    if not 1 <= value <= 65535:
        raise UsageError(f"invalid port {value}: expected a number from 1 to 65535", "e.g. --port 6006")
    return value


def _settle_existing(key: str, port: int | None, restart: bool, timeout: float) -> tuple[Instance | None, int]:
    """Reuse a live board with ``key``; stop or drop the rest. Returns (reusable, old port)."""
    records, _ = registry.read_all()
    old_port = 0
    for record in records:
        if record.cache_key != key:
            continue
        checked, proc = liveness.check(record, start_timeout=timeout)
        if checked.status == "starting" and not restart:
            checked, proc = _wait_for_other_start(checked, timeout)
        if checked.status == "running" and not restart and (port is None or port == checked.port):
            return dataclasses.replace(checked, reused=True), 0
        if checked.status == "running" and not restart:
            continue  # same logdir on another port: a separate board the user asked for
        old_port = checked.port
        _stop_and_forget(checked, proc)
    return None, old_port


def _wait_for_other_start(instance: Instance, timeout: float) -> tuple[Instance, psutil.Process | None]:
    """A record still "starting" whose starter died (we hold its lock): give it its time."""
    deadline = instance.start_time + timeout
    while True:
        instance = launcher.learn_port(instance)
        checked, proc = liveness.check(instance, start_timeout=timeout)
        if checked.status != "starting" or time.time() > deadline:
            return checked, proc
        time.sleep(0.05)


def _ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        in_use = s.connect_ex(("127.0.0.1", port)) == 0
    if in_use:
        raise PortInUseError(port, _port_owner(port))


def _port_owner(port: int) -> str:
    records, _ = registry.read_all()
    for record in records:
        if record.port == port:
            return f"nbboard's board for {record.logdir} (pid {record.pid}; stop it with: nbboard kill --port {port})"
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    return ""


def _launch_outcome(result: launcher.LaunchResult, port: int | None) -> Instance:
    if isinstance(result, launcher.Launched):
        return result.instance
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


def scan(prune: bool = True) -> Scan:
    """Check every record of both registries.

    With ``prune``, nbboard records whose process is gone (or whose pid now
    belongs to another program) are deleted. Records of ``%tensorboard``'s
    registry are only reported; ``kill`` cleans them.
    """
    return _scan(prune)[0]


def _scan(prune: bool) -> tuple[Scan, list[_Checked]]:
    records, skipped = registry.read_all()
    tb_records, tb_skipped = registry.read_tensorboard_registry()
    ours = {r.pid for r in records}
    checked: list[_Checked] = []
    pruned: list[Instance] = []
    tunnels, tunnel_skipped = registry.read_tunnels()
    for record in records + [r for r in tb_records if r.pid not in ours]:
        if record.state == "starting" and record.source == SOURCE_NBBOARD:
            record = launcher.learn_port(record)
        inst, proc = liveness.check(record)
        tunnel = tunnels.pop(inst.pid, None)
        if tunnel is not None and proc is not None and tunnel_lifecycle.helper_process(tunnel) is not None:
            inst = dataclasses.replace(inst, tunnel=tunnel)
        elif tunnel is not None:
            tunnel_lifecycle.stop_helper(tunnel)  # its helper or its board is gone
        if prune and inst.source == SOURCE_NBBOARD and inst.status == "stale" and proc is None:
            _forget(inst)
            pruned.append(inst)
            continue
        checked.append(_Checked(inst, proc))
    for orphan in tunnels.values():  # a tunnel whose board has no record any more
        tunnel_lifecycle.stop_helper(orphan)
    skipped += tunnel_skipped
    checked.sort(key=lambda c: (c.instance.start_time, c.instance.pid))
    found = Scan(tuple(c.instance for c in checked), tuple(skipped + tb_skipped), tuple(pruned))
    return found, checked


def list_instances() -> list[Instance]:
    """Every TensorBoard of this user: nbboard's and ``%tensorboard``'s, stale ones marked."""
    return list(scan().instances)


def newest_running() -> Instance | None:
    running = [i for i in list_instances() if i.status == "running"]
    return running[-1] if running else None


# ---------------------------------------------------------------------------
# kill


def kill(port: int | None = None, pid: int | None = None, logdir: str | None = None) -> KillReport:
    """Stop boards and clear stale records.

    With no selector: every board of this user (nbboard's and
    ``%tensorboard``'s) is stopped and every stale record of both registries
    removed. A process is signalled only when its record proves it is that
    TensorBoard; a record pointing at a reused pid is dropped, the process
    left alone. Raises NoSuchBoardError when a selector matches nothing.
    """
    port = validate_port(port)
    if pid is not None:
        try:
            pid = int(pid)
        except (TypeError, ValueError):
            raise UsageError(f"invalid pid {pid!r}: expected a number", "see the PID column of: nbboard list") from None
    selected_logdir = logdirs.resolve(logdir).display if logdir is not None else None
    found, checked = _scan(prune=False)
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
        _forget(c.instance)
    if everything:
        stopped += _stop_unrecorded()
    removed_logs = _remove_orphan_logs() if everything else 0
    return KillReport(tuple(stopped), tuple(cleaned), found.skipped, removed_logs)


def _stop_unrecorded() -> list[Instance]:
    """Processes this registry started whose record was never written (their starter died in between)."""
    records, _ = registry.read_all()
    tunnels, _ = registry.read_tunnels()
    known = {r.pid for r in records} | {t.helper_pid for t in tunnels.values()}
    strays = procs.tagged(launcher.OWNER_VAR, launcher.owner_tag(), known)
    # Only the roots: a stray's own children (TensorBoard's data server) go with it.
    stray_pids = {p.pid for p in strays}
    roots = [p for p in strays if _parent_pid(p) not in stray_pids | known]
    procs.terminate_trees(roots)
    return [Instance(pid=p.pid, port=0, logdir="(unrecorded)", source=SOURCE_NBBOARD, status="stopped") for p in roots]


def _parent_pid(proc: psutil.Process) -> int:
    try:
        return proc.ppid()
    except psutil.Error:
        return 0


def _stop_and_forget(instance: Instance, proc: psutil.Process | None) -> None:
    if proc is not None:
        procs.terminate_tree(proc)
    _forget(instance)


def _forget(instance: Instance) -> None:
    """Remove every trace of a board that is gone: record, log, tunnel, TensorBoard's info file."""
    if instance.tunnel is not None:
        tunnel_lifecycle.stop_helper(instance.tunnel)
        launcher.remove_log_file(instance.tunnel.log_path)
    registry.remove(instance)
    if instance.source == SOURCE_NBBOARD:
        launcher.remove_log_file(instance.log_path)
        tb_info = registry.tensorboard_info_dir() / f"pid-{instance.pid}.info"
        if not psutil.pid_exists(instance.pid) or liveness.owner(instance)[0] is None:
            with contextlib.suppress(OSError):
                if tb_info.is_file() and not tb_info.is_symlink():
                    tb_info.unlink()


def _remove_orphan_logs() -> int:
    records, _ = registry.read_all()
    tunnels, _ = registry.read_tunnels()
    in_use = {r.log_path for r in records} | {t.log_path for t in tunnels.values()}
    removed = 0
    recent = time.time() - 30  # a start in another process may not have written its record yet
    for path in registry.logs_dir().glob("*.log"):
        if str(path) not in in_use and not path.is_symlink() and path.stat().st_mtime < recent:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


__all__ = [
    "Instance",
    "KillReport",
    "Scan",
    "SOURCE_NBBOARD",
    "SOURCE_TENSORBOARD",
    "kill",
    "list_instances",
    "newest_running",
    "scan",
    "start",
    "tunnel",
    "close_tunnels",
    "tunnel_urls",
]


# ---------------------------------------------------------------------------
# tunnel


def tunnel(
    logdir: str | None = None,
    port: int | None = None,
    provider: str | None = None,
    *,
    host: str | None = None,
    auth: bool = True,
    ttl: float | str | None = None,
    timeout: float = 30.0,
    extra_args: Sequence[str] = (),
    config: BoardConfig | None = None,
):  # type: ignore[no-untyped-def]
    """Open a public tunnel to a board: ``logdir`` starts or reuses it, ``port`` picks a running one.

    Returns a TunnelResult whose ``url`` carries the secret. The tunnel goes
    through nbboard's authenticating gate unless ``auth=False``. Reuses a live
    tunnel of the same board.
    """
    from .tunnels import manager

    cfg = config or get_default()
    seconds = manager.parse_ttl(ttl)
    port = validate_port(port)
    if logdir is not None:
        board = start(logdir, extra_args=extra_args, config=cfg)
        board = next((i for i in list_instances() if i.pid == board.pid), board)
    else:
        board = _running_board(port)
    return manager.open_tunnel(
        board, provider or cfg.tunnel_provider, host=host, auth=auth, ttl=seconds, timeout=timeout
    )


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
    port = validate_port(port)
    closed = []
    for inst in list_instances():
        if inst.tunnel is not None and (port is None or inst.port == port):
            tunnel_lifecycle.stop_helper(inst.tunnel)
            launcher.remove_log_file(inst.tunnel.log_path)
            closed.append(inst)
    if port is not None and not closed:
        raise NoSuchBoardError(f"no open tunnel for port {port}", "see tunnels with: nbboard list")
    return closed


def tunnel_urls(port: int | None = None) -> list[tuple[Instance, str]]:
    """Full tunnel URLs (with their secrets) for their owner."""
    from .tunnels import manager

    port = validate_port(port)
    return [
        (i, manager.full_url(i.tunnel))
        for i in list_instances()
        if i.tunnel is not None and (port is None or i.port == port)
    ]


# ---------------------------------------------------------------------------
# display


def display(instance: Instance | None = None, height: int = 800) -> object:
    """Show ``instance`` (default: the newest running board) inline, or print its URL in a terminal."""
    from . import embed

    if instance is None:
        instance = newest_running()
        if instance is None:
            raise NoSuchBoardError(
                "no TensorBoard is running", "start one with nbboard.start('logs') or %board --logdir logs"
            )
    return embed.show(instance, height)
