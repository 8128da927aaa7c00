"""Launch one TensorBoard, detached and recorded, and wait until it answers.

Expected outcomes are values (``Launched``, ``Failed``, ``ExecFailed``,
``TimedOut``), not exceptions; :mod:`nbboard.api` turns the failures into
errors a user can act on. Whatever the outcome, no process is left behind
unrecorded: the record is written right after ``Popen`` and removed together
with the child on failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from . import idle, liveness, procs, registry, serve, tbinfo
from .registry import BoardRecord

#: "TensorBoard 2.21.0 at http://127.0.0.1:41235/ (Press CTRL+C to quit)"
_SERVING = re.compile(r"TensorBoard (\S+) at https?://\S+?:(\d+)/")


@dataclass(frozen=True)
class Launched:
    record: BoardRecord


@dataclass(frozen=True)
class Failed:
    """TensorBoard exited before answering."""

    exit_code: int | None
    output_tail: str
    log_path: str


@dataclass(frozen=True)
class ExecFailed:
    """The TensorBoard command could not be executed at all."""

    error: OSError
    command: str


@dataclass(frozen=True)
class TimedOut:
    """TensorBoard did not answer in time. It has been stopped."""

    pid: int
    timeout: float
    output_tail: str


LaunchResult = Launched | Failed | ExecFailed | TimedOut


def tensorboard_command() -> list[str] | None:
    """The command that runs TensorBoard, or None if it is not installed.

    ``NBBOARD_TENSORBOARD`` names another executable (a different environment's
    ``tensorboard``); by default the TensorBoard of this very interpreter runs,
    so a kernel's board matches the kernel's packages, through nbboard's entry
    point (:mod:`nbboard.serve`: TensorBoard's own main, plus TCP_NODELAY on
    its data server).
    """
    override = os.environ.get("NBBOARD_TENSORBOARD")
    if override:
        return shlex.split(override, posix=os.name != "nt")
    if importlib.util.find_spec("tensorboard") is None:
        return None
    return serve.command()


#: TensorBoard's plain entry point, for when nbboard's cannot be imported by the board's interpreter.
PLAIN_COMMAND = ["-m", "tensorboard.main"]


def launch(
    command: Sequence[str],
    logdir_args: Sequence[str],
    logdir_display: str,
    extra: Sequence[str],
    *,
    port: int | None,
    cache_key: str,
    timeout: float,
    bind_host: str,
    path_prefix: str = "",
    bind_publicly: bool = False,
    standby: bool = False,
    standby_hook: Callable[[], None] | None = None,
    idle_timeout: float = 0.0,
) -> LaunchResult:
    """Start TensorBoard and wait for its HTTP API.

    With ``port=None`` TensorBoard binds port 0 and the kernel picks a free
    one, which is race-free where "find a free port, then pass it" is not;
    the port is read from TensorBoard's serving line. With ``standby`` a ready
    standby (:mod:`nbboard.standby`) becomes the board when there is one.
    ``idle_timeout`` (seconds, 0 for never) needs nbboard's entry point, which
    enforces it inside the board's process (:mod:`nbboard.idle`).
    """
    args = [*logdir_args, "--port", str(port or 0)]
    if not bind_publicly:
        args += ["--host", bind_host]
    args += list(extra)
    if idle_timeout:
        args.append(idle.flag(idle_timeout))
    template = BoardRecord(
        pid=1,
        port=port or 0,
        logdir=logdir_display,
        host=bind_host if not bind_publicly else "127.0.0.1",
        path_prefix=path_prefix,
        create_time=0.0,
        cache_key=cache_key,
        argv=(),
        start_time=0,
        state="starting",
        idle_timeout=idle_timeout,
    )
    ours = list(command) == serve.command()
    if standby and ours:
        if standby_hook is not None:
            standby_hook()
        result = _launch_from_standby(args, template, timeout)
        if result is not None:
            return result
    result = _launch(command, args, template, timeout)
    if ours and isinstance(result, Failed) and "No module named 'nbboard" in result.output_tail:
        # This interpreter cannot import nbboard on its own (a notebook's sys.path.insert): run TensorBoard plainly.
        registry.remove_log_file(result.log_path)
        plain = dataclasses.replace(
            template, nodelay_note="nbboard.serve is not importable by the board's interpreter", idle_timeout=0.0
        )
        result = _launch([sys.executable, *PLAIN_COMMAND], idle.split_flag(args)[0], plain, timeout)
    return result


def _launch(command: Sequence[str], args: Sequence[str], template: BoardRecord, timeout: float) -> LaunchResult:
    argv = [*command, *args]
    ours = list(command) == serve.command()
    log_path = registry.new_log_path("tb")
    # Another command's TensorBoard writes its info file unsafely: only into a private temp directory (nbboard.tbinfo).
    env = serve.child_env(procs.owner_env()) if ours else tbinfo.private_env(procs.owner_env())
    try:
        child = procs.spawn_detached(argv, log_path, env)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        return ExecFailed(e, argv[0])
    started = time.time()
    try:
        created = psutil.Process(child.pid).create_time()
    except psutil.NoSuchProcess:
        created = started
    record = dataclasses.replace(
        template, pid=child.pid, create_time=created, argv=tuple(argv), start_time=int(started), log_path=log_path
    )
    try:
        record = registry.write(record)
    except Exception:
        # Unrecorded processes are not allowed: stop it before reporting the registry error.
        _discard(child.pid, record, child)
        raise
    return _wait_ready(_PopenExit(child), record, timeout, nodelay_expected=ours)


def _launch_from_standby(args: Sequence[str], template: BoardRecord, timeout: float) -> LaunchResult | None:
    """The board a standby became, or None (nothing done) when no standby took the arguments."""
    from . import standby  # only a launch needs it: a reused board's start stays light

    handoff = standby.take(args, procs.owner_env(), os.getcwd())
    if handoff is None:
        return None
    taken = handoff.record
    record = dataclasses.replace(
        template,
        pid=taken.pid,
        create_time=taken.create_time,
        argv=taken.argv,
        start_time=int(time.time()),
        log_path=taken.log_path,
        from_standby=True,
    )
    try:
        record = registry.write(record)
    except Exception:
        handoff.close()  # unconfirmed: the board stops itself
        _discard(taken.pid, record, None)
        standby.forget(taken)
        raise
    handoff.confirm()
    standby.forget(taken)
    return _wait_ready(_ProcessExit(), record, timeout, nodelay_expected=True)


class _PopenExit:
    """Whether a board we spawned has exited, and its code."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child

    def __call__(self, record: BoardRecord) -> tuple[bool, int | None]:
        code = self.child.poll()
        return code is not None, code


class _ProcessExit:
    """Whether a board made from a standby (not our child: no exit status) has exited; its code from its log."""

    def __call__(self, record: BoardRecord) -> tuple[bool, int | None]:
        if procs.find_launched(record.pid, record.create_time, record.argv)[0] is not None:
            return False, None
        found = re.findall(re.escape(serve.EXIT_PREFIX) + r"(-?\d+)", registry.output_tail(record.log_path))
        return True, int(found[-1]) if found else None


def _wait_ready(exited: Any, record: BoardRecord, timeout: float, nodelay_expected: bool) -> LaunchResult:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        gone, code = exited(record)
        if gone:
            tail = registry.output_tail(record.log_path)
            registry.remove(record)
            return Failed(code, tail, record.log_path)
        if record.port == 0 or not record.version:
            learned = _serving_line(record)
            if learned != record:
                record = registry.write(learned)
        if record.port and liveness.answers(record.port, record.path_prefix, record.host):
            return Launched(registry.write(_with_nodelay(dataclasses.replace(record, state="ready"), nodelay_expected)))
        if time.monotonic() >= deadline:
            tail = registry.output_tail(record.log_path)
            _discard(record.pid, record, getattr(exited, "child", None))
            return TimedOut(record.pid, timeout, tail)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)  # a refused connect costs ~0.1 ms: noticing readiness within 20 ms is cheap


def _with_nodelay(record: BoardRecord, expected: bool) -> BoardRecord:
    """``record`` with what the board said about TCP_NODELAY on its data server (see nbboard.nodelay)."""
    from . import nodelay

    if not expected:
        note = record.nodelay_note or "NBBOARD_TENSORBOARD runs another command than nbboard's entry point"
        return dataclasses.replace(record, nodelay=False, nodelay_note=note)
    outcome = nodelay.parse(registry.output_tail(record.log_path, lines=400))
    if outcome is None:
        return dataclasses.replace(record, nodelay=False, nodelay_note="the board did not report on TCP_NODELAY")
    return dataclasses.replace(record, nodelay=outcome.applied, nodelay_note=outcome.detail)


def _serving_line(record: BoardRecord) -> BoardRecord:
    """``record`` with the version and (for --port 0) the port TensorBoard printed, if it has."""
    match = _SERVING.search(registry.output_tail(record.log_path, lines=200))
    if not match:
        return record
    return dataclasses.replace(record, version=match.group(1), port=record.port or int(match.group(2)))


def learn_port(record: BoardRecord) -> BoardRecord:
    """Fill in the port (and version) of a record whose starter died before reading them.

    With ``--port 0`` only TensorBoard's serving line tells the port; a starter
    killed before it read that line leaves a record with port 0 that no probe
    could ever reach. Whoever finds such a record reads the line instead.
    """
    if record.port and record.version:
        return record
    learned = _serving_line(record)
    if learned == record:
        return record
    with contextlib.suppress(ValueError, OSError):
        current = registry.read_board(Path(record.path))
        if current.port and current.version:
            return current  # its starter is alive and got there first
    return registry.write(learned)


def _discard(pid: int, record: BoardRecord, child: subprocess.Popen[bytes] | None) -> None:
    """Stop a board that failed to become ready, and forget it: no unrecorded process, no record."""
    proc = procs.find_launched(pid, record.create_time, record.argv)[0] if child is None else None
    with contextlib.suppress(psutil.NoSuchProcess):
        if child is not None:
            procs.terminate_tree(psutil.Process(pid), grace=2.0)
        elif proc is not None:
            procs.terminate_tree(proc, grace=2.0)
    with contextlib.suppress(Exception):
        if child is not None:
            child.wait(timeout=1)
    registry.remove(record)
    registry.remove_log_file(record.log_path)
