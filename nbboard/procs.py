"""Processes: prove a pid is the one a record describes, and stop process trees.

psutil only, so the same code runs on Linux, macOS and Windows. A pid alone
proves nothing (pids are reused); nbboard signals a process only when it runs
as this user (uid on POSIX, account name on Windows) and its creation time,
and where readable its command line, match the record. Root included: a record
naming another user's process is never a reason to signal it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence

import psutil

from . import config

#: How long a board gets to exit on SIGTERM before SIGKILL. Alone, TensorBoard exits in
#: ~0.15 s; ten at once on two cores need 1.1 s (measured), all of it interpreter teardown:
#: it writes nothing worth waiting for, and nbboard removes its info file itself.
GRACE = 0.3

#: psutil's creation times are computed from boot time and clock ticks: equal
#: for one process across calls, but compare with a little slack.
CREATE_TIME_SLACK = 0.5


def create_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def other_owner(proc: psutil.Process) -> str:
    """Who ``proc`` runs as, if not this user ("" when it is this user's).

    POSIX: its real and effective uid must both be the caller's real uid (a
    setuid program started by this user runs as someone else). Windows: its
    account name must be the caller's. Raises psutil.NoSuchProcess.
    """
    try:
        if hasattr(os, "getuid"):
            uids = proc.uids()
            me = os.getuid()
            if uids.real == me and uids.effective == me:
                return ""
            return _user_label(uids.effective if uids.real == me else uids.real)
        account = proc.username()
        return "" if account == psutil.Process().username() else account
    except psutil.AccessDenied:
        return "an account nbboard may not inspect"


def _user_label(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _not_mine(pid: int, owner: str) -> str:
    return f"process {pid} runs as another user, {owner}: skipped, nbboard signals only your own processes"


def _find(pid: int, same: Callable[[psutil.Process], str]) -> tuple[psutil.Process | None, str]:
    """The live process ``pid`` of this user that ``same`` accepts (it returns "" or why not), or (None, why not)."""
    try:
        proc = psutil.Process(pid)
        if not _alive(proc):
            return None, f"process {pid} has exited"
        owner = other_owner(proc)
        if owner:
            return None, _not_mine(pid, owner)
        why = same(proc)
        return (None, why) if why else (proc, "")
    except psutil.NoSuchProcess:
        return None, f"process {pid} has exited"
    except (psutil.AccessDenied, KeyError):
        return None, f"process {pid} belongs to another user"


def find_launched(pid: int, created: float, argv: Sequence[str]) -> tuple[psutil.Process | None, str]:
    """The live process nbboard launched as ``argv`` at ``created``, or (None, why not)."""

    def same(proc: psutil.Process) -> str:
        if abs(proc.create_time() - created) > CREATE_TIME_SLACK:
            return f"pid {pid} now belongs to another program"
        try:
            cmdline = proc.cmdline()
        except psutil.AccessDenied:
            cmdline = list(argv)
        if argv and not _same_command(cmdline, argv):
            return f"pid {pid} now runs another command"
        return ""

    return _find(pid, same)


def _same_command(cmdline: Sequence[str], argv: Sequence[str]) -> bool:
    """Equal, or equal after the interpreter a script's shebang put in front."""
    cmdline, argv = list(cmdline), list(argv)
    if cmdline == argv:
        return True
    return len(argv) > 1 and cmdline[-(len(argv) - 1) :] == argv[1:]


def find_tensorboard(pid: int, start_time: int) -> tuple[psutil.Process | None, str]:
    """The live TensorBoard that wrote a ``%tensorboard`` info file, or (None, why not).

    TensorBoard's records carry no creation time, only ``start_time``: the
    second it wrote the file, after its imports. A process created after that
    second, or long before it, is not the writer.
    """

    def same(proc: psutil.Process) -> str:
        if not (start_time - 300 <= proc.create_time() <= start_time + 1):
            return f"pid {pid} now belongs to another program"
        if not any("tensorboard" in part for part in proc.cmdline()):
            return f"pid {pid} now runs another command"
        return ""

    return _find(pid, same)


def terminate_tree(proc: psutil.Process, grace: float = GRACE) -> None:
    """Stop ``proc`` and its descendants; see :func:`terminate_trees`."""
    terminate_trees([proc], grace)


def terminate_trees(roots: Sequence[psutil.Process], grace: float = GRACE) -> None:
    """Stop every root and its descendants: terminate all, wait ``grace`` s, then kill.

    TensorBoard runs a Rust data server as a child; stopping only the parent
    would orphan it. All trees are signalled before any is waited for, so
    stopping ten boards costs one grace period, not ten. Processes that are
    already gone count as stopped.
    """
    family: list[psutil.Process] = []
    for root in roots:
        try:
            family += [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            family.append(root)
    family = [p for p in family if _is_mine(p)]  # a child that became another user's is not ours to stop
    for p in family:
        _signal(p, psutil.Process.terminate)
    alive = wait_gone(family, grace)
    for p in alive:
        _signal(p, psutil.Process.kill)
    wait_gone(alive, 5.0)


def _is_mine(proc: psutil.Process) -> bool:
    try:
        return not other_owner(proc)
    except psutil.NoSuchProcess:
        return False


def _signal(proc: psutil.Process, send: Callable[[psutil.Process], None]) -> None:
    """Send a signal; a process that is gone, or that the OS will not let us signal, is left as it is."""
    try:
        send(proc)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; returns those still alive after ``timeout``.

    A zombie counts as gone. psutil.wait_procs waits for the pid to vanish,
    which takes as long as the zombie's reaper (1.5 s seen under a container's
    PID 1) although the process stopped at once.
    """
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while True:
        for p in pending:
            reap(p.pid)
        pending = [p for p in pending if _alive(p)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.01)


def reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it leaves no zombie."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):  # ChildProcessError (not our child) among them
        os.waitpid(pid, os.WNOHANG)


def tagged(var: str, tag: str, skip: set[int]) -> list[psutil.Process]:
    """Live processes of this user whose environment has ``var=tag`` (minus ``skip``).

    Root can read every process's environment: the owner check keeps another
    user's process with a copied tag out.
    """
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in skip or proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(var) == tag and _alive(proc) and not other_owner(proc):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


# ---------------------------------------------------------------------------
# Starting detached processes (boards and tunnel helpers)

#: Marks processes this registry started, in their environment (see owner_tag).
OWNER_VAR = "NBBOARD_OWNER"


def owner_tag() -> str:
    """A tag naming this registry, put in the environment of every process nbboard starts.

    A starter killed between ``Popen`` and writing the record (a window of a
    millisecond) would leave an unrecorded process; ``kill`` finds such
    processes by this tag. The tag names the registry, not a secret.
    """
    return hashlib.sha256(str(config.home()).encode()).hexdigest()[:16]


#: Secrets nbboard reads (or pyngrok reads for it). Only the ngrok agent needs them, and nbboard hands the
#: token to it alone; every other child (TensorBoard, its data server, the tunnel helper) starts without them,
#: so they cannot be read from its /proc/<pid>/environ or leak through a plugin.
SECRET_VARS = ("NGROK_AUTHTOKEN", "NGROK_API_KEY")


def owner_env() -> dict[str, str]:
    """The environment for a child nbboard starts: the caller's, minus nbboard's secrets, plus the owner tag.

    Everything else stays: TensorBoard may need cloud credentials for a gs:// or s3:// logdir.
    """
    env = {k: v for k, v in os.environ.items() if k.upper() not in SECRET_VARS}
    env[OWNER_VAR] = owner_tag()
    return env


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


def spawn_detached(
    argv: Sequence[str], log_path: str, env: dict[str, str], stdin: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached, its stdout and stderr in a new 0600 log file (``stdin=subprocess.PIPE``
    for a child that is handed something private)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=fd,
            stderr=fd,
            close_fds=True,
            env=env,
            **detached_popen_kwargs(),  # type: ignore[arg-type]
        )
    finally:
        os.close(fd)
