"""The cloudflared agent binary: the user's own (``NBBOARD_CLOUDFLARED_PATH``, then PATH), else a pinned release
downloaded once into nbboard's cache and run only if its sha256 is the one kept here.

Separate from the provider (:mod:`nbboard.tunnels.cloudflared`) because it is the only code in nbboard that
fetches and runs a program from the Internet, and so the one to read first when checking that.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import config, registry
from ..errors import TunnelError
from . import providers

PATH_VAR = "NBBOARD_CLOUDFLARED_PATH"
#: The largest download accepted (the agent is about 40 MB).
MAX_DOWNLOAD = 200 * 1024 * 1024


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
            f"cannot download cloudflared from {url}: {providers.network_cause(str(e))}",
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
