"""The detached process that holds one tunnel: the gate plus the provider's client.

Started as ``python -m nbboard.tunnels.helper SPEC``; everything it needs is
in the 0600 spec file, the tunnel's secret in its own 0600 file and an ngrok
token (when the provider has one) in a 0600 file it deletes on reading, so no secret
is ever on a command line or in its environment. The provider (see
nbboard.tunnels.providers) opens the public URL; the helper reports
readiness, or the error in words a user can act on, in a status file before
the caller's deadline, then runs until TensorBoard is gone, the TTL expires,
or it is signalled. It never writes registry records: the API does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .. import links, liveness, procs, registry
from ..errors import NbboardError
from . import providers
from .gate import Gate

log = logging.getLogger("nbboard.helper")
CHECK_INTERVAL = 2.0
#: How long the board's process may stay alive without answering before the tunnel gives up on it. A board
#: reloading a large logdir on a machine busy with training can miss a probe or two; that is no reason to
#: take the owner's public link away. A board whose process is gone closes the tunnel at the next check.
SILENCE_ALLOWED = 30.0


def _status(path: str, **data: Any) -> None:
    registry.write_private(Path(path), json.dumps(data))


def _read_once(path: str) -> str:
    """A secret handed over in a 0600 file: read, then deleted, so it lives on only in this process."""
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


async def _run(spec: dict[str, Any]) -> int:
    # The deadline was set by the caller in wall-clock time; count down on the monotonic clock from here.
    deadline = time.monotonic() + max(1.0, float(spec.get("deadline") or time.time() + 30) - time.time() - 0.5)
    token = _read_once(spec.get("token_file", ""))
    secret = Path(spec["secret_file"]).read_text().strip() if spec["auth"] else None
    gate = Gate(spec["board_port"], secret, expires_at=float(spec.get("expires_at") or 0))
    gate_port = await gate.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            loop.add_signal_handler(sig, stop.set)
    options = {str(k): str(v) for k, v in (spec.get("options") or {}).items()}
    settings = providers.Settings(
        deadline=deadline,
        host=options.get("host", ""),
        token=token,
        state_dir=str(Path(spec["status_file"]).parent),
        options=options,
    )
    try:
        public_url, close = await providers.get(spec["provider"]).open(gate_port, settings)
    except NbboardError as e:
        _status(spec["status_file"], state="failed", error=str(e))
        await gate.close()
        return 1
    del token, settings
    checked = links.public_url(public_url)
    if checked is None:  # printed and stored from here on: never a provider's escape sequences or odd scheme
        _status(
            spec["status_file"],
            state="failed",
            error=f"the tunnel provider answered a malformed public URL: {links.printable(str(public_url), 80)}",
        )
        with contextlib.suppress(Exception):
            await close()
        await gate.close()
        return 1
    public_url = checked
    gate.public_url = public_url  # an https URL makes the login cookie Secure
    _status(spec["status_file"], state="ready", public_url=public_url, gate_port=gate_port)
    log.info(
        "tunnel ready: %s -> gate 127.0.0.1:%d -> TensorBoard 127.0.0.1:%d", public_url, gate_port, spec["board_port"]
    )
    board_argv = tuple(spec.get("board_argv") or ())
    last_answer = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_INTERVAL)
            if spec.get("expires_at") and time.time() >= spec["expires_at"]:
                log.info("TTL reached: closing the tunnel")
                break
            proc, why = await asyncio.to_thread(
                procs.find_launched, spec["board_pid"], spec["board_create_time"], board_argv
            )
            if proc is None:
                log.info("TensorBoard is gone (%s): closing the tunnel", why)
                break
            if await asyncio.to_thread(liveness.answers, spec["board_port"], spec.get("board_path_prefix", "")):
                last_answer = time.monotonic()
            elif time.monotonic() - last_answer > SILENCE_ALLOWED:
                log.info("TensorBoard has not answered for %.0f s: closing the tunnel", SILENCE_ALLOWED)
                break
    finally:
        closing = time.monotonic()
        with contextlib.suppress(Exception):
            await close()
        await gate.close()
        log.info("tunnel closed in %.2f s", time.monotonic() - closing)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec = registry.read_trusted_json(Path(args[0]))
    with contextlib.suppress(OSError):
        os.unlink(args[0])  # read once; nothing about the tunnel lingers on disk but its record
    try:
        return asyncio.run(_run(spec))
    except Exception as e:  # noqa: BLE001 - report through the status file, then exit
        with contextlib.suppress(Exception):
            _status(spec["status_file"], state="failed", error=f"tunnel helper failed: {e.__class__.__name__}: {e}")
        log.exception("tunnel helper failed")
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
