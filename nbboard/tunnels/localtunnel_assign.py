"""Asking a localtunnel server for a tunnel, and checking what it answers before anything uses it.

A user may point ``--host`` at any server, and the public one is run by someone else: its answer is untrusted
input. The id must be plain, the URL ``http(s)://host[:port]``, and the address it aims the client at no more
local than the server itself; control characters never reach the terminal or the registry.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import urllib.parse
from dataclasses import dataclass

from .. import links
from ..errors import TunnelError
from . import providers

REQUEST_TIMEOUT = 10.0
#: A tunnel id as servers make them; it goes back into a URL path when the client asks for it again.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
#: Addresses from the most local to the most public. A server may aim the client at an address no more local
#: than its own: a public server at a private, link-local or loopback one is refused (a loopback test server may
#: name loopback; one on the company network, a private address).
_LOOPBACK, _LINK_LOCAL, _PRIVATE, _GLOBAL = range(4)


@dataclass(frozen=True)
class Assignment:
    """What the server gave us."""

    id: str
    url: str
    remote_host: str
    remote_port: int
    max_conn: int


def request_tunnel(server: str, subdomain: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Assignment:
    """Ask ``server`` for a tunnel; raises TunnelError naming the cause (and the fix) when it cannot."""
    import requests

    base = server.rstrip("/")
    url = f"{base}/{subdomain}" if subdomain else f"{base}/?new"
    try:
        resp = requests.get(url, timeout=timeout, headers={"User-Agent": "nbboard-localtunnel"})
    except requests.RequestException as e:
        raise providers.unreachable(f"the localtunnel server {base}", _cause(e, timeout)) from None
    # Everything the server says is cleaned before it is printed or stored: it chooses it (escape sequences).
    if resp.status_code != 200:
        raise TunnelError(
            f"the localtunnel server {base} refused the tunnel (HTTP {resp.status_code}): {links.printable(resp.text)}"
        )
    try:
        data = resp.json()
        server_host = urllib.parse.urlsplit(base).hostname or "127.0.0.1"
        tunnel_id, port, public = str(data["id"]), int(data["port"]), links.public_url(data["url"])
        max_conn = max(1, min(int(data.get("max_conn_count", 1)), 10))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TunnelError(
            f"the localtunnel server {base} answered something else than a tunnel: {links.printable(resp.text)}"
        ) from None
    if public is None or not _ID.match(tunnel_id) or not 0 < port < 65536:
        what = "its public URL" if public is None else "its tunnel id" if not _ID.match(tunnel_id) else "its port"
        raise TunnelError(
            f"the localtunnel server {base} answered a malformed tunnel ({what}): {links.printable(resp.text)}",
            "check --host: it must be a localtunnel server",
        )
    remote_host = _remote_address(base, server_host, data.get("ip"))
    return Assignment(id=tunnel_id, url=public, remote_host=remote_host, remote_port=port, max_conn=max_conn)


def _remote_address(base: str, server_host: str, named: object) -> str:
    """The address the tunnel's connections go to: the one the server named (``ip``), resolved once and
    checked against the server's own (see _GLOBAL), or the server's host when it named none."""
    if named in (None, ""):
        return server_host
    if not isinstance(named, str) or not links.printable(named, 256) == named:
        raise TunnelError(f"the localtunnel server {base} named a malformed tunnel address")
    remote = _resolve(named)
    server = _resolve(server_host, strict_as_server=True)
    if remote is None or not remote_allowed(server, remote):
        raise TunnelError(
            f"the localtunnel server {base} aimed the tunnel at {links.printable(named, 60)}, "
            "an address that makes no sense for it (a server on the internet naming a local or private address)",
            "check --host: the server may be misconfigured or hostile",
        )
    return str(remote)


def _resolve(host: str, *, strict_as_server: bool = False) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an address: a literal as is, a name by one lookup (the connections then use that address,
    so a second lookup cannot point them elsewhere). Of several addresses, the one that makes the check
    strictest: a server's most public one, a tunnel address's most local one."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]"))
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    addrs = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addrs:
        return None
    return (max if strict_as_server else min)(addrs, key=_locality)


def _locality(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """_LOOPBACK … _GLOBAL, or -1 for an address no tunnel goes to (unspecified, multicast, reserved)."""
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None:
        addr = mapped
    if addr.is_loopback:  # before is_reserved: ::1 lies in IPv6's reserved ::/8
        return _LOOPBACK
    if addr.is_link_local:
        return _LINK_LOCAL
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        return -1
    return _GLOBAL if addr.is_global else _PRIVATE  # private ranges, shared address space (100.64/10) and the like


def remote_allowed(
    server: ipaddress.IPv4Address | ipaddress.IPv6Address | None, remote: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> bool:
    """May a server at ``server`` aim the tunnel at ``remote``? Never at an unspecified, multicast or reserved
    address; otherwise at one no more local than the server itself (``None``: the server's own address is
    unknown here, behind a proxy say, and it counts as public)."""
    rank = _locality(remote)
    return rank >= 0 and rank >= max(_GLOBAL if server is None else _locality(server), _LOOPBACK)


def _cause(e: Exception, timeout: float) -> str:
    """What went wrong, in words, from a requests exception (urllib3 1.x and 2.x word them differently)."""
    import requests

    text = str(e)
    if isinstance(e, requests.ConnectTimeout):
        return f"no connection within {timeout:g} s (a firewall may be dropping the traffic)"
    if isinstance(e, requests.ReadTimeout):
        return f"it accepted the connection but sent no answer within {timeout:g} s"
    if isinstance(e, requests.exceptions.SSLError):
        return "the TLS handshake failed (is a proxy intercepting https?)"
    if isinstance(e, requests.exceptions.ProxyError):
        return "the proxy in HTTPS_PROXY/HTTP_PROXY refused the connection"
    return providers.network_cause(text, fallback=e.__class__.__name__)
