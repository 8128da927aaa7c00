"""A Python client of the localtunnel protocol, so no node is needed.

The protocol: ``GET <server>/?new`` (or ``/<id>`` to keep a name) answers
``{id, port, max_conn_count, url}``; the client opens up to ``max_conn_count``
TCP connections to that port and pipes each to the local service; the server
routes visitors by ``Host: <id>.<domain>`` over those connections.

Servers drop these connections routinely (idle timeouts, restarts). Each
connection slot reconnects on its own with a short backoff, and if the
server has forgotten the tunnel, the client asks for the same id again so
the public URL stays the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from dataclasses import dataclass

from ..errors import TunnelError

log = logging.getLogger("nbboard.localtunnel")

DEFAULT_HOST = "https://localtunnel.me"
PASSWORD_URL = "https://loca.lt/mytunnelpassword"
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Assignment:
    """What the server gave us."""

    id: str
    url: str
    remote_host: str
    remote_port: int
    max_conn: int


def request_tunnel(server: str, subdomain: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Assignment:
    """Ask ``server`` for a tunnel; raises TunnelError with the reason when it cannot."""
    import requests

    base = server.rstrip("/")
    url = f"{base}/{subdomain}" if subdomain else f"{base}/?new"
    try:
        resp = requests.get(url, timeout=timeout, headers={"User-Agent": "nbboard-localtunnel"})
    except requests.RequestException as e:
        raise TunnelError(
            f"cannot reach the localtunnel server {base}: {e.__class__.__name__}",
            "check the network, pass --host for a self-hosted server, or use --provider ngrok",
        ) from None
    if resp.status_code != 200:
        raise TunnelError(
            f"the localtunnel server {base} refused the tunnel (HTTP {resp.status_code}): {resp.text[:200]}"
        )
    try:
        data = resp.json()
        remote_host = urllib.parse.urlsplit(base).hostname or "127.0.0.1"
        return Assignment(
            id=str(data["id"]),
            url=str(data["url"]),
            remote_host=str(data.get("ip") or remote_host),
            remote_port=int(data["port"]),
            max_conn=max(1, min(int(data.get("max_conn_count", 1)), 10)),
        )
    except (ValueError, KeyError, TypeError):
        raise TunnelError(
            f"the localtunnel server {base} answered something else than a tunnel: {resp.text[:200]}"
        ) from None


def public_ip_password(timeout: float = 3.0) -> str | None:
    """The "tunnel password" the public service's reminder page asks visitors for (the public IP)."""
    import requests

    try:
        resp = requests.get(PASSWORD_URL, timeout=timeout)
        text = resp.text.strip()
        return text if resp.ok and 0 < len(text) < 64 else None
    except requests.RequestException:
        return None


class LocalTunnelClient:
    """Keeps ``max_conn`` connections from the server to ``local_port`` until stopped."""

    def __init__(self, server: str, local_port: int, assignment: Assignment) -> None:
        self.server = server
        self.local_port = local_port
        self.assignment = assignment
        self.reconnects = 0
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        slots = [asyncio.create_task(self._slot(i)) for i in range(self.assignment.max_conn)]
        try:
            await self._stopping.wait()
        finally:
            for t in slots:
                t.cancel()
            for t in slots:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    def stop(self) -> None:
        self._stopping.set()

    async def _slot(self, index: int) -> None:
        delay = 0.05
        failures = 0
        while not self._stopping.is_set():
            a = self.assignment
            try:
                remote_r, remote_w = await asyncio.wait_for(asyncio.open_connection(a.remote_host, a.remote_port), 10)
            except (OSError, asyncio.TimeoutError):
                failures += 1
                if failures >= 3 and index == 0:
                    await self._reregister()
                    failures = 0
                await self._backoff(a, delay)
                delay = min(delay * 2, 1.0)
                continue
            failures = 0
            delay = 0.05
            await self._serve(remote_r, remote_w)
            self.reconnects += 1

    async def _backoff(self, seen: Assignment, delay: float) -> None:
        """Sleep ``delay`` s, but wake at once when a re-registration brings a new port:
        the server forgets a tunnel no socket joins within about a second."""
        end = asyncio.get_running_loop().time() + delay
        while asyncio.get_running_loop().time() < end and self.assignment is seen and not self._stopping.is_set():
            await asyncio.sleep(0.02)

    async def _serve(self, remote_r: asyncio.StreamReader, remote_w: asyncio.StreamWriter) -> None:
        """Pipe one server connection to the local service; reopen the local side if it closes first."""
        try:
            while not self._stopping.is_set():
                # Wait for the server to send a request before dialling the local service.
                first = await remote_r.read(65536)
                if not first:
                    return
                try:
                    local_r, local_w = await asyncio.open_connection("127.0.0.1", self.local_port)
                except OSError:
                    return
                local_w.write(first)
                up = asyncio.create_task(_pipe(remote_r, local_w))
                down = asyncio.create_task(_pipe(local_r, remote_w))
                done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
                for t in pending:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
                local_w.close()
                if up in done or remote_w.is_closing():
                    return  # the server side ended: reconnect the slot
        finally:
            remote_w.close()

    async def _reregister(self) -> None:
        """The server may have forgotten us: ask for the same id again."""
        try:
            fresh = await asyncio.to_thread(request_tunnel, self.server, self.assignment.id)
        except TunnelError as e:
            log.warning("re-registering the tunnel failed: %s", e.message)
            return
        if fresh.url != self.assignment.url:
            log.warning("the server gave a new public URL on re-registration")
        self.assignment = fresh


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
