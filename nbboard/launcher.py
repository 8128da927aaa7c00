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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import liveness, procs, registry
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
    so a kernel's board matches the kernel's packages.
    """
    override = os.environ.get("NBBOARD_TENSORBOARD")
    if override:
        return shlex.split(override, posix=os.name != "nt")
    if importlib.util.find_spec("tensorboard") is None:
        return None
    return [sys.executable, "-m", "tensorboard.main"]


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
) -> LaunchResult:
    """Start TensorBoard and wait for its HTTP API.

    With ``port=None`` TensorBoard binds port 0 and the kernel picks a free
    one, which is race-free where "find a free port, then pass it" is not;
    the port is read from TensorBoard's serving line.
    """
    argv = [*command, *logdir_args, "--port", str(port or 0)]
    if not bind_publicly:
        argv += ["--host", bind_host]
    argv += list(extra)
    log_path = registry.new_log_path("tb")
    try:
        child = procs.spawn_detached(argv, log_path, procs.owner_env())
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        return ExecFailed(e, argv[0])
    started = time.time()
    try:
        created = psutil.Process(child.pid).create_time()
    except psutil.NoSuchProcess:
        created = started
    record = BoardRecord(
        pid=child.pid,
        port=port or 0,
        logdir=logdir_display,
        host=bind_host if not bind_publicly else "127.0.0.1",
        path_prefix=path_prefix,
        create_time=created,
        cache_key=cache_key,
        argv=tuple(argv),
        start_time=int(started),
        log_path=log_path,
        state="starting",
    )
    try:
        record = registry.write(record)
    except Exception:
        # Unrecorded processes are not allowed: stop it before reporting the registry error.
        _discard(child, record)
        raise
    return _wait_ready(child, record, timeout)


def _wait_ready(child: subprocess.Popen[bytes], record: BoardRecord, timeout: float) -> LaunchResult:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        code = child.poll()
        if code is not None:
            tail = registry.output_tail(record.log_path)
            registry.remove(record)
            return Failed(code, tail, record.log_path)
        if record.port == 0 or not record.version:
            learned = _serving_line(record)
            if learned != record:
                record = registry.write(learned)
        if record.port and liveness.answers(record.port, record.path_prefix, record.host):
            return Launched(registry.write(dataclasses.replace(record, state="ready")))
        if time.monotonic() >= deadline:
            tail = registry.output_tail(record.log_path)
            _discard(child, record)
            return TimedOut(record.pid, timeout, tail)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)  # a refused connect costs ~0.1 ms: noticing readiness within 20 ms is cheap


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
        current = registry.decode(BoardRecord, registry.read_trusted_json(Path(record.path)), record.path)
        if current.port and current.version:
            return current  # its starter is alive and got there first
    return registry.write(learned)


def _discard(child: subprocess.Popen[bytes], record: BoardRecord) -> None:
    """Stop a board that failed to become ready, and forget it: no unrecorded process, no record."""
    with contextlib.suppress(psutil.NoSuchProcess):
        procs.terminate_tree(psutil.Process(child.pid), grace=2.0)
    with contextlib.suppress(Exception):
        child.wait(timeout=1)
    registry.remove(record)
    registry.remove_log_file(record.log_path)
