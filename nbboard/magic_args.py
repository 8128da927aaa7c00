"""Reading a ``%board`` line the way a person meant it.

Tutorials and blogs make people type ``--logdir=logs``, ``--logdir "a b"``,
``-- logdir logs`` or ``— logdir logs`` (an em dash a blog's typography made of
two hyphens). What is unambiguous is accepted, with a note; the rest is
refused with the line the user probably meant.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

from . import inputs
from .config import DEFAULTS
from .errors import UsageError
from .options import add_start_options
from .tunnels import providers

ACTIONS = ("list", "kill", "stop", "help")
PROVIDERS = ("auto", *providers.NAMES)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise UsageError(message, HELP_HINT)


def _parser() -> argparse.ArgumentParser:
    """``%board``'s options: the start options the CLI shares (:mod:`nbboard.options`) and the magic's own."""
    parser = _Parser(prog="%board", add_help=False, allow_abbrev=False)
    add_start_options(parser)
    parser.add_argument("--height", metavar="PX", help=f"height of the inline board (default {DEFAULTS.height})")
    parser.add_argument(
        "--no-display", dest="no_display", action="store_true", help="print the link instead of showing the board"
    )
    parser.add_argument(
        "--tunnel",
        metavar="[" + "|".join(providers.NAMES) + "]",
        help="also open a public link protected by a secret",
    )
    parser.add_argument("--pid", help=argparse.SUPPRESS)  # a kill selector, named on the kill line
    parser.add_argument("--help", action="store_true", help=argparse.SUPPRESS)
    return parser


PARSER = _parser()
#: Each own option's name as the rewrite normalises it (``no_display``) → its spelling in PARSER (``--no-display``).
_SPELLING = {
    option.lstrip("-").replace("-", "_"): option for action in PARSER._actions for option in action.option_strings[:1]
}
#: nbboard's own options: name → takes a value? (None: an optional provider name.)
OWN_OPTIONS = {action.dest: None if action.dest == "tunnel" else action.nargs != 0 for action in PARSER._actions}


def _usage() -> str:
    lines = ["%board --logdir DIR [options] [TensorBoard flags…]   start (or reuse) TensorBoard and show it inline"]
    for action in PARSER._actions:
        if action.help == argparse.SUPPRESS or action.dest == "logdir":
            continue
        label = f"    {action.option_strings[0]}" + (f" {action.metavar}" if action.nargs != 0 else "")
        lines.append(label.ljust(21) + (" " if len(label) < 21 else "   ") + action.help)
    return "\n".join(
        [
            *lines,
            "    any other flag goes to TensorBoard, e.g. --samples_per_plugin scalars=500",
            "%board                 show the newest running board again; with none, find logdirs under the working "
            "directory",
            "%board list            every TensorBoard of this user; dead or hung ones stay marked stale until the next "
            "start or kill",
            "%board kill [--port N | --pid N | --logdir DIR]   stop boards (all of them without a selector)",
            "%board --help          this help",
        ]
    )


HELP_HINT = "%board --help shows every option"
USAGE = _usage()

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


@dataclass
class _Rewritten:
    """A ``%board`` line as :func:`_rewrite` leaves it for PARSER."""

    action: str = "show"
    own: list[str] = field(default_factory=list)  # canonical: --name=value or --flag, as PARSER spells them
    given: set[str] = field(default_factory=set)  # own options named, in any spelling
    positional: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # TensorBoard's flags, each --name=value or --name
    notes: list[str] = field(default_factory=list)


def _rewrite(line: str) -> _Rewritten:
    """The forgiving pass: a person's spelling becomes PARSER's, TensorBoard's flags are set apart.

    Accepted with a note: long dashes (``— logdir``), ``-- logdir``. Accepted
    silently: ``--name=value``, quotes, ``-name``, ``--NAME``, ``-`` for ``_``,
    a leading ``list``/``kill``/``stop``/``help`` word, ``--tunnel`` with or
    without a provider. Refused: an unknown option close to an own one not yet
    given (with the suggestion), an own option missing its value, an unknown
    provider.
    """
    out = _Rewritten()
    fixed = _DASHES.sub(lambda m: m.group(1) + "--", line)
    if fixed != line:
        out.notes.append("read the long dash as -- (pasted text often turns -- into —)")
    tokens = _split(fixed)
    if tokens and tokens[0] in ACTIONS:
        word = tokens.pop(0)
        out.action = "kill" if word == "stop" else word
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok == "--" and i < len(tokens) and tokens[i].replace("-", "_") in OWN_OPTIONS:
            tok = "--" + tokens[i]
            i += 1
            out.notes.append(f"read '-- {tok[2:]}' as '{tok}'")
        if not tok.startswith("-") or tok == "-" or tok == "--":
            if tok != "--":
                out.positional.append(tok)
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
                out.own.append(f"{_SPELLING[name]}={value}")
            elif takes is None:
                if not eq and i < len(tokens) and tokens[i] in PROVIDERS:
                    value = tokens[i]
                    i += 1
                if value and value not in PROVIDERS:
                    raise UsageError(
                        f"unknown tunnel provider {value!r}",
                        "use --tunnel, " + ", ".join(f"--tunnel {n}" for n in providers.NAMES),
                    )
                out.own.append(f"{_SPELLING[name]}={value or 'auto'}")
            else:
                out.own.append(_SPELLING[name])
            out.given.add(name)
            continue
        guess = _suggest(name)
        own = guess.lstrip("-").replace("-", "_") if guess else ""
        if guess is not None and own not in out.given and not (own == "logdir" and "logdir_spec" in out.given):
            raise UsageError(f"unknown option {tok.split('=')[0]!r}: did you mean {guess}?", HELP_HINT)
        # A TensorBoard flag: keep it, with its value if the next token is one.
        if not eq and i < len(tokens) and not tokens[i].startswith("-"):
            tok = f"{tok}={tokens[i]}"
            i += 1
        out.extra.append(tok if tok.startswith("--") else "-" + tok)
    return out


def parse(line: str) -> BoardCommand:
    """Parse a ``%board`` line: the forgiving rewrite, then PARSER; raises UsageError with a suggested line."""
    line_ = _rewrite(line)
    args = PARSER.parse_args(line_.own)
    for name, value in vars(args).items():
        if value == []:  # argparse drops a value that is "--" even after "=" (--port=--): put it back
            setattr(args, name, "--")
    action, positional, extra = line_.action, line_.positional, line_.extra
    if args.help:
        action = "help"
    logdir = args.logdir
    if positional:
        if action == "show" and "logdir" not in line_.given and len(positional) == 1:
            logdir = positional[0]
        else:
            raise UsageError(f"unexpected {' '.join(map(repr, positional))}", HELP_HINT)
    if action in ("list",) and (line_.given or extra):
        raise UsageError("%board list takes no options", "%board list")
    if action == "kill" and (extra or line_.given - {"port", "pid", "logdir"}):
        raise UsageError("%board kill takes only --port, --pid or --logdir", "%board kill --port 6006")
    return BoardCommand(
        action=action,
        logdir=logdir,
        logdir_spec=args.logdir_spec,
        port=_maybe(inputs.port, args.port),
        height=_maybe(_height, args.height),
        timeout=_maybe(inputs.seconds, args.timeout),
        idle_timeout=_maybe(inputs.idle_timeout, args.idle_timeout),
        restart=args.restart,
        display=not args.no_display,
        tunnel=args.tunnel,
        pid=_maybe(inputs.pid, args.pid),
        extra=tuple(extra),
        notes=tuple(line_.notes),
    )


T = TypeVar("T")


def _maybe(parse: Callable[[object], T], value: object) -> T | None:
    return None if value is None else parse(value)


def _height(value: object) -> int:
    return inputs.integer(value, "--height", 100, 10000, "600")


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
