"""Which of the gate's connections without an authorised request are kept: at most ``MAX_PENDING``.

A newcomer beyond the cap pushes out, in this order, one already refused,
one that has sent nothing for ``FRESH`` s, one stuck in its head for that
long, then the oldest fresh one (``Pending._victim``). A flood of silent
connections thus cannot push out the owner's connection once its head has
begun to arrive, and file descriptors stay bounded.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from dataclasses import dataclass

__all__ = ["FRESH", "MAX_PENDING", "TRIM_AFTER", "HeardReader", "Pending"]

#: Connections that have not (yet) made an authorised request; beyond this the oldest is dropped.
MAX_PENDING = 64
#: A pending connection younger than this is still arriving: it is evicted after every older one.
FRESH = 1.0
#: How long the pending connections may exceed MAX_PENDING (never twice it) before the surplus is pushed out.
TRIM_AFTER = 0.1


class HeardReader(asyncio.StreamReader):
    """A StreamReader that remembers whether any byte has arrived, for the eviction order."""

    heard = False

    def feed_data(self, data: bytes) -> None:
        if data:
            self.heard = True
        super().feed_data(data)


def _bytes_waiting(writer: asyncio.StreamWriter) -> bool:
    """Has the visitor sent bytes that the event loop has not read yet? (A peek on a duplicate of the socket.)"""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with sock.dup() as peek:
            peek.setblocking(False)  # it already is: asyncio's sockets are non-blocking
            return bool(peek.recv(1, socket.MSG_PEEK))
    except OSError:  # nothing waiting (EAGAIN), or the connection is gone: either way, nothing to keep
        return False


@dataclass
class _Entry:
    """A connection without an authorised request yet."""

    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader
    since: float
    refused: bool = False


class Pending:
    """The connections without an authorised request yet, oldest first; ``evicted`` counts those pushed out."""

    def __init__(self) -> None:
        self._entries: collections.OrderedDict[int, _Entry] = collections.OrderedDict()
        self.evicted = 0
        self._trim_scheduled = False

    def __len__(self) -> int:
        return len(self._entries)

    def admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Count a new connection among the pending ones, pushing others out beyond the cap.

        asyncio accepts up to MAX_PENDING connections at once, and reads what a connection sent only an
        event-loop turn or two after admitting it; so the cap is enforced a moment later (TRIM_AFTER), when
        heads that had already arrived are known to have, and at once only beyond twice the cap.
        """
        loop = asyncio.get_running_loop()
        self._entries[id(writer)] = _Entry(writer, reader, loop.time())
        self._trim(2 * MAX_PENDING)
        if len(self._entries) > MAX_PENDING and not self._trim_scheduled:
            self._trim_scheduled = True
            loop.call_later(TRIM_AFTER, self._trim, MAX_PENDING)

    def refused(self, writer: asyncio.StreamWriter) -> None:
        """The connection was refused and only lingers: it is the first to go."""
        entry = self._entries.get(id(writer))
        if entry is not None:
            entry.refused = True

    def trust(self, writer: asyncio.StreamWriter) -> bool:
        """Mark the connection as having made an authorised request; False if it was pushed out meanwhile."""
        if self._entries.pop(id(writer), None) is None:
            return not writer.transport.is_closing()
        return True

    def forget(self, writer: asyncio.StreamWriter) -> None:
        self._entries.pop(id(writer), None)

    def _trim(self, cap: int) -> None:
        if cap == MAX_PENDING:
            self._trim_scheduled = False
        now = asyncio.get_running_loop().time()
        while len(self._entries) > cap:
            key = self._victim(now)
            victim = self._entries[key]
            if not getattr(victim.reader, "heard", True) and _bytes_waiting(victim.writer):
                victim.reader.heard = True  # type: ignore[attr-defined]  # bytes are in; asyncio has yet to read them
                continue
            del self._entries[key]
            victim.writer.transport.abort()
            self.evicted += 1

    def _victim(self, now: float) -> int:
        """The pending connection to push out: refused ones first (they only linger), then those silent for
        FRESH s, then those whose head has been arriving for that long, then fresh ones; oldest first in each.

        Issue 17 item 5: evicting simply the oldest, a flood of connections that send nothing pushed out
        0.6-2.5 % of the owner's fresh connections before their head was read (it had often arrived already).
        """

        def rank(item: tuple[int, _Entry]) -> tuple[int, float]:
            p = item[1]
            heard = bool(getattr(p.reader, "heard", True))
            if p.refused:
                return 0, p.since
            if now - p.since >= FRESH:
                return (2 if heard else 1), p.since
            return (4 if heard else 3), p.since

        return min(self._entries.items(), key=rank)[0]
