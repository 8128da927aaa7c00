"""ngrok through pyngrok, with the auth token kept out of every argv and every other process.

pyngrok passes ``PyngrokConfig.auth_token`` to the agent as ``--authtoken
<token>``, visible to anyone who lists processes. nbboard clears that field
and hands the token to the agent in the agent's own environment
(``NGROK_AUTHTOKEN``, which the ngrok agent reads itself) instead, never
through ``os.environ``. The agent gets a config of its
own with request inspection off (see AGENT_CONFIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

from .. import config, registry
from ..errors import TunnelError
from . import providers

NAME = "ngrok"
AUTO = "ngrok with a token"
OPTIONS: tuple[str, ...] = ()
TOKEN_HELP = (
    "get a token at https://dashboard.ngrok.com/get-started/your-authtoken, then either\n"
    "    export NGROK_AUTHTOKEN=…   or   nbboard tunnel --authtoken   (asks for it and saves it 0600;\n"
    "    --authtoken - reads it from stdin, --authtoken-file PATH from a file)\n"
    "    or, on Colab, add NGROK_AUTHTOKEN to the notebook's secrets (the key icon)\n"
    "  or use --provider cloudflared or --provider localtunnel, which need no account"
)


def save_token(token: str) -> str:
    token = token.strip()
    if not token or any(c.isspace() for c in token) or len(token) > 512:
        raise TunnelError("that does not look like an ngrok auth token", TOKEN_HELP)
    registry.ensure_home()
    path = config.home() / "ngrok.json"
    registry.write_private(path, json.dumps({"authtoken": token}))
    return str(path)


def installed() -> bool:
    """pyngrok is a dependency, but an environment can lack it (``pip install --no-deps``, or removed since)."""
    import importlib.util

    return importlib.util.find_spec("pyngrok") is not None


def find_token() -> tuple[str | None, str]:
    """(token, where it came from): the environment, nbboard's saved file, or Colab's secrets."""
    env = os.environ.get("NGROK_AUTHTOKEN", "").strip()
    if env:
        return env, "NGROK_AUTHTOKEN"
    try:
        data = registry.read_trusted_json(config.home() / "ngrok.json")
        saved = str(data.get("authtoken", "")).strip()
        if saved:
            return saved, "nbboard's saved token"
    except ValueError:
        pass
    try:  # Colab: the notebook's secrets; only readable from inside its kernel
        from google.colab import userdata  # type: ignore[import-not-found]

        value = userdata.get("NGROK_AUTHTOKEN")
        if value:
            return str(value).strip(), "Colab secrets"
    except Exception:  # noqa: BLE001 - not on Colab, or the secret is not granted
        pass
    return None, ""


#: The agent's config (0600, written per tunnel). Inspection off: the agent's local web API at 127.0.0.1:4040
#: has no authentication, and with inspection on it would hand any local user every captured request, the
#: secret link and the login cookie included. Nothing else the agent offers is needed either.
AGENT_CONFIG = """version: "3"
agent:
  inspect_db_size: -1
  update_check: false
  remote_management: false
"""
#: A network failure in the agent's own words, as opposed to an auth or config error.
_NETWORK = ("lookup ", "no such host", "dial tcp", "i/o timeout", "connection refused", "network is unreachable",
            "timed out", "tls handshake")  # fmt: skip


def usable() -> TunnelError | None:
    if installed():
        return None
    return TunnelError(
        "--provider ngrok needs pyngrok, which is not installed",
        "pip install pyngrok (nbboard depends on it; this environment lacks it), or use --provider cloudflared or "
        "localtunnel",
    )


def auto() -> tuple[bool, str]:
    """Chosen when a token is found (and pyngrok can drive the agent)."""
    token, source = find_token()
    if token and not installed():
        return False, (
            f"an ngrok auth token was found ({source}) but pyngrok is not installed (pip install pyngrok to use ngrok)"
        )
    if token:
        return True, f"using ngrok (auth token from {source})"
    return False, "no ngrok token found (set NGROK_AUTHTOKEN to use ngrok)"


def prepare(request: providers.Request) -> providers.Plan:
    """The token, found in the caller (Colab's secrets are readable only from the kernel), for the helper."""
    token = find_token()[0] or ""
    if not token:
        raise TunnelError("no ngrok auth token found", TOKEN_HELP)
    return providers.Plan(secret=token)


def ready_notes(plan: providers.Plan) -> list[str]:
    return []


def cleanup(state_dir: str, helper_pid: int) -> None:
    """The agent's config, left behind if the helper was killed before it could remove it."""
    with contextlib.suppress(OSError):
        agent_config_path(Path(state_dir), helper_pid).unlink()


async def open(gate_port: int, settings: providers.Settings) -> tuple[str, providers.Close]:
    """An https endpoint to 127.0.0.1:``gate_port``, through an agent that only this tunnel uses.

    The token reaches the agent through its environment alone: the helper
    holds it in memory and hands it to the agent's ``Popen`` as ``env=``
    (see :class:`_AgentPopen`); ``os.environ`` never holds it, so no other
    child and no other thread ever sees it.
    """
    try:
        from pyngrok import conf
    except ImportError:
        raise TunnelError(
            "pyngrok is not installed",
            "pip install pyngrok (nbboard depends on it; this environment lacks it), or use --provider cloudflared or "
            "localtunnel",
        ) from None
    if not settings.token:
        raise TunnelError("no ngrok auth token found", TOKEN_HELP)
    config_path = agent_config_path(Path(settings.state_dir), os.getpid())
    registry.write_private(config_path, AGENT_CONFIG)
    cfg = conf.PyngrokConfig(monitor_thread=False, log_event_callback=None, config_path=str(config_path))
    cfg.auth_token = None  # never on argv: the agent reads NGROK_AUTHTOKEN from its environment
    cfg.api_key = None
    cfg.startup_timeout = max(1, int(providers.left(settings.deadline)) - 1)  # type: ignore[assignment]
    if os.environ.get("NBBOARD_NGROK_PATH"):  # an ngrok agent already installed, instead of pyngrok's download
        cfg.ngrok_path = os.environ["NBBOARD_NGROK_PATH"]

    def close_sync() -> None:
        from pyngrok import ngrok as pyngrok

        with contextlib.suppress(Exception):
            pyngrok.kill(cfg)
        with contextlib.suppress(OSError):
            config_path.unlink()

    async def close() -> None:
        await asyncio.to_thread(close_sync)

    try:
        url = await asyncio.wait_for(
            providers.in_daemon_thread(lambda: _connect(cfg, gate_port, settings.token)),
            providers.left(settings.deadline) + 1,
        )
    except asyncio.TimeoutError:
        close_sync()
        raise providers.unreachable("ngrok's servers", "the agent did not connect in time") from None
    except BaseException:
        close_sync()
        raise
    return url, close


def agent_config_path(state_dir: Path, helper_pid: int) -> Path:
    """Where the helper ``helper_pid`` keeps its agent's config (removed with the tunnel)."""
    return state_dir / f"ngrok-agent-{helper_pid}.yml"


class _AgentPopen:
    """pyngrok's ``subprocess``, except that what it starts (the ngrok agent) gets ``NGROK_AUTHTOKEN`` in its
    own environment. pyngrok has no ``env`` option, and writing the token into ``os.environ`` from this worker
    thread would hand it to every process the helper starts meanwhile (issue 20, item 9)."""

    def __init__(self, token: str) -> None:
        import subprocess

        self._subprocess = subprocess
        self._token = token

    def __getattr__(self, name: str) -> object:
        return getattr(self._subprocess, name)

    def Popen(self, *args: object, **kwargs: object) -> object:  # noqa: N802 - subprocess's own name
        env = dict(kwargs.pop("env", None) or os.environ)  # type: ignore[call-overload]
        env["NGROK_AUTHTOKEN"] = self._token
        return self._subprocess.Popen(*args, env=env, **kwargs)  # type: ignore[call-overload]


def _connect(cfg: object, local_port: int, token: str) -> str:
    from pyngrok import ngrok, process
    from pyngrok.exception import PyngrokError, PyngrokNgrokError, PyngrokNgrokInstallError

    # The helper holds one tunnel, so this connect is the only user of pyngrok in its process.
    plain = process.subprocess
    process.subprocess = _AgentPopen(token)  # type: ignore[assignment]
    try:
        # An explicit upstream URL: pyngrok turns addr "127.0.0.1:P" into "http://localhost:127.0.0.1:P"
        # (caught by the stand-in agent test), and "localhost" may resolve to ::1, where the gate is not.
        tunnel = ngrok.connect(pyngrok_config=cfg, upstream={"url": f"http://127.0.0.1:{local_port}"}, inspect=False)
    except PyngrokNgrokInstallError as e:
        raise TunnelError(
            f"could not download the ngrok agent ({_first_line(e)})",
            providers.offline_hint() + "; or use --provider localtunnel, which downloads nothing",
        ) from None
    except PyngrokNgrokError as e:
        detail = " ".join(filter(None, [str(e), str(getattr(e, "ngrok_error", "") or "")]))
        if any(word in detail.lower() for word in _NETWORK):
            raise providers.unreachable("ngrok's servers", _first_line(e)) from None
        raise TunnelError(f"ngrok failed: {_first_line(e)}", TOKEN_HELP if "auth" in detail.lower() else "") from None
    except PyngrokError as e:
        raise TunnelError(f"ngrok failed: {_first_line(e)}") from None
    finally:
        process.subprocess = plain
    return str(tunnel.public_url)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else e.__class__.__name__
