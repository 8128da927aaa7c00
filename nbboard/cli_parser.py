"""The ``nbboard`` command line's grammar: subcommands, options, and errors that say what to type instead.

Apart from :mod:`nbboard.cli` (which runs the commands) so that the grammar reads in one place. The start options
are shared with ``%board`` (:mod:`nbboard.options`); an unknown word gets "did you mean …?", a TensorBoard flag
given without ``--`` is shown where it goes.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import __version__, inputs
from .errors import UsageError
from .tunnels import providers

#: Exit codes, as the README documents them.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"nbboard: error: {message}\n  hint: {self.prog} --help shows every option\n")
        raise SystemExit(EXIT_USAGE)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, but an unknown word is reported by the subcommand it was given to, with a suggestion."""
        commands = getattr(self, "commands", None)
        word = next((w for w in (sys.argv[1:] if args is None else args) if not w.startswith("-")), None)
        if commands and word is not None and word not in commands:
            self.unknown_command(word, list(commands))
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            sub = getattr(self, "commands", {}).get(getattr(parsed, "command", None), self)
            sub.unrecognized(unknown)
        return parsed

    def unknown_command(self, word: str, commands: list[str]) -> None:
        """``nbboard strat``: "did you mean start?" (a prefix, else the closest name), not argparse's bare list."""
        prefixed = [c for c in commands if c.startswith(word.lower())]
        close = difflib.get_close_matches(word.lower(), commands, n=1, cutoff=0.6)
        guess = prefixed[0] if len(prefixed) == 1 else (close[0] if close else None)
        if guess is not None:
            self.error(f"unknown command {word!r}: did you mean {guess}?")
        self.error(f"unknown command {word!r}; the commands are {', '.join(commands)}")

    def unrecognized(self, words: list[str]) -> None:
        word = next((w for w in words if w.startswith("-")), words[0])
        if not word.startswith("-"):
            self.error(f"unexpected argument {word!r}")
        name = word.split("=", 1)[0]
        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        guess = inputs.closest(name, options)
        if guess is not None:
            self.error(f"unknown option {name!r}: did you mean {guess}?")
        if self.get_default("takes_extra"):
            logdir = " --logdir DIR" if "--logdir" in options else ""
            self.error(
                f"unknown option {name!r}; TensorBoard's own flags go after --, e.g. "
                f"{self.prog}{logdir} -- {word if '=' in word else name + '=VALUE'}"
            )
        self.error(f"unknown option {name!r}")


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` from an :mod:`nbboard.inputs` parser: bad values exit 2 with its message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as e:  # argparse names the flag itself: "argument --port: invalid value 'abc': …"
            raise argparse.ArgumentTypeError(re.sub(r"^invalid --\S+ ", "invalid value ", e.message)) from None

    convert.__name__ = parse.__name__
    return convert


_port = _typed(inputs.port)
_pid = _typed(inputs.pid)
_seconds = _typed(inputs.seconds)
_idle = _typed(inputs.idle_timeout)


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after the first ``--`` goes to TensorBoard untouched."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def build_parser(handlers: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The ``nbboard`` parser; ``handlers`` maps each subcommand to the function that runs it."""
    from . import config

    parser = _Parser(
        prog="nbboard",
        description="Run TensorBoard in the background, reuse it, list it, stop it.",
        epilog=f"nbboard keeps its records, logs and locks in\n  {config.home()}\n(set NBBOARD_HOME to move it).\n"
        "Exit codes: 0 done, 1 an error nbboard explains, 2 bad usage, 130 interrupted, 3 a bug in nbboard.",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep that path on one line
    )
    parser.add_argument("--version", action="version", version=f"nbboard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "start",
        help="start (or reuse) a TensorBoard; extra TensorBoard flags go after --",
        description="Start a TensorBoard for a logdir, or reuse the live one for the same logdir and flags; "
        "print its URL and return. Extra TensorBoard flags go after --, e.g. "
        "nbboard start runs -- --samples_per_plugin scalars=500",
    )
    p.add_argument("logdir_pos", nargs="?", metavar="LOGDIR", help="same as --logdir")
    _start_options(p, logdir=True)
    p.set_defaults(func=handlers["start"], takes_extra=True)

    p = sub.add_parser(
        "list",
        help="show every TensorBoard of this user (nbboard's and %%tensorboard's); a dead or hung one stays listed, "
        "marked stale with the reason, until the next start or kill clears it",
        description="Show every TensorBoard of this user, nbboard's and %tensorboard's. list changes nothing: a "
        "dead or hung board stays listed, marked stale with the reason, until the next start or kill clears it.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=handlers["list"])

    p = sub.add_parser(
        "kill",
        help="stop boards and clear stale records (all of them without a selector)",
        description="Stop boards (each with its whole process tree) and clear stale records. Without a selector: "
        "every board and tunnel of this user, every stale record, old logs and idle lock files. Only your own "
        "processes are ever signalled.",
    )
    p.add_argument("--port", type=_port, help="only the board on this port")
    p.add_argument("--pid", type=_pid, help="only the board with this pid")
    p.add_argument("--logdir", help="only the board(s) serving this logdir")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(func=handlers["kill"])

    p = sub.add_parser("demo", help="write an example logdir and start TensorBoard on it")
    p.add_argument("--dir", default="nbboard-demo", help="where to write it (default: ./nbboard-demo)")
    p.add_argument("--no-start", action="store_true", help="only write the logs")
    _start_options(p)
    p.set_defaults(func=handlers["demo"], takes_extra=True)

    p = sub.add_parser("tunnel", help="a public URL for a board (protected by a secret), e.g. from Colab or Kaggle")
    p.add_argument("--logdir", help="start or reuse the board for this logdir, then open its tunnel")
    p.add_argument("--port", type=_port, help="open the tunnel of the running board on this port")
    p.add_argument(
        "--provider",
        choices=["auto", *providers.NAMES],
        default=None,
        help=f"default: {providers.auto_rule()}",
    )
    p.add_argument("--host", help="localtunnel server (default https://localtunnel.me)")
    p.add_argument(
        "--protocol",
        default=None,
        help="cloudflared's transport to Cloudflare: quic (its default) or http2, where UDP is blocked",
    )
    p.add_argument("--no-auth", action="store_true", help="no secret: anyone with the link sees the board")
    p.add_argument("--ttl", help="close the tunnel after this long, e.g. 2h, 30m")
    p.add_argument("--timeout", type=_seconds, default=30.0, help="seconds to wait for the provider (default 30)")
    p.add_argument(
        "--authtoken",
        nargs="?",
        const="",
        metavar="TOKEN",
        help="save an ngrok auth token (0600): alone it asks for it, '-' reads it from stdin "
        "(a TOKEN typed here is visible to other local users; NGROK_AUTHTOKEN in the environment works too)",
    )
    p.add_argument("--authtoken-file", metavar="PATH", help="save the ngrok auth token read from this file (0600)")
    p.add_argument("--stop", action="store_true", help="close the tunnel (of --port, or all); boards keep running")
    p.add_argument("--show-url", action="store_true", help="print the full URL(s), secret included, again")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=handlers["tunnel"], takes_extra=True)
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser


def _start_options(p: argparse.ArgumentParser, logdir: bool = False) -> None:
    """The start options, as ``%board`` has them too (:mod:`nbboard.options`), plus ``--json``."""
    from .options import add_start_options

    add_start_options(p, _typed, logdir=logdir)
    p.add_argument("--json", action="store_true", help="print the instance as JSON")
