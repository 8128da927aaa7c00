"""Before a start: reuse the live board for the same logdir and flags, or name the records to clear; and
whether an explicit ``--port`` is free, and if not, whose it is.

Decides only: stops nothing (the caller stops what it must, after everything that can fail was checked, so
that ``--restart`` never loses a board for nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from dataclasses import dataclass

import psutil

from . import launcher, liveness, registry
from .errors import PortInUseError
from .instance import Instance
from .registry import BoardRecord


@dataclass(frozen=True)
class Checked:
    """A board as just checked, with its process (None if gone)."""

    instance: Instance
    proc: psutil.Process | None


def settle_existing(key: str, port: int | None, restart: bool, timeout: float) -> tuple[Instance | None, list[Checked]]:
    """Reuse a live board with ``key``, or say which records of it to stop or drop; stops nothing itself.

    Returns (a board to reuse, None otherwise; the boards and records to clear before launching).
    The caller checks what can fail first, so that ``--restart`` never loses a board for nothing.
    """
    records, _ = registry.read_all()
    doomed: list[Checked] = []
    for record in records:
        if record.cache_key != key:
            continue
        checked, proc = liveness.check(record, start_timeout=timeout)
        if checked.status == "starting" and not restart:
            checked, proc = wait_for_other_start(record, timeout)
        if checked.status == "running" and not restart and (port is None or port == checked.port):
            return dataclasses.replace(checked, reused=True), []
        if checked.status == "running" and not restart:
            continue  # same logdir on another port: a separate board the user asked for
        doomed.append(Checked(checked, proc))
    return None, doomed


def wait_for_other_start(record: BoardRecord, timeout: float) -> tuple[Instance, psutil.Process | None]:
    """A record still "starting" whose starter died (we hold its lock): give it its time."""
    deadline = record.start_time + timeout
    while True:
        record = launcher.learn_port(record)
        checked, proc = liveness.check(record, start_timeout=timeout)
        if checked.status != "starting" or time.time() > deadline:
            return checked, proc
        time.sleep(0.05)


def ensure_port_free(port: int) -> None:
    """The port is free on 127.0.0.1 and on [::1], where browsers send ``localhost`` first (nbboard/loopback6.py)."""
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                in_use = s.connect_ex((address, port)) == 0
        except OSError:  # no IPv6 here: nothing can listen there
            continue
        if in_use:
            raise PortInUseError(port, port_owner(port))


def port_owner(port: int) -> str:
    records, _ = registry.read_all()
    for record in records:
        if record.port == port:
            return f"nbboard's board for {record.logdir} (pid {record.pid}; stop it with: nbboard kill --port {port})"
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    return ""
