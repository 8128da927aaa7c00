"""Tunnel providers as plug-ins, and what to say when the internet is out of reach.

A provider is one module in this package, named in NAMES (in the order the
auto choice tries them). It declares:

- ``NAME``, ``AUTO`` (how the auto choice words it, for help texts) and
  ``OPTIONS`` (which of Request's provider-specific fields it reads);
- ``usable() -> TunnelError | None``: None when it can run here, else why not and the fix;
- ``auto() -> tuple[bool, str]``: would the auto choice take it, and why (or why not);
- ``prepare(request) -> Plan``: what the caller does before the helper starts, in
  the foreground (find a token, check a host, fetch an agent), and what the
  helper will need;
- ``async open(gate_port, settings) -> (public_url, close)``: run in the helper,
  makes the public URL point at the gate on 127.0.0.1:``gate_port`` and returns
  a coroutine function that takes it down;
- ``ready_notes(plan) -> list[str]``: extra lines to print once it is open;
- ``cleanup(state_dir, helper_pid)``: remove what a killed helper may leave.

The manager, helper, CLI, magic and help texts read providers from here and
name none of them (tests/test_cloudflared.py checks it); the one exception is
the CLI's ``--authtoken``, which saves ngrok's token through its module.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from ..errors import TunnelError, UsageError

if TYPE_CHECKING:
    import asyncio

#: Every provider, in the order the auto choice tries them.
NAMES = ("ngrok", "cloudflared", "localtunnel")
Close = Callable[[], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """What the caller asked for, as a provider's ``prepare`` sees it."""

    host: str | None = None  # localtunnel: --host
    protocol: str | None = None  # cloudflared: --protocol
    timeout: float = 30.0


@dataclass(frozen=True)
class Plan:
    """What ``prepare`` hands on: ``options`` go to the helper in its 0600 spec file; ``secret`` (a token)
    goes in a 0600 file the helper deletes on reading, so it is on no command line and in no environment."""

    options: Mapping[str, str] = field(default_factory=dict)
    secret: str = ""
    notes: tuple[str, ...] = ()  # said before the tunnel opens (which agent, say)


@dataclass(frozen=True)
class Settings:
    """What a provider may need. ``deadline`` is a ``time.monotonic()`` value: answer or fail before it."""

    deadline: float
    host: str = ""  # localtunnel: the server's base URL
    token: str = ""  # ngrok: the auth token, for the agent's environment only
    state_dir: str = ""  # a private directory for an agent's files (ngrok's config)
    options: Mapping[str, str] = field(default_factory=dict)  # the provider's own Plan.options


class Provider(Protocol):
    NAME: str
    AUTO: str
    OPTIONS: tuple[str, ...]

    def usable(self) -> TunnelError | None: ...
    def auto(self) -> tuple[bool, str]: ...
    def prepare(self, request: Request) -> Plan: ...
    async def open(self, gate_port: int, settings: Settings) -> tuple[str, Close]: ...
    def ready_notes(self, plan: Plan) -> list[str]: ...
    def cleanup(self, state_dir: str, helper_pid: int) -> None: ...


def choices_hint() -> str:
    return "use " + ", ".join(f"--provider {n}" for n in NAMES)


def get(name: str) -> Provider:
    if name not in NAMES:
        raise UsageError(f"unknown tunnel provider {name!r}", choices_hint())
    module: ModuleType = importlib.import_module(f"{__package__}.{name}")
    return cast(Provider, module)


def every() -> list[Provider]:
    return [get(n) for n in NAMES]


def check_options(name: str, request: Request) -> None:
    """A provider-specific option given for a provider that does not read it is a mistake worth a word."""
    for option in ("host", "protocol"):
        if getattr(request, option) and option not in get(name).OPTIONS:
            takers = [p.NAME for p in every() if option in p.OPTIONS]
            raise UsageError(
                f"--{option} does not apply to {name}", f"--{option} is for --provider {' or '.join(takers)}"
            )


def auto_rule() -> str:
    """The auto choice in words, for help texts: "ngrok with a token, else cloudflared, else localtunnel"."""
    return ", else ".join(p.AUTO for p in every())


def choose(provider: str | None) -> tuple[str, str]:
    """(provider, why): the named one if it can run here, or for "auto"/None the first in NAMES that takes it.

    ``why`` says what was chosen and why the ones before it were passed over ("" for a named provider).
    """
    if provider in (None, "", "auto"):
        passed: list[str] = []
        for p in every():
            take, why = p.auto()
            if take:
                return p.NAME, "; ".join([why, *passed])
            if why:
                passed.append(why)
        raise TunnelError("no tunnel provider can run here: " + "; ".join(passed))
    chosen = get(str(provider))
    problem = chosen.usable()
    if problem is not None:
        raise problem
    return chosen.NAME, ""


def offline_hint() -> str:
    """The fix to suggest when a provider cannot be reached: it depends on the host (:mod:`nbboard.hosts`)."""
    from .. import hosts

    return hosts.offline_hint()


def unreachable(what: str, cause: str) -> TunnelError:
    return TunnelError(f"cannot reach {what}: {cause}", offline_hint())


async def in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` (a DNS lookup or an HTTP request) without the helper having to wait for it at exit.

    asyncio's default executor is joined when the loop closes, so a lookup
    stuck in the resolver would hold the helper past its deadline; a daemon
    thread is simply left behind.
    """
    import asyncio  # here: the registry above is read at %load_ext and by every CLI command

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


def network_cause(text: str, fallback: str | None = None) -> str:
    """A network error, as a program printed it, in words a user can act on (else ``fallback``, else the text)."""
    low = text.lower()
    resolve = (
        "no such host",
        "name resolution",
        "nameresolution",
        "failed to resolve",
        "getaddrinfo",
        "name or service not known",
    )
    if any(s in low for s in resolve):
        return "its name does not resolve (DNS lookup failed)"
    if "refused" in low:
        return "the connection was refused"
    if "timeout" in low or "timed out" in low:
        return "no answer in time (a firewall may be dropping the traffic)"
    if "unreachable" in low:
        return "the network is unreachable"
    return text.strip()[:200] if fallback is None else fallback
