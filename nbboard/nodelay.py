"""TCP_NODELAY on TensorBoard's data server, set from its parent.

TensorBoard's Rust data server answers gRPC without ``TCP_NODELAY``: Nagle's
algorithm holds the last segment of each reply until the client's delayed ACK,
about 40 ms later on Linux. Every scalar chart pays that stall. The data
server's parent may duplicate its sockets (``pidfd_open`` + ``pidfd_getfd``,
Linux ≥ 5.6; under Yama ``ptrace_scope=1`` only ancestors may) and set the
option on them: on the listening socket, so that connections accepted later
inherit it, and on the connections already accepted.

Nothing here raises: where the mechanism is unavailable (not Linux, an old
kernel, a sandbox without these system calls, no permission) the result says
why, and TensorBoard runs exactly as it would have.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

#: Set to "0" to leave TensorBoard's sockets as they are.
ENV_SWITCH = "NBBOARD_NODELAY"

#: pidfd_getfd's number: one table for every architecture since Linux 5.1's syscall unification.
_SYS_PIDFD_GETFD = 438
_SYS_PIDFD_OPEN = 434


@dataclass(frozen=True)
class Outcome:
    """Whether TCP_NODELAY was set, on how many sockets of which processes, and if not, why."""

    applied: bool
    detail: str

    def line(self) -> str:
        """The line the board prints into its log, for people (the launcher reads the board's status file)."""
        return f"{LINE_PREFIX}{'applied' if self.applied else 'not applied'}: {self.detail}"


LINE_PREFIX = "nbboard: data server tcp_nodelay "


def disabled_reason() -> str:
    """Why the mechanism cannot run in this process at all ("" if it may be tried)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"turned off by {ENV_SWITCH}={os.environ[ENV_SWITCH]}"
    if not sys.platform.startswith("linux"):
        return f"needs Linux's pidfd_getfd (this is {sys.platform})"
    return ""


def apply_to_children(parent: int | None = None) -> Outcome:
    """Set TCP_NODELAY on every TCP socket of ``parent``'s children (default: this process's).

    In a board, the only child is TensorBoard's data server; with
    ``--load_fast=false`` there is none, and there is nothing to fix.
    """
    why = disabled_reason()
    if why:
        return Outcome(False, why)
    kids = children(os.getpid() if parent is None else parent)
    if not kids:
        return Outcome(False, "no data server (TensorBoard serves the data itself)")
    done: list[str] = []
    for pid in kids:
        try:
            count = set_nodelay(pid)
        except OSError as e:
            return Outcome(False, _explain(e))
        if count:
            done.append(f"{count} socket(s) of pid {pid}")
    if not done:
        return Outcome(False, f"the data server (pid {', '.join(map(str, kids))}) has no TCP socket")
    return Outcome(True, ", ".join(done))


def watch_children(stop: threading.Event, interval: float = 0.002, timeout: float = 30.0) -> None:
    """Set TCP_NODELAY on the first child's sockets as soon as it listens, until ``stop`` is set.

    Run in a thread while TensorBoard starts its data server: TensorBoard's
    first gRPC call (made before :func:`apply_to_children` can run) then already
    finds a listening socket whose accepted connections inherit the option.
    """
    if disabled_reason():
        return
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while not stop.is_set() and time.monotonic() < deadline:
        for pid in children(me):
            try:
                if set_nodelay(pid):
                    return
            except OSError:
                return  # apply_to_children will say why
        stop.wait(interval)


def set_nodelay(pid: int) -> int:
    """Set TCP_NODELAY on each TCP socket of ``pid``; returns how many. Raises OSError."""
    pidfd = _pidfd_open(pid)
    try:
        count = 0
        for target in _socket_fds(pid):
            try:
                dup = _pidfd_getfd(pidfd, target)
            except OSError as e:
                if e.errno == errno.EBADF:  # closed since it was listed
                    continue
                raise
            try:
                sock = socket.socket(fileno=dup)
            except OSError:
                os.close(dup)
                raise
            with sock:  # closing the duplicate leaves the data server's own descriptor open
                if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    count += 1
        return count
    finally:
        os.close(pidfd)


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, oldest first, from /proc (no psutil: this runs inside every board)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: read every process's parent
            return _children_by_scan(pid)
        except (OSError, ValueError):
            continue
    return sorted(set(found))


def _children_by_scan(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def _socket_fds(pid: int) -> Iterable[int]:
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                yield int(name)
        except (OSError, ValueError):
            continue


def _pidfd_open(pid: int) -> int:
    if hasattr(os, "pidfd_open"):
        return os.pidfd_open(pid)
    return _syscall(_SYS_PIDFD_OPEN, pid, 0)


def _pidfd_getfd(pidfd: int, target: int) -> int:
    return _syscall(_SYS_PIDFD_GETFD, pidfd, target, 0)


def _syscall(number: int, *args: int) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def _explain(error: OSError) -> str:
    name = errno.errorcode.get(error.errno or 0, str(error.errno))
    hint = {
        errno.ENOSYS: " (the kernel or sandbox lacks pidfd_getfd: Linux ≥ 5.6 needed)",
        errno.EPERM: " (not allowed to take the data server's sockets: Yama ptrace_scope or a sandbox)",
        errno.EACCES: " (not allowed to take the data server's sockets)",
    }.get(error.errno or 0, "")
    return f"{error.strerror or error} [{name}]{hint}"
