"""ngrok through pyngrok, with the auth token kept out of every argv.

pyngrok passes ``PyngrokConfig.auth_token`` to the agent as ``--authtoken
<token>``, visible to anyone who lists processes. nbboard clears that field
and hands the token to the agent in its environment (``NGROK_AUTHTOKEN``,
which the ngrok agent reads itself) instead.
"""

from __future__ import annotations

import json
import os

from .. import config, registry
from ..errors import TunnelError

TOKEN_HELP = (
    "get a token at https://dashboard.ngrok.com/get-started/your-authtoken, then either\n"
    "    export NGROK_AUTHTOKEN=…   or   nbboard tunnel --authtoken -   (reads it from stdin, saves it 0600)\n"
    "    or, on Colab, add NGROK_AUTHTOKEN to the notebook's secrets (the key icon)\n"
    "  or use --provider localtunnel, which needs no account"
)


def save_token(token: str) -> str:
    token = token.strip()
    if not token or any(c.isspace() for c in token) or len(token) > 512:
        raise TunnelError("that does not look like an ngrok auth token", TOKEN_HELP)
    registry.ensure_home()
    path = config.home() / "ngrok.json"
    registry.write_private(path, json.dumps({"authtoken": token}))
    return str(path)


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


def connect(local_port: int) -> tuple[str, object]:
    """Open an https tunnel to 127.0.0.1:``local_port``; returns (public URL, pyngrok tunnel).

    Needs NGROK_AUTHTOKEN in this process's environment (the helper sets it).
    """
    try:
        from pyngrok import conf, ngrok
        from pyngrok.exception import PyngrokError, PyngrokNgrokError, PyngrokNgrokInstallError
    except ImportError:
        raise TunnelError("pyngrok is not installed", "pip install pyngrok, or use --provider localtunnel") from None
    cfg = conf.PyngrokConfig(monitor_thread=False, log_event_callback=None)
    cfg.auth_token = None  # never on argv: the agent reads NGROK_AUTHTOKEN from its environment
    if os.environ.get("NBBOARD_NGROK_PATH"):  # an ngrok agent already installed, instead of pyngrok's download
        cfg.ngrok_path = os.environ["NBBOARD_NGROK_PATH"]
    try:
        # An explicit upstream URL: pyngrok turns addr "127.0.0.1:P" into "http://localhost:127.0.0.1:P"
        # (caught by the stand-in agent test), and "localhost" may resolve to ::1, where the gate is not.
        tunnel = ngrok.connect(pyngrok_config=cfg, upstream={"url": f"http://127.0.0.1:{local_port}"})
    except PyngrokNgrokInstallError as e:
        raise TunnelError(
            f"could not download the ngrok agent ({_first_line(e)})",
            "this machine may be offline or block ngrok's download: use --provider localtunnel",
        ) from None
    except PyngrokNgrokError as e:
        raise TunnelError(f"ngrok failed: {_first_line(e)}", TOKEN_HELP if "auth" in str(e).lower() else "") from None
    except PyngrokError as e:
        raise TunnelError(f"ngrok failed: {_first_line(e)}") from None
    return str(tunnel.public_url), tunnel


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else e.__class__.__name__
