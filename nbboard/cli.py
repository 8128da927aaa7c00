"""``nbboard`` on the command line: argparse → nbboard.api → print.

One function per subcommand, taking the parsed namespace and returning an exit
code; argparse dispatches to it (``set_defaults(func=…)``). Numbers and the
logdir are parsed here, once, and handed to the API resolved. Exit codes: 0
done, 1 an error nbboard explains (with a hint), 2 bad usage, 130
interrupted, 3 a bug (a short report, never a bare traceback).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__, inputs
from .errors import NbboardError, UsageError
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


def _split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after the first ``--`` goes to TensorBoard untouched."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--logdir", help="directory (or gs:// s3:// hdfs:// URL) with event files")
    p.add_argument("--logdir_spec", "--logdir-spec", dest="logdir_spec", help="name1:/path1,name2:/path2")
    _start_options(p)
    p.set_defaults(func=cmd_start, takes_extra=True)

    p = sub.add_parser(
        "list",
        help="show every TensorBoard of this user (nbboard's and %%tensorboard's); a dead or hung one stays listed, "
        "marked stale with the reason, until the next start or kill clears it",
        description="Show every TensorBoard of this user, nbboard's and %tensorboard's. list changes nothing: a "
        "dead or hung board stays listed, marked stale with the reason, until the next start or kill clears it.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_list)

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
    p.set_defaults(func=cmd_kill)

    p = sub.add_parser("demo", help="write an example logdir and start TensorBoard on it")
    p.add_argument("--dir", default="nbboard-demo", help="where to write it (default: ./nbboard-demo)")
    p.add_argument("--no-start", action="store_true", help="only write the logs")
    _start_options(p)
    p.set_defaults(func=cmd_demo, takes_extra=True)

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
    p.set_defaults(func=cmd_tunnel, takes_extra=True)
    parser.commands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser


def _start_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=_port, help="port to serve on (default: a free one)")
    p.add_argument("--restart", action="store_true", help="replace a running board for the same logdir")
    p.add_argument("--timeout", type=_seconds, default=None, help="seconds to wait for TensorBoard (default 60)")
    p.add_argument(
        "--idle-timeout",
        type=_idle,
        default=None,
        metavar="T",
        help="stop the board after T without a request, e.g. 2h or 30m (default: never)",
    )
    p.add_argument("--json", action="store_true", help="print the instance as JSON")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    own, extra = _split_extra(args_in)
    parser = build_parser()
    try:
        args = parser.parse_args(own)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if extra and not getattr(args, "takes_extra", False):
            raise UsageError(
                f"`--` passes flags to TensorBoard, which `nbboard {args.command}` does not start",
                "use: nbboard start --logdir DIR -- --flag=value",
            )
        args.extra = extra
        return int(args.func(args))
    except UsageError as e:
        sys.stderr.write(f"nbboard: error: {e}\n")
        return EXIT_USAGE
    except NbboardError as e:
        sys.stderr.write(f"nbboard: error: {e}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(
            "nbboard: interrupted; a TensorBoard it had begun to start is recorded: "
            "nbboard list shows it, nbboard kill stops it\n"
        )
        return EXIT_INTERRUPTED
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - the last line of defence: a report, not a traceback
        sys.stderr.write(
            f"nbboard: internal error: {e.__class__.__name__}: {e}\n"
            "  this is an nbboard bug; please report it with the command you ran (set NBBOARD_DEBUG=1 for a traceback)\n"
        )
        import os

        if os.environ.get("NBBOARD_DEBUG"):
            import traceback

            traceback.print_exc()
        return EXIT_BUG


def _print_started(inst: Any, as_json: bool) -> None:
    from . import fmt

    if as_json:
        print(json.dumps(fmt.instance_json(inst)))
        return
    print(fmt.started(inst))
    print(inst.url)


def _survey_note(target: Any) -> None:
    from . import logdirs

    found = logdirs.survey(target)
    note = found.note() if found else ""
    if note:
        sys.stderr.write(note + "\n")


def cmd_start(args: argparse.Namespace) -> int:
    from . import api, logdirs

    if args.logdir_pos and args.logdir and args.logdir_pos != args.logdir:
        raise UsageError(f"two logdirs given: {args.logdir_pos!r} and --logdir {args.logdir!r}", "give one")
    logdir = args.logdir or args.logdir_pos
    if logdir is None and args.logdir_spec is None:
        logdir = _discovered_logdir()
    target = logdirs.resolve(logdir, args.logdir_spec)
    extra = logdirs.normalise_extra(args.extra)  # every usage error before the survey's note
    _survey_note(target)
    inst = api.start(
        target,
        port=args.port,
        extra_args=extra,
        timeout=args.timeout,
        restart=args.restart,
        idle_timeout=args.idle_timeout,
    )
    _print_started(inst, args.json)
    return EXIT_OK


def _discovered_logdir() -> str:
    """No logdir given: the one directory of event files under the working directory, or a usage error
    listing what was found (several) or saying nothing was."""
    import os

    from . import discover, fmt

    found = discover.discover(os.getcwd())
    if len(found.candidates) == 1:
        only = found.candidates[0]
        sys.stderr.write(
            f"no logdir given; found event files in {only.path} ({fmt.candidate_detail(only.runs, only.latest)})\n"
        )
        return only.path
    if found.candidates:
        raise UsageError(f"no logdir given; {fmt.candidates(found, 'nbboard start')}", "run one of these lines")
    stopped = f" (the search stopped early: {found.truncated})" if found.truncated else ""
    raise UsageError(
        f"no logdir given, and no event files (events.out.tfevents.*) under {found.root}{stopped}",
        "nbboard start --logdir DIR (the directory your training writes to)",
    )


def cmd_list(args: argparse.Namespace) -> int:
    from . import api, fmt

    found = api.scan()
    if args.json:
        rows = [fmt.instance_json(i) for i in found.instances]
        rows += [fmt.ended_json(n) for n in found.ended] + [fmt.standby_json(s) for s in found.standbys]
        print(json.dumps(rows, indent=1))
    else:
        print(fmt.table(found.instances, ended=found.ended, standbys=found.standbys))
    note = fmt.skipped(found.skipped)
    if note:
        sys.stderr.write(note + "\n")
    return EXIT_OK


def cmd_kill(args: argparse.Namespace) -> int:
    from . import api, fmt, logdirs

    target = logdirs.resolve(args.logdir, check=False) if args.logdir is not None else None
    report = api.kill(port=args.port, pid=args.pid, logdir=target)
    if args.json:
        print(
            json.dumps(
                {
                    "stopped": [fmt.instance_json(i) for i in report.stopped],
                    "cleaned": [fmt.instance_json(i) for i in report.cleaned],
                    "skipped": [fmt.skipped_json(s) for s in report.skipped],
                    "standbys": [fmt.standby_json(s) for s in report.standbys],
                    "ended": [fmt.ended_json(n) for n in report.ended],
                }
            )
        )
        return EXIT_OK
    print(fmt.killed(report.stopped, report.cleaned, report.removed_logs, report.standbys, report.ended))
    note = fmt.skipped(report.skipped)
    if note:
        sys.stderr.write(note + "\n")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything on stdout (``--json``: only the JSON): what was written, how to open the board, the notebook
    line, and how to stop it, so a first-time user has all three without reading further."""
    from . import api, demo, fmt

    root = demo.write_demo_logs(args.dir + "/logs")
    wrote = f"wrote example summaries (scalars, histogram, image, text) for runs {', '.join(demo.RUNS)} to {root}"
    if not args.json:
        print(wrote, flush=True)
    if args.no_start:
        return EXIT_OK
    inst = api.start(
        str(root),
        port=args.port,
        extra_args=args.extra,
        timeout=args.timeout,
        restart=args.restart,
        idle_timeout=args.idle_timeout,
    )
    if args.json:
        print(json.dumps(fmt.instance_json(inst)))
        return EXIT_OK
    print(fmt.started(inst))
    print(fmt.demo_next_steps(inst, str(root)))
    return EXIT_OK


def _authtoken(args: argparse.Namespace) -> str:
    """The ngrok token from --authtoken-file, stdin (``-``), a prompt (no value) or, with a warning, argv."""
    if args.authtoken is not None and args.authtoken_file is not None:
        raise UsageError("give --authtoken or --authtoken-file, not both")
    if args.authtoken_file is not None:
        try:
            return next((line for line in Path(args.authtoken_file).read_text().splitlines() if line.strip()), "")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(
                f"cannot read --authtoken-file {args.authtoken_file}: {e.__class__.__name__}",
                "give a file holding just the token",
            ) from None
    if args.authtoken == "-":
        return sys.stdin.readline()
    if args.authtoken == "":
        if not sys.stdin.isatty():
            return sys.stdin.readline()
        import getpass

        return getpass.getpass("ngrok auth token (input hidden): ")
    sys.stderr.write(
        "warning: a token on the command line is visible to every user of this machine (ps) and stays in your "
        "shell history\n  next time: export NGROK_AUTHTOKEN=…, or nbboard tunnel --authtoken (asks for it), "
        "--authtoken-file PATH, or --authtoken - (reads stdin); on a shared machine, consider a new token at "
        "https://dashboard.ngrok.com/get-started/your-authtoken\n"
    )
    return str(args.authtoken)


def cmd_tunnel(args: argparse.Namespace) -> int:
    from . import api, logdirs
    from .tunnels import ngrok

    if args.authtoken is not None or args.authtoken_file is not None:
        path = ngrok.save_token(_authtoken(args))
        sys.stderr.write(f"saved the ngrok auth token to {path} (readable by you only)\n")
        if args.logdir is None and args.port is None:
            return EXIT_OK
    if args.stop:
        closed = api.close_tunnels(port=args.port)
        for inst in closed:
            print(f"closed the {inst.tunnel.provider} tunnel of TensorBoard on port {inst.port}")
        if not closed:
            print("no open tunnel")
        return EXIT_OK
    if args.show_url:
        urls = api.tunnel_urls(port=args.port)
        for inst, url in urls:
            print(f"{inst.port}: {url}")
        if not urls:
            print("no open tunnel (open one with: nbboard tunnel --logdir DIR)")
        return EXIT_OK
    if args.logdir is not None and args.port is not None:
        raise UsageError("give --logdir or --port, not both", "nbboard tunnel --port 6006")
    target = None
    if args.logdir is not None:
        target = logdirs.resolve(args.logdir)
        _survey_note(target)
    result = api.tunnel(
        target,
        port=args.port,
        provider=args.provider,
        host=args.host,
        auth=not args.no_auth,
        ttl=args.ttl,
        timeout=args.timeout,
        protocol=args.protocol,
        extra_args=args.extra,
    )
    for note in result.notes:
        sys.stderr.write(note + "\n")
    if args.json:
        print(
            json.dumps(
                {
                    "port": result.instance.port,
                    "pid": result.instance.pid,
                    "provider": result.tunnel.provider,
                    "url": result.url,
                    "reused": result.reused,
                }
            )
        )
        return EXIT_OK
    verb = "reusing the" if result.reused else "opened a"
    sys.stderr.write(
        f"{verb} {result.tunnel.provider} tunnel to TensorBoard on port {result.instance.port} for {result.instance.logdir}\n"
    )
    print(result.url)
    sys.stderr.write(f"close it with: nbboard tunnel --stop --port {result.instance.port}\n")
    return EXIT_OK
