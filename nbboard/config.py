"""Where nbboard keeps its state, and the defaults the API falls back to.

The registry must be private to one user: a world-writable shared directory
(what TensorBoard's own ``/tmp/.tensorboard-info`` is) lets anyone plant a
record that makes another user's tooling signal the wrong process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def home() -> Path:
    """The per-user state directory (``NBBOARD_HOME`` overrides it).

    Not created here: :func:`nbboard.registry.ensure_home` does that with the
    right permissions.
    """
    override = os.environ.get("NBBOARD_HOME")
    if override:
        return Path(override).expanduser().absolute()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "nbboard"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "nbboard"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nbboard"


@dataclass
class BoardConfig:
    """Defaults for the API; the magic's traitlets and the CLI's flags override them."""

    #: Seconds to wait for a new TensorBoard to answer before stopping it.
    start_timeout: float = 60.0
    #: Interface TensorBoard binds to unless the user passes ``--host``/``--bind_all``.
    bind_host: str = "127.0.0.1"
    #: Height of the inline board in pixels.
    height: int = 800
    #: Tunnel provider when none is named: "auto" or a name in nbboard.tunnels.providers.NAMES.
    tunnel_provider: str = "auto"
    #: A new board stops itself after serving no request for this long ("2h", or seconds); None: never.
    idle_timeout: float | str | None = None
    #: Keep a standby (TensorBoard imported ahead of time) for the next board; see nbboard.standby.
    standby: bool = True
    #: Seconds an unused standby waits before it exits by itself.
    standby_idle: float = 600.0
    #: Not a setting: called before a launch looks for a standby (the magic uses it to hurry the
    #: standby it is about to start, so that a start right after ``%load_ext`` waits for it).
    standby_hook: Callable[[], None] | None = field(default=None, repr=False, compare=False)


#: Set to 0 to never start or use a standby, whatever the configuration says.
STANDBY_SWITCH = "NBBOARD_STANDBY"


def standby_wanted(config: BoardConfig) -> bool:
    """Is the standby on? ``config.standby``, unless NBBOARD_STANDBY=0 (or false/no/off), or
    NBBOARD_TENSORBOARD names another command (a standby runs this interpreter's TensorBoard)."""
    if not config.standby:
        return False
    if os.environ.get(STANDBY_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return not os.environ.get("NBBOARD_TENSORBOARD")


_default = BoardConfig()


def get_default() -> BoardConfig:
    return _default


def set_default(config: BoardConfig) -> None:
    global _default
    _default = config
