"""Opening, finding and closing tunnels for boards (called by nbboard.api only).

A tunnel is a detached helper process (gate + provider client) plus a record
beside the board's. The helper is recorded the moment it exists, so
``nbboard kill`` can stop it even if the caller dies while it connects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from .. import inputs, procs, registry
from ..errors import TunnelError
from ..instance import Instance
from ..registry import TunnelRecord
from . import lifecycle, providers
from .gate import TOKEN_PARAM
from .secrets import new_secret

PROVIDERS = providers.NAMES
OPEN_TIMEOUT = 30.0


@dataclass(frozen=True)
class TunnelResult:
    """An open tunnel. ``url`` carries the secret: show it to its owner only."""

    instance: Instance
    tunnel: TunnelRecord
    url: str
    reused: bool = False
    notes: tuple[str, ...] = ()


def parse_ttl(text: str | float | None) -> float | None:
    """ "2h", "30m", "90s", "1d" or seconds → seconds; None for no expiry."""
    if text is None or text == "":
        return None
    return inputs.duration(text, "--ttl")


def choose_provider(provider: str | None) -> tuple[str, str]:
    """(provider, why): see :func:`nbboard.tunnels.providers.choose` (the auto order is providers.NAMES)."""
    return providers.choose(provider)


def colab_warning() -> str:
    """Said once per user on Colab: its terms restrict web services, and a public link exposes data."""
    if "google.colab" not in sys.modules and not os.environ.get("COLAB_RELEASE_TAG"):
        return ""
    marker = registry.ensure_home() / ".colab-tunnel-warned"
    if marker.exists():
        return ""
    with contextlib.suppress(OSError):
        marker.touch(mode=0o600)
    return (
        "note: Colab's terms restrict long-running web services, and anyone holding this link sees every number "
        "this TensorBoard shows. Inside Colab the board needs no tunnel: %board shows it through Colab's own proxy."
    )


def full_url(tunnel: TunnelRecord) -> str:
    """The public URL with its secret, read from the 0600 secret file."""
    if not tunnel.auth:
        return tunnel.public_url
    try:
        secret = Path(tunnel.secret_file).read_text().strip()
    except OSError:
        raise TunnelError("the tunnel's secret is gone; close it and open a new one", "nbboard tunnel --stop") from None
    return tunnel.public_url.rstrip("/") + f"/?{TOKEN_PARAM}={secret}"


def open_tunnel(
    instance: Instance,
    provider: str | None = None,
    *,
    host: str | None = None,
    auth: bool = True,
    ttl: float | None = None,
    timeout: float = OPEN_TIMEOUT,
    protocol: str | None = None,
) -> TunnelResult:
    """Open (or reuse) the tunnel of a running board."""
    notes: list[str] = [w for w in (colab_warning(),) if w]
    if instance.tunnel is not None and lifecycle.helper_process(instance.tunnel) is not None:
        if provider in (None, "auto", instance.tunnel.provider) and instance.tunnel.auth == auth:
            return TunnelResult(instance, instance.tunnel, full_url(instance.tunnel), reused=True)
        lifecycle.stop_helper(instance.tunnel)
    chosen, why = choose_provider(provider)
    if why:
        notes.append(why)
    request = providers.Request(host=host, protocol=protocol, timeout=timeout)
    if provider not in (None, "", "auto"):  # the auto choice leaves what its pick does not read aside, as before
        providers.check_options(chosen, request)
    plan = providers.get(chosen).prepare(request)
    notes.extend(plan.notes)
    if not auth:
        notes.append("WARNING: --no-auth: anyone who finds the link sees every number this TensorBoard shows")
    home = registry.ensure_home()
    tag = uuid.uuid4().hex[:12]
    secret_file = ""
    if auth:
        secret_file = str(home / "secrets" / f"tunnel-{tag}.secret")
        registry.write_private(Path(secret_file), new_secret())
    token_file = ""
    if plan.secret:  # handed to the helper in a file it deletes on reading: never in an environment but the agent's
        token_file = str(home / "secrets" / f"{chosen}-{tag}.token")
        registry.write_private(Path(token_file), plan.secret)
    status_file = home / "tunnels" / f".status-{tag}.json"
    spec_file = home / "tunnels" / f".spec-{tag}.json"
    try:
        board_created = psutil.Process(instance.pid).create_time()
    except psutil.Error:
        raise TunnelError(f"TensorBoard on port {instance.port} (pid {instance.pid}) is gone", "nbboard list") from None
    expires_at = int(time.time() + ttl) if ttl else 0
    spec = {
        "provider": chosen,
        "options": dict(plan.options),
        "auth": auth,
        "secret_file": secret_file,
        "status_file": str(status_file),
        "board_pid": instance.pid,
        "board_create_time": board_created,
        "board_argv": list(instance.record.argv),
        "board_port": instance.port,
        "board_path_prefix": instance.path_prefix,
        "expires_at": expires_at,
        "token_file": token_file,
        "deadline": time.time() + timeout,
    }
    registry.write_private(spec_file, json.dumps(spec))
    log_path = registry.new_log_path("tunnel")
    argv = [sys.executable, "-m", "nbboard.tunnels.helper", str(spec_file)]
    child = procs.spawn_detached(argv, log_path, procs.owner_env())
    info = TunnelRecord(
        provider=chosen,
        public_url="",
        helper_pid=child.pid,
        helper_create_time=psutil.Process(child.pid).create_time(),
        gate_port=0,
        board_pid=instance.pid,
        expires_at=expires_at,
        secret_file=secret_file,
        log_path=log_path,
        auth=auth,
        helper_argv=tuple(argv),
    )
    info = registry.write_tunnel(info)  # recorded before it connects: kill can always find it
    status = _wait_status(child, status_file, timeout)
    with contextlib.suppress(OSError):
        status_file.unlink()
    if status.get("state") != "ready":
        lifecycle.stop_helper(info)
        for leftover in filter(None, (str(spec_file), token_file)):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        error = status.get("error") or registry.output_tail(log_path, 5) or "the tunnel helper exited"
        registry.remove_log_file(log_path)
        raise TunnelError(str(error) + "".join(f"\n  ({note})" for note in notes))
    info = registry.write_tunnel(
        dataclasses.replace(info, public_url=str(status["public_url"]), gate_port=int(status["gate_port"]))
    )
    notes.extend(providers.get(chosen).ready_notes(plan))
    return TunnelResult(dataclasses.replace(instance, tunnel=info), info, full_url(info), notes=tuple(notes))


def _wait_status(child: subprocess.Popen[bytes], status_file: Path, timeout: float) -> dict[str, object]:
    """The helper's report. It answers before ``timeout`` itself (naming the cause when it fails); the
    second of grace covers writing the report, not waiting on the provider."""
    deadline = time.monotonic() + timeout + 1.0
    delay = 0.02
    while time.monotonic() < deadline:
        if status_file.exists():
            with contextlib.suppress(ValueError):
                return registry.read_trusted_json(status_file)
        if child.poll() is not None:
            if status_file.exists():
                with contextlib.suppress(ValueError):
                    return registry.read_trusted_json(status_file)
            return {"state": "failed", "error": f"the tunnel helper exited with code {child.returncode}"}
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    return {
        "state": "failed",
        "error": str(providers.unreachable("the tunnel provider", f"no answer within {timeout:g} s")),
    }
