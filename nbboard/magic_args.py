"""Reading a ``%board`` line the way a person meant it.

Tutorials and blogs make people type ``--logdir=logs``, ``--logdir "a b"``,
``-- logdir logs`` or ``— logdir logs`` (an em dash a blog's typography made of
two hyphens). What is unambiguous is accepted, with a note; the rest is
refused with the line the user probably meant.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from . import inputs
from .errors import UsageError
from .tunnels import providers

#: nbboard's own options: name → takes a value?
OWN_OPTIONS = {
    "logdir": True,
    "logdir_spec": True,
    "port": True,
    "height": True,
    "timeout": True,
    "idle_timeout": True,
    "restart": False,
    "no_display": False,
    "tunnel": None,  # an optional provider name
    "pid": True,
    "help": False,
}
ACTIONS = ("list", "kill", "stop", "help")
PROVIDERS = ("auto", *providers.NAMES)
USAGE = """\
%board --logdir DIR [options] [TensorBoard flags…]   start (or reuse) TensorBoard and show it inline
    --logdir_spec name1:/path1,name2:/path2       several directories side by side, instead of --logdir
    --port N          serve on port N (default: a free one)
    --height PX       height of the inline board (default 800)
    --timeout S       seconds to wait for TensorBoard to answer (default 60)
    --idle-timeout T  stop the board after T without a request, e.g. 2h (default: never)
    --restart         replace the running board for this logdir
    --no-display      print the link instead of showing the board
    --tunnel [PROVIDERS]   also open a public link protected by a secret
    any other flag goes to TensorBoard, e.g. --samples_per_plugin scalars=500
%board                 show the newest running board again; with none, find logdirs under the working directory
%board list            every TensorBoard of this user; dead or hung ones stay marked stale until the next start or kill
%board kill [--port N | --pid N | --logdir DIR]   stop boards (all of them without a selector)
%board --help          this help""".replace("PROVIDERS", "|".join(providers.NAMES))

HELP_HINT = "%board --help shows every option"

_DASHES = re.compile(r"(^|\s)[\u2014\u2013\u2212\u2012\u2015]{1,2}\s?(?=[A-Za-z])")


@dataclass(frozen=True)
class BoardCommand:
    """What a ``%board`` line asks for."""

    action: str = "show"  # show | list | kill | help
    logdir: str | None = None
    logdir_spec: str | None = None
    port: int | None = None
    height: int | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    restart: bool = False
    display: bool = True
    tunnel: str | None = None
    pid: int | None = None
    extra: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _split(line: str) -> list[str]:
    try:
        return (
            shlex.split(line, posix=True) if os.name != "nt" else [_unquote(t) for t in shlex.split(line, posix=False)]
        )
    except ValueError as e:
        raise UsageError(
            f"cannot read {line.strip()!r}: {e}", 'close the quote, e.g. %board --logdir "my logs"'
        ) from None


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _suggest(name: str) -> str | None:
    """The own option ``name`` was probably meant to be, spelt as in USAGE (``--no-display``)."""
    return inputs.closest(name, [f"--{o.replace('no_display', 'no-display')}" for o in OWN_OPTIONS])


def parse(line: str) -> BoardCommand:
    """Parse a ``%board`` line; raises UsageError with a suggested line."""
    notes: list[str] = []
    fixed = _DASHES.sub(lambda m: m.group(1) + "--", line)
    if fixed != line:
        notes.append("read the long dash as -- (pasted text often turns -- into —)")
    tokens = _split(fixed)
    values: dict[str, object] = {}
    extra: list[str] = []
    positional: list[str] = []
    action = "show"
    if tokens and tokens[0] in ACTIONS:
        word = tokens.pop(0)
        action = "kill" if word == "stop" else word
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok == "--" and i < len(tokens) and tokens[i].replace("-", "_") in OWN_OPTIONS:
            tok = "--" + tokens[i]
            i += 1
            notes.append(f"read '-- {tok[2:]}' as '{tok}'")
        if not tok.startswith("-") or tok == "-" or tok == "--":
            if tok != "--":
                positional.append(tok)
            continue
        raw_name, eq, value = tok.lstrip("-").partition("=")
        name = raw_name.replace("-", "_").lower()
        if name in OWN_OPTIONS:
            takes = OWN_OPTIONS[name]
            if takes is True:
                if not eq:
                    if i >= len(tokens):
                        raise UsageError(
                            f"--{raw_name} needs a value",
                            f"e.g. %board --{raw_name} {'logs' if 'logdir' in name else '6006'}",
                        )
                    value = tokens[i]
                    i += 1
                values[name] = value
            elif takes is None:
                if not eq and i < len(tokens) and tokens[i] in PROVIDERS:
                    value = tokens[i]
                    i += 1
                if value and value not in PROVIDERS:
                    raise UsageError(
                        f"unknown tunnel provider {value!r}",
                        "use --tunnel, " + ", ".join(f"--tunnel {n}" for n in providers.NAMES),
                    )
                values[name] = value or "auto"
            else:
                values[name] = True
            continue
        guess = _suggest(name)
        own = guess.lstrip("-").replace("-", "_") if guess else ""
        if guess is not None and own not in values and not (own == "logdir" and "logdir_spec" in values):
            raise UsageError(f"unknown option {tok.split('=')[0]!r}: did you mean {guess}?", HELP_HINT)
        # A TensorBoard flag: keep it, with its value if the next token is one.
        if not eq and i < len(tokens) and not tokens[i].startswith("-"):
            tok = f"{tok}={tokens[i]}"
            i += 1
        extra.append(tok if tok.startswith("--") else "-" + tok)
    if values.get("help"):
        action = "help"
    if positional:
        if action == "show" and "logdir" not in values and len(positional) == 1:
            values["logdir"] = positional[0]
        else:
            raise UsageError(f"unexpected {' '.join(map(repr, positional))}", HELP_HINT)
    if action in ("list",) and (values or extra):
        raise UsageError("%board list takes no options", "%board list")
    if action == "kill" and (extra or set(values) - {"port", "pid", "logdir"}):
        raise UsageError("%board kill takes only --port, --pid or --logdir", "%board kill --port 6006")
    return BoardCommand(
        action=action,
        logdir=_opt_str(values.get("logdir")),
        logdir_spec=_opt_str(values.get("logdir_spec")),
        port=_maybe(inputs.port, values.get("port")),
        height=_maybe(_height, values.get("height")),
        timeout=_maybe(inputs.seconds, values.get("timeout")),
        idle_timeout=_maybe(inputs.idle_timeout, values.get("idle_timeout")),
        restart=bool(values.get("restart")),
        display=not values.get("no_display"),
        tunnel=_opt_str(values.get("tunnel")),
        pid=_maybe(inputs.pid, values.get("pid")),
        extra=tuple(extra),
        notes=tuple(notes),
    )


T = TypeVar("T")


def _maybe(parse: Callable[[object], T], value: object) -> T | None:
    return None if value is None else parse(value)


def _height(value: object) -> int:
    return inputs.integer(value, "--height", 100, 10000, "600")


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
