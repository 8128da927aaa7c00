"""nbboard: TensorBoard in any notebook, one line, and it just works.

``%load_ext nbboard`` must stay cheap, so the API is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Public name -> (module, attribute), imported on first use.
_API = {
    "start": ("api", "start"),
    "list": ("api", "list_instances"),
    "kill": ("api", "kill"),
    "scan": ("api", "scan"),
    "collect_garbage": ("api", "collect_garbage"),
    "tunnel": ("api", "tunnel"),
    "KillReport": ("api", "KillReport"),
    "display": ("embed", "display"),
    "Instance": ("instance", "Instance"),
    "Logdir": ("logdirs", "Logdir"),
    "BoardConfig": ("config", "BoardConfig"),
    "NbboardError": ("errors", "NbboardError"),
}


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        module, attr = _API[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module 'nbboard' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    from .magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unregister

    unregister(ipython)
