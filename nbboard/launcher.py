"""Launch one TensorBoard, detached and recorded, and wait until it answers.

The board tells the launcher its port, version, TCP_NODELAY outcome and exit
code in one status file (:mod:`nbboard.registry.status`); its log is for
people. Expected outcomes are values (``Launched``, ``Failed``, ``ExecFailed``,
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

#: "TensorBoard 2.21.0 at http://127.0.0.1:41235/ (Press CTRL+C to quit)": how a board that writes no status
#: file tells its port (see :func:`learned`).
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


@dataclass(frozen=True)
class LaunchSpec:
    """One board to launch: the command, its logdir and flags, and where and how long it may take to serve.

    Attributes:
      command: what runs TensorBoard (:func:`tensorboard_command`).
      logdir_args / logdir_display: TensorBoard's logdir arguments, and the logdir as the user named it.
      extra: further TensorBoard flags, normalised (:func:`nbboard.logdirs.normalise_extra`).
      cache_key: the reuse key recorded with the board.
      timeout: seconds to wait for its HTTP API.
      bind_host: where it listens, unless ``bind_publicly`` (the user's own ``--bind_all``/``--host``).
      port: None for a port the kernel picks (race-free, read back from the board).
      path_prefix: its ``--path_prefix``, for the probe.
      standby: a ready standby (:mod:`nbboard.standby`) may become the board.
      idle_timeout: seconds without a request before the board stops itself (0: never).
    """

    command: tuple[str, ...]
    logdir_args: tuple[str, ...]
    logdir_display: str
    extra: tuple[str, ...]
    cache_key: str
    timeout: float
    bind_host: str
    port: int | None = None
    path_prefix: str = ""
    bind_publicly: bool = False
    standby: bool = False
    idle_timeout: float = 0.0

    def args(self) -> list[str]:
        """TensorBoard's arguments (no program name)."""
        args = [*self.logdir_args, "--port", str(self.port or 0)]
        if not self.bind_publicly:
            args += ["--host", self.bind_host]
        args += list(self.extra)
        if self.idle_timeout:
            args.append(idle.flag(self.idle_timeout))
        return args

    def template(self) -> BoardRecord:
        """The board's record, short of what only the launch tells (pid, creation time, argv, log)."""
        return BoardRecord(
            pid=1,
            port=self.port or 0,
            logdir=self.logdir_display,
            host=self.bind_host if not self.bind_publicly else "127.0.0.1",
            path_prefix=self.path_prefix,
            create_time=0.0,
            cache_key=self.cache_key,
            argv=(),
            start_time=0,
            state="starting",
            idle_timeout=self.idle_timeout,
        )


def launch(spec: LaunchSpec, standby_hook: Callable[[], None] | None = None) -> LaunchResult:
    """Start TensorBoard and wait for its HTTP API.

    With ``spec.port=None`` TensorBoard binds port 0 and the kernel picks a
    free one, which is race-free where "find a free port, then pass it" is
    not; the board reports the port it got (:func:`learned`). With
    ``spec.standby`` a ready standby becomes the board when there is one;
    ``standby_hook`` is called before looking for it. ``spec.idle_timeout``
    needs nbboard's entry point, which enforces it inside the board's process
    (:mod:`nbboard.idle`).
    """
    args = spec.args()
    template = spec.template()
    ours = list(spec.command) == serve.command()
    if spec.standby and ours:
        if standby_hook is not None:
            standby_hook()
        result = _launch_from_standby(args, template, spec.timeout)
        if result is not None:
            return result
    result = _launch(spec.command, args, template, spec.timeout)
    if ours and isinstance(result, Failed) and "No module named 'nbboard" in result.output_tail:
        # This interpreter cannot import nbboard on its own (a notebook's sys.path.insert): run TensorBoard plainly.
        registry.remove_log_file(result.log_path)
        plain = dataclasses.replace(
            template, nodelay_note="nbboard.serve is not importable by the board's interpreter", idle_timeout=0.0
        )
        result = _launch([sys.executable, *PLAIN_COMMAND], idle.split_flag(args)[0], plain, spec.timeout)
    return result


def _launch(command: Sequence[str], args: Sequence[str], template: BoardRecord, timeout: float) -> LaunchResult:
    argv = [*command, *args]
    ours = list(command) == serve.command()
    log_path = registry.new_log_path("tb")
    # Another command's TensorBoard writes its info file unsafely: only into a private temp directory (nbboard.tbinfo).
    env = serve.child_env(procs.owner_env()) if ours else tbinfo.private_env(procs.owner_env())
    if ours:
        env[serve.STATUS_VAR] = registry.status_id(log_path)  # where the board reports (nbboard.registry.status)
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
        template,
        pid=child.pid,
        create_time=created,
        argv=tuple(argv),
        start_time=int(started),
        log_path=log_path,
        reports_status=ours,
    )
    try:
        record = registry.write(record)
    except Exception:
        # Unrecorded processes are not allowed: stop it before reporting the registry error.
        _discard(child.pid, record, child)
        raise
    return _wait_ready(_PopenExit(child), record, timeout)


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
        reports_status=True,
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
    return _wait_ready(_ProcessExit(), record, timeout)


class _PopenExit:
    """Whether a board we spawned has exited, and its code."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child

    def __call__(self, record: BoardRecord) -> tuple[bool, int | None]:
        code = self.child.poll()
        return code is not None, code


class _ProcessExit:
    """Whether a board made from a standby (not our child: no exit status) has exited; its code as it reported it."""

    def __call__(self, record: BoardRecord) -> tuple[bool, int | None]:
        if procs.find_launched(record.pid, record.create_time, record.argv)[0] is not None:
            return False, None
        status = _status(record)
        return True, status.exit_code if status is not None and status.exited else None


def _wait_ready(exited: Any, record: BoardRecord, timeout: float) -> LaunchResult:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        gone, code = exited(record)
        if gone:
            tail = registry.output_tail(record.log_path)
            status = _status(record)
            if status is not None and status.exit_reason and status.exit_reason not in tail:
                tail += f"\n{status.exit_reason}"  # what it said before its last lines, e.g. a flood of warnings
            registry.remove(record)
            registry.remove_status(registry.status_id(record.log_path))  # the log stays, for the user to read
            return Failed(code, tail, record.log_path)
        if record.port == 0 or not record.version:
            found = learned(record)
            if found != record:
                record = registry.write(found)
        if record.port and liveness.answers(record.port, record.path_prefix, record.host):
            return Launched(registry.write(_with_nodelay(dataclasses.replace(record, state="ready"))))
        if time.monotonic() >= deadline:
            tail = registry.output_tail(record.log_path)
            _discard(record.pid, record, getattr(exited, "child", None))
            return TimedOut(record.pid, timeout, tail)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)  # a refused connect costs ~0.1 ms: noticing readiness within 20 ms is cheap


def _status(record: BoardRecord) -> registry.BoardStatus | None:
    """What the board reported in its status file (None if nothing yet, or it reports none)."""
    if not record.reports_status:
        return None
    return registry.read_status(registry.status_id(record.log_path), record.pid)


def _with_nodelay(record: BoardRecord) -> BoardRecord:
    """``record`` with what the board said about TCP_NODELAY on its data server (see nbboard.nodelay)."""
    if not record.reports_status:
        note = record.nodelay_note or "NBBOARD_TENSORBOARD runs another command than nbboard's entry point"
        return dataclasses.replace(record, nodelay=False, nodelay_note=note)
    status = _status(record)
    if status is None or not status.nodelay_note:
        return dataclasses.replace(record, nodelay=False, nodelay_note="the board did not report on TCP_NODELAY")
    return dataclasses.replace(record, nodelay=status.nodelay, nodelay_note=status.nodelay_note)


def learned(record: BoardRecord) -> BoardRecord:
    """``record`` with the version and (for ``--port 0``) the port its board has told, if it has. Writes nothing.

    A board run by nbboard's entry point tells them in its status file
    (:mod:`nbboard.registry.status`). Another command (``NBBOARD_TENSORBOARD``,
    TensorBoard's plain entry point when nbboard cannot be imported, a board
    of an nbboard before status files) writes none: for those alone the
    serving line TensorBoard prints into the log is read, the only place such
    a TensorBoard tells the port it got.
    """
    if record.port and record.version:
        return record
    if record.reports_status:
        status = _status(record)
        if status is None or not status.port:
            return record
        version, port = status.version, status.port
    else:
        match = _SERVING.search(registry.output_tail(record.log_path, lines=200))
        if not match:
            return record
        version, port = match.group(1), int(match.group(2))
    return dataclasses.replace(record, version=version, port=record.port or port)


def learn_port(record: BoardRecord) -> BoardRecord:
    """:func:`learned`, recorded: for a record whose starter died before it read the port.

    With ``--port 0`` only the board tells the port; a starter killed before
    it read it leaves a record with port 0 that no probe could ever reach.
    Whoever may write (a start, a kill) records what the board told instead.
    """
    found = learned(record)
    if found == record:
        return record
    with contextlib.suppress(ValueError, OSError):
        current = registry.read_board(Path(record.path))
        if current.port and current.version:
            return current  # its starter is alive and got there first
    return registry.write(found)


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
