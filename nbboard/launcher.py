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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import liveness, procs, registry
from .registry import Instance

#: "TensorBoard 2.21.0 at http://127.0.0.1:41235/ (Press CTRL+C to quit)"
_SERVING = re.compile(r"TensorBoard (\S+) at https?://\S+?:(\d+)/")
_TAIL_LINES = 15


@dataclass(frozen=True)
class Launched:
    instance: Instance


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


def output_tail(log_path: str, lines: int = _TAIL_LINES) -> str:
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def new_log_path(kind: str) -> str:
    return str(registry.logs_dir() / f"{kind}-{uuid.uuid4().hex[:12]}.log")


def spawn_detached(argv: Sequence[str], log_path: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached, its stdout and stderr in a new 0600 log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            close_fds=True,
            env=env,
            **detached_popen_kwargs(),  # type: ignore[arg-type]
        )
    finally:
        os.close(fd)


OWNER_VAR = "NBBOARD_OWNER"


def owner_tag() -> str:
    """Marks processes this registry started, in their environment.

    A starter killed between ``Popen`` and writing the record (a window of a
    millisecond) would leave an unrecorded TensorBoard; ``kill`` finds such
    processes by this tag. The tag names the registry, not a secret.
    """
    import hashlib

    return hashlib.sha256(str(registry.ensure_home()).encode()).hexdigest()[:16]


def owner_env() -> dict[str, str]:
    return {**os.environ, OWNER_VAR: owner_tag()}


def detached_popen_kwargs() -> dict[str, object]:
    """Popen options that let the child outlive its parent.

    A new session (POSIX) or process group (Windows) keeps the kernel's
    SIGINT/SIGTERM and the terminal's hang-up away from TensorBoard, so a
    board survives a kernel restart and the CLI exiting.
    """
    if os.name == "nt":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(subprocess, "DETACHED_PROCESS", 0)
        flags |= getattr(subprocess, "CREATE_NO_WINDOW", 0)
        return {"creationflags": flags}
    return {"start_new_session": True}


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
    log_path = new_log_path("tb")
    try:
        child = spawn_detached(argv, log_path, owner_env())
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        return ExecFailed(e, argv[0])
    started = time.time()
    try:
        created = psutil.Process(child.pid).create_time()
    except psutil.NoSuchProcess:
        created = started
    instance = Instance(
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
        status="starting",
    )
    try:
        instance = registry.write(instance)
    except Exception:
        # Unrecorded processes are not allowed: stop it before reporting the registry error.
        _discard(child, instance, remove_log=True)
        raise
    return _wait_ready(child, instance, timeout)


def _wait_ready(child: subprocess.Popen[bytes], instance: Instance, timeout: float) -> LaunchResult:
    deadline = time.monotonic() + timeout
    delay = 0.01
    version = ""
    while True:
        code = child.poll()
        if code is not None:
            tail = output_tail(instance.log_path)
            registry.remove(instance)
            return Failed(code, tail, instance.log_path)
        if instance.port == 0 or not version:
            match = _SERVING.search(output_tail(instance.log_path, lines=200))
            if match:
                version = match.group(1)
                instance = dataclasses.replace(instance, version=version, port=instance.port or int(match.group(2)))
                instance = registry.write(instance)
        if instance.port and liveness.answers(instance.port, instance.path_prefix, instance.host):
            ready = dataclasses.replace(instance, state="ready", status="running")
            return Launched(registry.write(ready))
        if time.monotonic() >= deadline:
            tail = output_tail(instance.log_path)
            _discard(child, instance, remove_log=True)
            return TimedOut(instance.pid, timeout, tail)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)  # a refused connect costs ~0.1 ms: noticing readiness within 20 ms is cheap


def learn_port(instance: Instance) -> Instance:
    """Fill in the port (and version) of a record whose starter died before reading them.

    With ``--port 0`` only TensorBoard's serving line tells the port; a starter
    killed before it read that line leaves a record with port 0 that no probe
    could ever reach. Whoever finds such a record reads the line instead.
    """
    if instance.port and instance.version:
        return instance
    match = _SERVING.search(output_tail(instance.log_path, lines=200))
    if not match:
        return instance
    with contextlib.suppress(ValueError, OSError):
        current = registry.parse_record(registry.read_trusted_json(Path(instance.path)), instance.path)
        if current.port and current.version:
            return current  # its starter is alive and got there first
    learned = dataclasses.replace(instance, version=match.group(1), port=instance.port or int(match.group(2)))
    return registry.write(learned)


def _discard(child: subprocess.Popen[bytes], instance: Instance, remove_log: bool) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        procs.terminate_tree(psutil.Process(child.pid), grace=2.0)
    with contextlib.suppress(Exception):
        child.wait(timeout=1)
    registry.remove(instance)
    if remove_log:
        remove_log_file(instance.log_path)


def remove_log_file(log_path: str) -> None:
    """Delete a board's log, only if it lies in nbboard's own logs directory."""
    if not log_path:
        return
    path = Path(log_path)
    with contextlib.suppress(OSError, registry.RegistryError):
        if path.parent.resolve() == registry.logs_dir().resolve() and not path.is_symlink():
            path.unlink()
