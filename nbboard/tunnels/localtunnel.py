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
import ipaddress
import logging
import re

from ..errors import TunnelError
from . import providers
from .localtunnel_assign import REQUEST_TIMEOUT, Assignment, request_tunnel

log = logging.getLogger("nbboard.localtunnel")

DEFAULT_HOST = "https://localtunnel.me"
PASSWORD_URL = "https://loca.lt/mytunnelpassword"
#: How a request forwarded by the server begins: a method, a space. Anything else (a banner from a port the
#: server aimed us at) is no visitor, and the slot backs off instead of reconnecting at once.
_REQUEST_START = re.compile(rb"^[A-Z]{1,20} [\x21-\x7e]")


def public_ip_password(timeout: float = 3.0) -> str | None:
    """The "tunnel password" the public service's reminder page asks visitors for (the public IP)."""
    import requests

    try:
        resp = requests.get(PASSWORD_URL, timeout=timeout)
        text = resp.text.strip()
        ipaddress.ip_address(text)  # printed as is: an address, never whatever else the service sends
        return text if resp.ok else None
    except ValueError:
        return None
    except requests.RequestException:
        return None


class LocalTunnelClient:
    """Keeps ``max_conn`` connections from the server to ``local_port`` until stopped.

    Each connection carries one local connection to the gate. When the gate
    closes its side (after refusing a visitor, say), the server connection is
    closed too and a fresh one is opened: the server would otherwise keep the
    socket reserved for that visitor's unfinished request.

    The server also reserves a socket for a request whose body has not begun
    (it forwards nothing until the body starts), so a visitor that announces a
    body and never sends it holds a socket the gate never hears of. Ten of them
    would hold them all. So when the whole tunnel has been silent for
    ``QUIET`` s, the client replaces every waiting connection but the newest
    (see :meth:`_recycle`), which frees the sockets such visitors hold.
    """

    #: Consecutive refused or timed-out connections (all slots together) before asking the server again.
    REREGISTER_AFTER = 3
    #: Silence before waiting connections are replaced, and the longest interval between such rounds.
    QUIET = 2.0
    FAST_ROUNDS = 5
    QUIET_MAX = 64.0

    def __init__(self, server: str, local_port: int, assignment: Assignment) -> None:
        self.server = server
        self.local_port = local_port
        self.assignment = assignment
        self.reconnects = 0
        self.recycled = 0
        #: Set once a connection to the server's tunnel port has been made.
        self.connected = asyncio.Event()
        self._refused = 0
        self._reregistering = False
        self._stopping = asyncio.Event()
        #: Connections waiting for the server's next request: writer -> when it connected (loop time).
        self._waiting: dict[asyncio.StreamWriter, float] = {}
        self._recycling: set[asyncio.StreamWriter] = set()
        self._last_request = 0.0

    async def run(self) -> None:
        self._last_request = asyncio.get_running_loop().time()
        tasks = [asyncio.create_task(self._slot()) for _ in range(self.assignment.max_conn)]
        tasks.append(asyncio.create_task(self._recycle()))
        try:
            await self._stopping.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    def stop(self) -> None:
        self._stopping.set()

    async def _slot(self) -> None:
        delay = 0.05
        while not self._stopping.is_set():
            a = self.assignment
            try:
                remote_r, remote_w = await asyncio.wait_for(asyncio.open_connection(a.remote_host, a.remote_port), 10)
            except (OSError, asyncio.TimeoutError):
                self._refused += 1
                if self._refused >= self.REREGISTER_AFTER and not self._reregistering:
                    await self._reregister()
                await self._backoff(a, delay)
                delay = min(delay * 2, 1.0)
                continue
            self._refused = 0
            self.connected.set()
            outcome = await self._serve(remote_r, remote_w)
            if outcome == "served":
                delay = 0.05
            elif outcome == "dropped":  # closed, reset or sent no request before carrying anything: do not spin
                await self._backoff(a, delay)
                delay = min(delay * 2, 1.0)
            self.reconnects += 1

    async def _backoff(self, seen: Assignment, delay: float) -> None:
        """Sleep ``delay`` s, but wake at once when a re-registration brings a new port:
        the server forgets a tunnel no socket joins within about a second."""
        end = asyncio.get_running_loop().time() + delay
        while asyncio.get_running_loop().time() < end and self.assignment is seen and not self._stopping.is_set():
            await asyncio.sleep(0.02)

    async def _serve(self, remote_r: asyncio.StreamReader, remote_w: asyncio.StreamWriter) -> str:
        """Pipe one server connection to one local connection: "served" if it carried a request,
        "recycled" if :meth:`_recycle` replaced it while it waited, "dropped" if the server closed it first
        or sent something that is no request (a banner: the server aimed us at some other service).

        A reset from either side ends it like a close: the slot reconnects.
        """
        local_w: asyncio.StreamWriter | None = None
        self._waiting[remote_w] = asyncio.get_running_loop().time()
        try:
            # Wait for the server to send a request before dialling the local service.
            try:
                first = await remote_r.read(65536)
                # A request's first line may arrive in pieces: read until its method and a space are in.
                while first and len(first) < 22 and first.isalpha() and first.isupper():
                    more = await remote_r.read(65536)
                    if not more:
                        break
                    first += more
            finally:
                self._waiting.pop(remote_w, None)
            if not first:
                return "recycled" if remote_w in self._recycling else "dropped"
            if not _REQUEST_START.match(first):
                log.debug("the tunnel port sent something that is no request (%d bytes): dropped", len(first))
                return "dropped"
            self._last_request = asyncio.get_running_loop().time()
            try:
                local_r, local_w = await asyncio.open_connection("127.0.0.1", self.local_port)
            except OSError:
                return "served"
            local_w.write(first)
            up = asyncio.create_task(_pipe(remote_r, local_w))
            down = asyncio.create_task(_pipe(local_r, remote_w))
            _done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            return "served"
        except (ConnectionError, OSError):
            return "recycled" if remote_w in self._recycling else "dropped"
        finally:
            self._recycling.discard(remote_w)
            if local_w is not None:
                local_w.close()
            if self._stopping.is_set():
                remote_w.transport.abort()  # the tunnel is closing: nothing left to deliver
            else:
                with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(remote_w.drain(), 5)
                remote_w.close()

    async def _recycle(self) -> None:
        """While the tunnel is silent, replace the connections that wait for the server (all but the newest).

        Any of them may be held by a visitor whose request never started its body; closing it makes the
        server drop that request and hand the fresh connection to the next one in its queue. The newest
        stays, so the server never sees the tunnel without connections (it would forget it within a second).
        Rounds come every QUIET s for the first FAST_ROUNDS of a silence, then twice as far apart each time
        (up to QUIET_MAX), so an idle tunnel costs the server a few reconnections a minute.
        """
        loop = asyncio.get_running_loop()
        silent_rounds = 0
        last_round = loop.time()
        while not self._stopping.is_set():
            await asyncio.sleep(0.1)
            if self._last_request > last_round:
                silent_rounds = 0  # traffic since the last round: the next one comes soon again
            quiet = min(self.QUIET * 2 ** max(0, silent_rounds - self.FAST_ROUNDS), self.QUIET_MAX)
            now = loop.time()
            if now - max(self._last_request, last_round) < quiet:
                continue
            silent_rounds += 1
            last_round = now
            waiting = sorted(self._waiting, key=self._waiting.__getitem__)[:-1]
            for writer in waiting:
                self._recycling.add(writer)
                writer.close()
            self.recycled += len(waiting)

    async def _reregister(self) -> None:
        """The server may have forgotten us: ask for the same id again."""
        self._reregistering = True
        try:
            fresh = await providers.in_daemon_thread(lambda: request_tunnel(self.server, self.assignment.id))
        except TunnelError as e:
            log.warning("re-registering the tunnel failed: %s", e.message)
            return
        finally:
            self._reregistering = False
        self._refused = 0
        if fresh.id != self.assignment.id:
            # The server still knows our id (it gives a fresh one only then): the trouble was elsewhere.
            # Switching would silently move the tunnel away from the link its owner holds.
            log.warning("the server still knows tunnel %s; keeping its URL", self.assignment.id)
            return
        self.assignment = fresh

    async def confirmed(self, timeout: float = 5.0) -> bool | None:
        """Does the server see our connections? False while it does not (it may have forgotten the tunnel:
        the slots then ask again); None when it cannot tell us (no status API, or no answer in ``timeout``)."""
        import requests

        base = self.server.rstrip("/")

        def ask() -> bool | None:
            try:
                if "tunnels" not in requests.get(f"{base}/api/status", timeout=timeout).json():
                    return None
                resp = requests.get(f"{base}/api/tunnels/{self.assignment.id}/status", timeout=timeout)
                if resp.status_code == 404:
                    return False  # the server does not know the tunnel (any more)
                return int(resp.json().get("connected_sockets", 0)) > 0
            except (requests.RequestException, ValueError, TypeError, AttributeError):
                return None

        return await providers.in_daemon_thread(ask)


async def open(gate_port: int, settings: providers.Settings) -> tuple[str, providers.Close]:
    """Ask the server for a tunnel and connect it to the gate; ready once the server sees a connection.

    Reporting ready before that would let a visitor in during the second the
    server gives a new tunnel to be joined, and on a loaded machine the
    server may forget the tunnel in that second (then the client asks again).
    """
    server = settings.host or DEFAULT_HOST
    budget = providers.left(settings.deadline)
    try:
        assignment = await asyncio.wait_for(
            providers.in_daemon_thread(lambda: request_tunnel(server, timeout=max(0.5, min(REQUEST_TIMEOUT, budget)))),
            budget + 0.5,
        )
    except asyncio.TimeoutError:  # stuck before the request's own timeouts apply (a DNS lookup, say)
        raise providers.unreachable(f"the localtunnel server {server}", f"no answer within {budget:.0f} s") from None
    client = LocalTunnelClient(server, gate_port, assignment)
    task = asyncio.create_task(client.run())

    async def close() -> None:
        client.stop()
        with contextlib.suppress(Exception):
            await task

    try:
        await asyncio.wait_for(client.connected.wait(), providers.left(settings.deadline))
    except asyncio.TimeoutError:
        await close()
        a = client.assignment
        raise providers.unreachable(
            f"the tunnel port {a.remote_host}:{a.remote_port} that the localtunnel server {server} assigned",
            "no connection in time (a firewall may let the web through but block other ports)",
        ) from None
    while (seen := await client.confirmed(max(0.5, min(5.0, providers.left(settings.deadline))))) is False:
        if providers.left(settings.deadline) <= 0:
            await close()
            raise TunnelError(f"the localtunnel server {server} never saw this tunnel's connections", "try again")
        await asyncio.sleep(0.05)
    log.info("localtunnel connected%s", "" if seen is None else " (confirmed by the server)")
    return client.assignment.url, close


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()


# ---------------------------------------------------------------------------
# The plug-in interface (see nbboard.tunnels.providers); kept apart from the client above.

NAME = "localtunnel"
AUTO = "localtunnel"
OPTIONS: tuple[str, ...] = ("host",)


def usable() -> TunnelError | None:
    return None  # pure Python: it runs anywhere


def auto() -> tuple[bool, str]:
    return True, "using localtunnel"


def prepare(request: providers.Request) -> providers.Plan:
    """The server: --host, else NBBOARD_LOCALTUNNEL_HOST, else the public service."""
    import os
    import re

    from ..errors import UsageError

    server = (request.host or os.environ.get("NBBOARD_LOCALTUNNEL_HOST") or DEFAULT_HOST).rstrip("/")
    if not re.match(r"^https?://[^/\s]+$", server):
        raise UsageError(
            f"invalid --host {request.host!r}", "give the server's base URL, e.g. --host https://localtunnel.me"
        )
    return providers.Plan(options={"host": server})


def ready_notes(plan: providers.Plan) -> list[str]:
    """On the public service: the "tunnel password" its reminder page asks first-time visitors for."""
    if plan.options.get("host") != DEFAULT_HOST:
        return []
    password = public_ip_password()
    return [
        "localtunnel's public service shows first-time visitors a reminder page asking for a 'tunnel password': "
        + (
            f"it is this machine's public IP, {password}"
            if password
            else "it is this machine's public IP (could not look it up)"
        )
    ]


def cleanup(state_dir: str, helper_pid: int) -> None:
    return None  # nothing outside the helper's memory
