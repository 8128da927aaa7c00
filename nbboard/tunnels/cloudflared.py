"""Cloudflare quick tunnels: ``cloudflared tunnel --url http://127.0.0.1:GATE``, no account, no interstitial.

The agent always points at nbboard's gate, never at TensorBoard, so the
secret link and cookie work as with the other providers; the agent is never
given the secret. It is found as ``NBBOARD_CLOUDFLARED_PATH``, else on PATH,
else as a pinned release that nbboard downloads once into its cache and
checks against a sha256 kept here (see RELEASE). The helper runs it as its
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
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import config, registry
from ..errors import TunnelError, UsageError, shown
from . import providers

log = logging.getLogger("nbboard.cloudflared")

NAME = "cloudflared"
AUTO = "cloudflared"
OPTIONS: tuple[str, ...] = ("protocol",)
PATH_VAR = "NBBOARD_CLOUDFLARED_PATH"
PROTOCOL_VAR = "NBBOARD_CLOUDFLARED_PROTOCOL"
PROTOCOLS = ("auto", "quic", "http2")
#: The largest download accepted (the agent is about 40 MB).
MAX_DOWNLOAD = 200 * 1024 * 1024
LAST_LINES = 6


@dataclass(frozen=True)
class Release:
    """A cloudflared release: where its assets are, and each asset's sha256 per (os, arch)."""

    version: str
    base_url: str
    assets: Mapping[tuple[str, str], tuple[str, str]]  # (os, arch) -> (asset file name, sha256 of that file)


#: The release nbboard downloads when no cloudflared is installed. The sha256 values could not be checked here:
#: this machine reaches only package registries, and no registry ships the agent or its checksums (pycloudflared
#: and flask-cloudflared download "latest" unchecked). They are copied from the 2026.9.1 release as several
#: independent public projects pin it (two or more agree on each value; Cloudflare publishes the values in the
#: release notes). Bump the version and all five values together, from the release page.
RELEASE = Release(
    version="2026.9.1",
    base_url="https://github.com/cloudflare/cloudflared/releases/download/2026.9.1",
    assets={
        ("linux", "amd64"): (
            "cloudflared-linux-amd64",
            "03f1f25d1cc93b9ad6c60569d44060bc4f17ed97075760ed8cfca4b12dcd68cc",
        ),
        ("linux", "arm64"): (
            "cloudflared-linux-arm64",
            "3d97437c71848bd8df68041e12436b484a661d95073ea1937f01a845ce88faa3",
        ),
        ("darwin", "amd64"): (
            "cloudflared-darwin-amd64.tgz",
            "ff0d3b51d5ff70eceef89d6b32145fee985018a2174596a5dbe405e2766e2ac4",
        ),
        ("darwin", "arm64"): (
            "cloudflared-darwin-arm64.tgz",
            "c27ab8fd0aa489449e3d201eb02f957ef460a13b613662928b1b23394bf1bcfe",
        ),
        ("windows", "amd64"): (
            "cloudflared-windows-amd64.exe",
            "2837888cc0f5d58f15b6dc478376de90b4d3ba5241c7947455d1e0a0df429712",
        ),
    },
)
INSTALL_HELP = (
    "install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/) "
    f"and put it on PATH or set {PATH_VAR}, or use --provider localtunnel"
)


def this_platform() -> tuple[str, str]:
    """(os, arch) in the release's words: linux/darwin/windows, amd64/arm64."""
    system = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform)
    system = "linux" if system.startswith("linux") else system
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    return system, arch or machine


def cache_path(release: Release | None = None) -> Path:
    """Where the downloaded agent lives: nbboard's private state directory, one folder per version."""
    name = "cloudflared.exe" if this_platform()[0] == "windows" else "cloudflared"
    return config.home() / "cache" / "cloudflared" / (release or RELEASE).version / name


def find_agent(release: Release | None = None) -> tuple[Path | None, str]:
    """(agent, where it came from) without downloading: NBBOARD_CLOUDFLARED_PATH, PATH, then a good cached copy."""
    named = os.environ.get(PATH_VAR, "").strip()
    if named:
        return Path(named).expanduser().absolute(), PATH_VAR  # the helper runs elsewhere: no relative path
    found = shutil.which("cloudflared")
    if found:
        return Path(found), "PATH"
    cached = cache_path(release)
    if _cached_ok(cached):
        return cached, f"nbboard's cache (cloudflared {(release or RELEASE).version})"
    return None, ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Cached agents this process has hashed, with the (size, mtime) they had: one hash per process, not per look.
_checked: dict[Path, tuple[int, int]] = {}


def _cached_ok(path: Path) -> bool:
    """A cached agent counts only if it still has the hash recorded when it was verified and installed."""
    try:
        st = path.stat()
        if _checked.get(path) == (st.st_size, st.st_mtime_ns):
            return True
        ok = path.is_file() and _sha256(path) == path.with_name(path.name + ".sha256").read_text().strip()
    except OSError:
        return False
    if ok:
        _checked[path] = (st.st_size, st.st_mtime_ns)
    return ok


Progress = Callable[[int, int], None]


def install(release: Release | None = None, *, timeout: float = 30.0, progress: Progress | None = None) -> Path:
    """The release's agent for this platform in nbboard's cache, downloaded only when no good copy is there.

    The download is hashed as it arrives and refused (deleted, never made
    executable, never run) unless it matches the sha256 in ``release``.
    ``timeout`` bounds connecting and each wait for data, not the whole
    download (a few tens of MB on a slow link); ``progress(done, total)``
    is called as bytes arrive (total 0 when unknown).
    """
    release = release or RELEASE
    dest = cache_path(release)
    if _cached_ok(dest):
        return dest
    key = this_platform()
    if key not in release.assets:
        raise TunnelError(f"nbboard has no cloudflared download for {key[0]}-{key[1]}", INSTALL_HELP)
    asset, expected = release.assets[key]
    url = f"{release.base_url.rstrip('/')}/{asset}"
    registry.ensure_home()
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _download(url, out, timeout, progress)
        if got != expected:
            raise TunnelError(
                f"refused the downloaded cloudflared {release.version} ({asset}): its sha256 is {got}, "
                f"not the {expected} nbboard pins, so it was deleted and nothing was run",
                "the download was corrupted or tampered with: try again later, or " + INSTALL_HELP,
            )
        binary = _extract(tmp, dest.parent) if asset.endswith(".tgz") else tmp
        os.chmod(binary, 0o700)
        digest = _sha256(binary)
        os.replace(binary, dest)
        registry.write_private(dest.with_name(dest.name + ".sha256"), digest)
        return dest
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _download(url: str, out: object, timeout: float, progress: Progress | None) -> str:
    """Stream ``url`` into ``out``; the sha256 of what arrived."""
    import requests

    digest = hashlib.sha256()
    try:
        with requests.get(url, stream=True, timeout=(timeout, max(timeout, 30.0))) as resp:
            if resp.status_code != 200:
                raise TunnelError(f"could not download cloudflared from {url} (HTTP {resp.status_code})", INSTALL_HELP)
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            for block in resp.iter_content(1 << 16):
                done += len(block)
                if done > MAX_DOWNLOAD:
                    raise TunnelError(f"the cloudflared download from {url} is larger than expected", INSTALL_HELP)
                digest.update(block)
                out.write(block)  # type: ignore[attr-defined]
                if progress is not None:
                    progress(done, total)
    except requests.RequestException as e:
        raise TunnelError(
            f"cannot download cloudflared from {url}: {_cause(str(e))}",
            providers.offline_hint() + "; or " + INSTALL_HELP,
        ) from None
    return digest.hexdigest()


def _extract(archive: Path, where: Path) -> Path:
    """The ``cloudflared`` regular file out of a verified macOS .tgz (nothing else is taken from it)."""
    target = where / f".extract-{os.getpid()}"
    with tarfile.open(archive, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name in ("cloudflared", "./cloudflared") and m.isfile()), None)
        if member is None:
            raise TunnelError("the cloudflared archive holds no cloudflared program", INSTALL_HELP)
        src = tar.extractfile(member)
        assert src is not None
        with src, target.open("wb") as out:
            shutil.copyfileobj(src, out)
    return target


def print_progress(stream: object = None) -> Progress:
    """A progress callback writing "downloading cloudflared … 40%" to stderr, a step at a time."""
    shown: list[int] = [-1]
    tty = bool(getattr(stream or sys.stderr, "isatty", lambda: False)())

    def show(done: int, total: int) -> None:
        out = stream or sys.stderr
        step = 100 * done // total if total else done // (4 << 20) * 4  # per cent, or every 4 MB without a size
        if step // (5 if tty else 25) == shown[0] // (5 if tty else 25) and not (total and done >= total):
            return
        shown[0] = step
        text = f"{step}% of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.0f} MB"
        end = "\n" if total and done >= total else ("\r" if tty else "\n")
        out.write(f"downloading cloudflared: {text}{end}")  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]

    return show


def version(agent: Path, timeout: float = 15.0) -> str:
    """``cloudflared --version`` ("cloudflared version 2026.9.1 (built …)") → "2026.9.1"; raises if it won't run."""
    try:
        done = subprocess.run(
            [str(agent), "--version"], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TunnelError(f"cannot run cloudflared at {agent}: {e}", INSTALL_HELP) from None
    match = re.search(r"version\s+(\S+)", done.stdout + done.stderr)
    if done.returncode != 0 or match is None:
        said = (done.stdout + done.stderr).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise TunnelError(f"{agent} does not answer as cloudflared does ({said[0][:200]})", INSTALL_HELP)
    return match.group(1)


# ---------------------------------------------------------------------------
# The plug-in interface (see nbboard.tunnels.providers)


def usable() -> TunnelError | None:
    agent, _source = find_agent()
    if agent is not None or this_platform() in RELEASE.assets:
        return None
    system, arch = this_platform()
    return TunnelError(f"no cloudflared is installed and nbboard has no download for {system}-{arch}", INSTALL_HELP)


def auto() -> tuple[bool, str]:
    agent, source = find_agent()
    if agent is not None:
        return True, f"using cloudflared (a Cloudflare quick tunnel: no account needed; the agent from {source})"
    if this_platform() in RELEASE.assets:
        return True, (
            "using cloudflared (a Cloudflare quick tunnel: no account needed; "
            f"nbboard downloads its agent {RELEASE.version} once)"
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
        notes.append(f"cloudflared {RELEASE.version} {source}")
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


def _cause(text: str) -> str:
    low = text.lower()
    if "no such host" in low or "name resolution" in low or "failed to resolve" in low or "getaddrinfo" in low:
        return "its name does not resolve (DNS lookup failed)"
    if "refused" in low:
        return "the connection was refused"
    if "timeout" in low or "timed out" in low:
        return "no answer in time (a firewall may be dropping the traffic)"
    if "unreachable" in low:
        return "the network is unreachable"
    return text.strip()[:200]


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
            "Cloudflare's quick-tunnel service (api.trycloudflare.com)", _cause(agent.request_error)
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
