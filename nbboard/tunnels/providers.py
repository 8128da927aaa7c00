"""The tunnel providers behind one small interface, and what to say when the internet is out of reach.

Each provider module (nbboard.tunnels.localtunnel, nbboard.tunnels.ngrok)
has ``async def open(gate_port, settings) -> (public_url, close)``: it makes
the public URL point at the gate on 127.0.0.1:``gate_port`` and returns a
coroutine function that takes it down. The helper knows nothing else about
them.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import TunnelError

NAMES = ("ngrok", "localtunnel")
Close = Callable[[], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What a provider may need. ``deadline`` is a ``time.monotonic()`` value: answer or fail before it."""

    deadline: float
    host: str = ""  # localtunnel: the server's base URL
    token: str = ""  # ngrok: the auth token, for the agent's environment only
    state_dir: str = ""  # ngrok: a private directory for the agent's config file


class Provider(Protocol):
    async def open(self, gate_port: int, settings: Settings) -> tuple[str, Close]: ...


def get(name: str) -> Provider:
    if name not in NAMES:
        raise TunnelError(f"unknown tunnel provider {name!r}", "use --provider ngrok or --provider localtunnel")
    return importlib.import_module(f"{__package__}.{name}")  # type: ignore[return-value]


def on_kaggle() -> bool:
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.environ.get("KAGGLE_URL_BASE"))


def offline_hint() -> str:
    """The fix to suggest when a provider cannot be reached: it depends on where we run."""
    if on_kaggle():
        return (
            "this is Kaggle, whose notebooks start with Internet off: turn Internet on in the notebook's settings "
            "(the Settings panel, Internet toggle; it needs a phone-verified account), then run this again"
        )
    return (
        "this machine may be offline, or a firewall or missing DNS blocks it: check the network "
        "(set HTTPS_PROXY if you must go through a proxy), or try the other --provider"
    )


def unreachable(what: str, cause: str) -> TunnelError:
    return TunnelError(f"cannot reach {what}: {cause}", offline_hint())


async def in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` (a DNS lookup or an HTTP request) without the helper having to wait for it at exit.

    asyncio's default executor is joined when the loop closes, so a lookup
    stuck in the resolver would hold the helper past its deadline; a daemon
    thread is simply left behind.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(_settle, future, None, e)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, daemon=True, name="nbboard-provider").start()
    return await future


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def left(deadline: float) -> float:
    """Seconds until ``deadline`` (monotonic), never negative."""
    return max(0.0, deadline - time.monotonic())
