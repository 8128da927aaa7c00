"""nbboard: TensorBoard in any notebook, one line, and it just works.

``%load_ext nbboard`` must stay cheap, so the API is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "start": "start",
    "list": "list_instances",
    "kill": "kill",
    "scan": "scan",
    "Instance": "Instance",
    "KillReport": "KillReport",
    "display": "display",
    "tunnel": "tunnel",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, _API[name])
    if name in ("NbboardError",):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'nbboard' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    from .magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unregister

    unregister(ipython)
