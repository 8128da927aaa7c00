"""Where nbboard keeps its state, and the defaults the API falls back to.

The registry must be private to one user: a world-writable shared directory
(what TensorBoard's own ``/tmp/.tensorboard-info`` is) lets anyone plant a
record that makes another user's tooling signal the wrong process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any


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


def _setting(default: Any, help: str, option: bool = True) -> Any:
    """A field of :class:`BoardConfig` with its help text; ``option``: also a ``c.BoardMagics.…`` trait."""
    return field(default=default, metadata={"help": help, "option": option})


@dataclass
class BoardConfig:
    """Defaults for the API; the magic's traitlets and the CLI's flags override them.

    Each setting is said here once, with its default and help text: the
    magic's configurable traits (:mod:`nbboard.magics`) and the defaults its
    usage and the CLI's help print are built from these fields.
    """

    start_timeout: float = _setting(60.0, "Seconds to wait for a new TensorBoard to answer.")
    bind_host: str = _setting(
        "127.0.0.1",
        "Interface TensorBoard binds to unless the user passes --host/--bind_all.",
        option=False,
    )
    height: int = _setting(800, "Height of the inline board, in pixels.")
    tunnel_provider: str = _setting("auto", "Provider for %board --tunnel when none is named.")
    idle_timeout: float | str | None = _setting(
        None, 'Stop boards that served no request for this long, e.g. "2h" or "30m" (empty: never).'
    )
    standby: bool = _setting(
        True,
        "Keep a standby: TensorBoard imported ahead of time in the background (from %load_ext, and after a "
        "board stops), so that the next board starts in a fraction of the time. NBBOARD_STANDBY=0 also turns it off.",
    )
    standby_idle: float = _setting(600.0, "Seconds an unused standby waits before it exits by itself.")


def settings() -> tuple[Field[Any], ...]:
    """The fields of :class:`BoardConfig` that the magic exposes as configurable traits."""
    return tuple(f for f in fields(BoardConfig) if f.metadata.get("option"))


#: The defaults as declared, for help texts (:func:`get_default` may differ after :func:`set_default`).
DEFAULTS = BoardConfig()


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
    """What the API uses when a call passes no ``config``."""
    return _default


def set_default(config: BoardConfig) -> None:
    """For a program that embeds nbboard: the settings every later API call without ``config`` uses.

    nbboard's own front ends do not call it: the magic passes its traits to
    each call, and the CLI passes its flags.
    """
    global _default
    _default = config
