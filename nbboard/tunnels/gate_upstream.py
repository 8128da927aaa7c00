"""The gate's connections to TensorBoard, and its timeouts.

Each request goes to TensorBoard on a connection of its own: TensorBoard's werkzeug server ends every
connection after one answer (``Connection: close``, always), so a visitor who reaches it directly pays
for a new connection per request too, and there is nothing to keep alive. What is kept here is the set
of connections that carry a request, so that closing the gate ends them at once: a request still
waiting for TensorBoard's answer (up to ``UPSTREAM_TIMEOUT``) would otherwise outlive its tunnel.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Upstream", "within"]

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``asyncio.wait_for`` without its task per call where Python has ``asyncio.timeout`` (3.11+): the gate
    awaits several of these per request, and a task each was a measurable share of its CPU per request."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10


class Upstream:
    """TensorBoard's address, and the connections to it that carry a request now."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._busy: set[asyncio.StreamWriter] = set()

    async def open(self, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection (OSError or TimeoutError if none can be made)."""
        reader, writer = await within(asyncio.open_connection(*self.address), timeout)
        self._busy.add(writer)
        return reader, writer

    def done(self, writer: asyncio.StreamWriter) -> None:
        self._busy.discard(writer)
        writer.transport.abort()

    def close(self) -> None:
        """End every connection that carries a request (whose wait for TensorBoard then ends)."""
        for writer in self._busy:
            writer.transport.abort()
        self._busy.clear()
