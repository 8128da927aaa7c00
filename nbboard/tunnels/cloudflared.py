"""Cloudflare quick tunnels: ``cloudflared tunnel --url http://127.0.0.1:GATE``, no account, no interstitial.

The agent always points at nbboard's gate, never at TensorBoard, so the
secret link and cookie work as with the other providers; the agent is never
given the secret. It is found as ``NBBOARD_CLOUDFLARED_PATH``, else on PATH,
else as a pinned release that nbboard downloads once into its cache and
checks against a sha256 kept here (see cloudflared_agent.RELEASE). The helper runs it as its
child with ``--no-autoupdate`` and its metrics server on a loopback port the
agent picks itself (read from its own log, so no other process can pose as
it), reads the public hostname from ``/quicktunnel`` (or the log's box), and
reports ready only once the agent logs a registered connection to
Cloudflare's edge. The metrics server needs no secret; what it tells a local
user (the public hostname) opens nothing without the link's secret.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

from ..errors import TunnelError, UsageError, shown
from . import cloudflared_agent, providers
from .cloudflared_agent import INSTALL_HELP, PATH_VAR, find_agent, install, print_progress, this_platform, version

log = logging.getLogger("nbboard.cloudflared")

NAME = "cloudflared"
AUTO = "cloudflared"
OPTIONS: tuple[str, ...] = ("protocol",)
PROTOCOL_VAR = "NBBOARD_CLOUDFLARED_PROTOCOL"
PROTOCOLS = ("auto", "quic", "http2")
LAST_LINES = 6


# ---------------------------------------------------------------------------
# The plug-in interface (see nbboard.tunnels.providers)


def usable() -> TunnelError | None:
    agent, _source = find_agent()
    if agent is not None or this_platform() in cloudflared_agent.RELEASE.assets:
        return None
    system, arch = this_platform()
    return TunnelError(f"no cloudflared is installed and nbboard has no download for {system}-{arch}", INSTALL_HELP)


def auto() -> tuple[bool, str]:
    agent, source = find_agent()
    if agent is not None:
        return True, f"using cloudflared (a Cloudflare quick tunnel: no account needed; the agent from {source})"
    if this_platform() in cloudflared_agent.RELEASE.assets:
        return True, (
            "using cloudflared (a Cloudflare quick tunnel: no account needed; "
            f"nbboard downloads its agent {cloudflared_agent.RELEASE.version} once)"
        )
    return False, f"cloudflared is not installed (nbboard has no download for {'-'.join(this_platform())})"


def prepare(request: providers.Request) -> providers.Plan:
    """Find (or download, once, with progress on stderr) the agent in the foreground, and check that it runs."""
    protocol = (request.protocol or os.environ.get(PROTOCOL_VAR) or "").strip().lower()
    if protocol and protocol not in PROTOCOLS:
        raise UsageError(f"invalid --protocol {protocol!r}", "use --protocol quic, http2 or auto")
    agent, source = find_agent()
    notes: list[str] = []
    if agent is None:
        agent = install(timeout=request.timeout, progress=print_progress())
        source = f"downloaded into {agent.parent} (sha256 verified)"
        notes.append(f"cloudflared {cloudflared_agent.RELEASE.version} {source}")
    elif source == PATH_VAR and not agent.is_file():
        raise TunnelError(f"{PATH_VAR} names {agent}, which is not a file", INSTALL_HELP)
    agent_version = version(agent)
    log.debug("cloudflared %s from %s", agent_version, source)
    return providers.Plan(options={"agent": str(agent), "protocol": protocol}, notes=tuple(notes))


def ready_notes(plan: providers.Plan) -> list[str]:
    return [
        "Cloudflare quick tunnels are for trying things out: no uptime guarantee, a new link each time, "
        "and Cloudflare's terms apply"
    ]


def cleanup(state_dir: str, helper_pid: int) -> None:
    return None  # the agent is the helper's child: it goes with the helper's process tree


# ---------------------------------------------------------------------------
# In the helper: run the agent and read what it says


class _Agent:
    """What the agent has said so far, from its log (stderr)."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=LAST_LINES)
        self.metrics = ""
        self.box_url = ""
        self.request_error = ""
        self.registered = asyncio.Event()
        self.changed = asyncio.Event()

    def read(self, line: str) -> None:
        self.lines.append(line)
        if m := re.search(r"Starting metrics server on (127\.0\.0\.1:\d+)/metrics", line):
            self.metrics = m.group(1)
        elif m := re.search(r"\|\s+(https://[A-Za-z0-9.-]+)\s+\|", line):
            self.box_url = m.group(1)
        elif "Registered tunnel connection" in line:
            self.registered.set()
        elif m := re.search(r"failed to request quick Tunnel: (.*)", line):
            self.request_error = m.group(1)
        self.changed.set()

    def tail(self) -> str:
        return "\n  cloudflared's last lines:\n" + "\n".join(f"    {shown(line, 300)}" for line in self.lines)


async def _pump(stream: asyncio.StreamReader, agent: _Agent) -> None:
    """Read the agent's log for as long as it runs (an unread pipe would stall it), into the helper's log."""
    while raw := await stream.readline():
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            agent.read(line)
            log.info("cloudflared: %s", shown(line, 2000))  # its words, but no terminal escapes in the log


def _get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - a loopback URL the agent named
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}
    except (OSError, ValueError):
        return 0, {}


async def open(gate_port: int, settings: providers.Settings) -> tuple[str, providers.Close]:
    """Start the agent for 127.0.0.1:``gate_port``; the https URL once it has a registered connection."""
    agent_path = settings.options.get("agent") or ""
    if not agent_path:
        raise TunnelError("no cloudflared agent was named", INSTALL_HELP)
    protocol = settings.options.get("protocol") or ""
    argv = [agent_path, "tunnel", "--no-autoupdate", "--loglevel", "info", "--metrics", "127.0.0.1:0"]
    if protocol:
        argv += ["--protocol", protocol]
    argv += ["--url", f"http://127.0.0.1:{gate_port}"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except OSError as e:
        raise TunnelError(f"cannot run cloudflared at {agent_path}: {e}", INSTALL_HELP) from None
    agent = _Agent()
    assert proc.stderr is not None
    pump = asyncio.create_task(_pump(proc.stderr, agent))

    async def close() -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump

    try:
        hostname = await _until_ready(proc, agent, pump, settings.deadline, protocol)
    except BaseException:
        await close()
        raise
    return f"https://{hostname}", close


async def _until_ready(
    proc: asyncio.subprocess.Process, agent: _Agent, pump: asyncio.Task[None], deadline: float, protocol: str
) -> str:
    """The public hostname, once the agent has registered a connection; a TunnelError with its cause if not."""
    started = time.monotonic()
    next_probe = 0.0
    exited = asyncio.ensure_future(proc.wait())
    try:
        while not agent.registered.is_set():
            if agent.request_error or exited.done():
                # It exits after a failed request: give it (and the last log lines) a moment, for the message.
                await asyncio.wait({exited, pump}, timeout=2, return_when=asyncio.ALL_COMPLETED)
                raise _failed(agent, proc.returncode)
            left = providers.left(deadline)
            if left <= 0:
                raise _timed_out(agent, time.monotonic() - started, protocol)
            if agent.metrics and time.monotonic() >= next_probe:  # the log line is the signal; /ready says it too
                next_probe = time.monotonic() + 1.0
                status, _ = await providers.in_daemon_thread(lambda: _get_json(f"http://{agent.metrics}/ready"))
                if status == 200:
                    break
            agent.changed.clear()
            changed = asyncio.ensure_future(agent.changed.wait())
            await asyncio.wait({changed, exited}, timeout=min(0.25, left), return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
    finally:
        if not exited.done():
            exited.cancel()
    hostname = ""
    if agent.metrics:
        _, data = await providers.in_daemon_thread(lambda: _get_json(f"http://{agent.metrics}/quicktunnel"))
        hostname = str(data.get("hostname") or "")
    if not hostname and agent.box_url:
        hostname = agent.box_url.removeprefix("https://")
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", hostname):
        raise TunnelError("cloudflared connected but never said its public hostname" + agent.tail(), INSTALL_HELP)
    return hostname.lower()


def _failed(agent: _Agent, code: int | None) -> TunnelError:
    if agent.request_error:
        error = providers.unreachable(
            "Cloudflare's quick-tunnel service (api.trycloudflare.com)", providers.network_cause(agent.request_error)
        )
        error.message += agent.tail()
        return error
    return TunnelError(f"cloudflared exited with code {code} before it had a tunnel" + agent.tail(), INSTALL_HELP)


def _timed_out(agent: _Agent, waited: float, protocol: str) -> TunnelError:
    if agent.box_url:
        fix = (
            "a firewall blocks Cloudflare's edge (TCP port 7844 for http2)"
            if protocol == "http2"
            else "QUIC (UDP port 7844) may be blocked here: try --protocol http2 "
            f"(in a notebook: %env {PROTOCOL_VAR}=http2)"
        )
        return TunnelError(
            f"cloudflared got a quick tunnel but no connection to Cloudflare's edge within {waited:.0f} s"
            + agent.tail(),
            fix + "; " + providers.offline_hint(),
        )
    error = providers.unreachable("Cloudflare's quick-tunnel service", f"no answer within {waited:.0f} s")
    error.message += agent.tail()
    return error
