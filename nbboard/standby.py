"""The standby: an interpreter with TensorBoard already imported, that becomes the next board.

Most of a cold start (~0.7 s of ~1 s here) is TensorBoard importing itself and
compressing its web assets, none of which depends on the logdir. A standby
pays for that in the background, so the next start only hands it arguments.

Its life:

- :func:`ensure` spawns ``python -m nbboard.standby`` detached
  and records it at once (state "starting"); a fresh key goes into a 0600 file
  and reaches the process on its stdin, never on argv or in its environment.
- The standby imports TensorBoard, listens on 127.0.0.1 (port 0) and records
  itself "ready" with its port.
- :func:`take`: a start proves it holds the key and the standby proves it
  does too (HMAC over fresh nonces, both ways) before the start sends
  TensorBoard's arguments, environment and working directory (the protocol:
  :mod:`nbboard.handoff`). The standby stops listening and runs that board
  (:func:`nbboard.serve.run_tensorboard`) in its own process, which reports
  to its starter like any board (:mod:`nbboard.registry.status`); one
  hand-off per standby.
- The start records the board (pid, creation time and the standby's own
  command line, which names no logdir) and confirms; a hand-off nobody
  confirms within a minute stops itself, so no board runs unrecorded.
- Unused, it exits after ``idle_timeout``; ``nbboard kill`` stops it; a record
  whose process is gone, or whose pid now belongs to another program, is
  dropped and never used.

Off with ``BoardConfig(standby=False)``, ``c.BoardMagics.standby = False`` or
``NBBOARD_STANDBY=0``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psutil

from . import __version__, handoff, procs, registry, serve
from .config import BoardConfig, standby_wanted
from .registry import StandbyRecord

#: A standby this close to its idle exit is left alone.
IDLE_MARGIN = 5.0
#: A start waits for a standby still importing TensorBoard if it was spawned less than this many seconds ago.
STARTING_WAIT = 10.0
#: A standby still importing after this many seconds is broken: ensure() replaces it.
STARTING_LIMIT = 60.0
STARTING = "still importing TensorBoard"


# ---------------------------------------------------------------------------
# The starter's side


def enabled(config: BoardConfig) -> bool:
    """May a standby be started or used? (See :func:`nbboard.config.standby_wanted`.)"""
    return standby_wanted(config)


def ensure(config: BoardConfig) -> StandbyRecord | None:
    """Start a standby unless one is alive (ready or still importing); returns it, or None if off.

    Runs in a background thread of the kernel: never raises.
    """
    try:
        if not enabled(config):
            return None
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            return None
        registry.ensure_home()
        with registry.lock("standby", timeout=30):
            for record, proc in _live():
                if record.state == "ready" or time.time() < record.start_time + STARTING_LIMIT:
                    return record
                procs.terminate_tree(proc)  # stuck importing for a minute: replace it
                _discard(record)
            return _spawn(config.standby_idle)
    except Exception:  # noqa: BLE001 - a standby is an optimisation; the next start simply runs cold
        return None


def _spawn(idle: float) -> StandbyRecord:
    key = secrets.token_hex(32)
    key_file = registry.ensure_home() / "secrets" / f"standby-{uuid.uuid4().hex[:12]}.key"
    registry.write_private(key_file, key)
    log_path = registry.new_log_path("tb")
    argv = [sys.executable, "-m", "nbboard.standby", "--idle", f"{idle:g}"]
    try:
        child = procs.spawn_detached(argv, log_path, serve.child_env(procs.owner_env()), stdin=subprocess.PIPE)
    except OSError:
        with contextlib.suppress(OSError):
            key_file.unlink()
        registry.remove_log_file(log_path)
        raise
    try:
        created = procs.create_time(child.pid)
    except Exception:  # noqa: BLE001 - it died at once: its record never proves a process, and is collected
        created = 0.0
    record = StandbyRecord(
        pid=child.pid,
        create_time=created,
        argv=tuple(argv),
        python=sys.executable,
        version=__version__,
        start_time=int(time.time()),
        idle_timeout=idle,
        secret_file=str(key_file),
        log_path=log_path,
    )
    try:
        record = registry.write_standby(record)
        assert child.stdin is not None
        child.stdin.write(key.encode() + b"\n")  # only after the record exists: the standby updates it
        child.stdin.close()
    except Exception:
        with contextlib.suppress(Exception):
            procs.terminate_tree(psutil.Process(child.pid))
        _discard(record)
        raise
    return record


def _live(any_interpreter: bool = False) -> list[tuple[StandbyRecord, psutil.Process]]:
    """Standby records whose process is the recorded one (ready or starting), newest first; only this
    interpreter's and nbboard's unless ``any_interpreter``. Another interpreter's standby is left alone:
    it serves its own starts."""
    records, _ = registry.read_standbys()
    alive = []
    mine = [r for r in records if any_interpreter or (r.python == sys.executable and r.version == __version__)]
    for record in sorted(mine, key=lambda r: r.start_time, reverse=True):
        proc = procs.find_launched(record.pid, record.create_time, record.argv)[0]
        if proc is not None:
            alive.append((record, proc))
    return alive


def running() -> tuple[StandbyRecord, ...]:
    """Standbys of this registry whose process is the recorded one (any interpreter), for ``list``."""
    return tuple(record for record, _ in _live(any_interpreter=True))


def usable(record: StandbyRecord) -> str:
    """Why this start may not use ``record`` ("" if it may; :data:`STARTING` if it may soon)."""
    if record.state != "ready" or not record.port:
        return STARTING
    if record.python != sys.executable:
        return f"runs {record.python}, not {sys.executable}"
    if record.version != __version__:
        return f"spawned by nbboard {record.version}"
    if time.time() > record.start_time + record.idle_timeout - IDLE_MARGIN:
        return "about to exit idle"
    proc, why = procs.find_launched(record.pid, record.create_time, record.argv)
    return why if proc is None else ""


def take(args: Sequence[str], env: dict[str, str], cwd: str) -> handoff.Handoff | None:
    """Hand TensorBoard's ``args`` to a ready standby; None (and no side effect) if there is none.

    A standby still importing TensorBoard (a start right after ``%load_ext``)
    is waited for: it is ready sooner than a cold start would be, and a cold
    start beside it would share the CPU with it. The caller records the board
    (pid, create_time and argv of the returned record) and then calls
    :meth:`nbboard.handoff.Handoff.confirm`.
    """
    payload = json.dumps({"args": list(args), "env": env, "cwd": cwd})
    tried: set[int] = set()
    while True:
        try:
            records, _ = registry.read_standbys()
        except Exception:  # noqa: BLE001 - an unreadable registry is reported by the start itself
            return None
        pending = False
        for record in sorted(records, key=lambda r: r.start_time, reverse=True):
            if record.pid in tried:
                continue
            why = usable(record)
            if why == STARTING:
                pending = pending or _worth_waiting_for(record)
                continue
            tried.add(record.pid)
            if why:
                continue
            key = _read_key(record.secret_file)
            sock = handoff.connect(record.port, key, payload) if key else None
            if sock is not None:
                return handoff.Handoff(record, sock)
        if not pending:
            return None
        time.sleep(0.01)


def _worth_waiting_for(record: StandbyRecord) -> bool:
    """A standby still importing, spawned recently enough to be ready before a cold start would be."""
    if time.time() > record.start_time + STARTING_WAIT:
        return False
    return procs.find_launched(record.pid, record.create_time, record.argv)[0] is not None


def _discard(record: StandbyRecord) -> None:
    """Drop a standby that will never be a board: its record, its key file and its log."""
    registry.remove_standby(record)
    registry.remove_log_file(record.log_path)


def forget(record: StandbyRecord) -> None:
    """Drop a standby's record and key once its process is a recorded board (or gone)."""
    registry.remove_standby(record)


def _read_key(path: str) -> str:
    """The key in a 0600 file of ours (no symlink, no other owner), "" if it is not one."""
    if not path:
        return ""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return ""
    try:
        st = os.fstat(fd)
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            return ""
        return os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# kill and garbage


def clear() -> list[StandbyRecord]:
    """Stop every standby of this registry and drop every standby record; returns those stopped."""
    records, _ = registry.read_standbys()
    stopped = []
    alive = []
    for record in records:
        proc, _ = procs.find_launched(record.pid, record.create_time, record.argv)
        if proc is not None:
            alive.append(proc)
            stopped.append(record)
    procs.terminate_trees(alive)
    for record in records:
        _discard(record)
    return stopped


def collect_garbage() -> None:
    """Drop records of standbys that are gone, or whose pid now belongs to another program."""
    with contextlib.suppress(Exception):
        records, _ = registry.read_standbys()
        for record in records:
            if procs.find_launched(record.pid, record.create_time, record.argv)[0] is None:
                _discard(record)


# ---------------------------------------------------------------------------
# The standby's side (runs in ``python -m nbboard.standby``)


def run(args: Sequence[str]) -> int:
    """Import TensorBoard, wait for one hand-off (or the idle timeout), then run that board."""
    idle = float(args[args.index("--idle") + 1]) if "--idle" in args else 600.0
    program = serve.prepare(warm=True)
    key = sys.stdin.readline().strip()  # written by the spawner once it has recorded this process
    path = registry.standby_path(os.getpid())
    try:
        mine = registry.decode(StandbyRecord, registry.read_trusted_json(path), str(path))
    except ValueError:
        return 0  # the spawner died before recording this process: nobody may use it
    if not key:
        return 0
    door = handoff.Door(key)
    deadline = time.monotonic() + idle  # idle from the moment it is ready
    with socket.create_server(("127.0.0.1", 0)) as listener:
        registry.write_standby(dataclasses.replace(mine, state="ready", port=listener.getsockname()[1]))
        if not door.wait(listener, deadline):
            _discard(mine)
            return 0
    assert door.job is not None and door.conn is not None
    handoff.await_confirmation(door.conn)
    _become(door.job)
    os.environ[serve.STATUS_VAR] = registry.status_id(mine.log_path)  # this log is the board's: so is its status
    return serve.run_tensorboard(door.job["args"], program)


def _become(job: dict[str, Any]) -> None:
    """Take the starter's environment and working directory, as a freshly launched board would have."""
    import tempfile

    os.environ.clear()
    os.environ.update(job["env"])
    tempfile.tempdir = None  # gettempdir() caches; TensorBoard's info file follows TMPDIR
    with contextlib.suppress(OSError):
        os.chdir(job["cwd"])


if __name__ == "__main__":
    from nbboard import standby  # the importable module, not this __main__ copy

    sys.exit(standby.run(sys.argv[1:]))
