"""``nbboard`` on the command line: argparse → nbboard.api → print.

One function per subcommand, each returning an exit code. Errors nbboard
expects exit 1 with their message and hint, bad usage 2, Ctrl-C 130, and a
bug 3 with a short report (never a bare traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .errors import NbboardError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(
            f"nbboard: error: {message}\n  hint: nbboard {self.prog.split()[-1]} --help shows every option\n"
        )
        raise SystemExit(2)


def _split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after the first ``--`` goes to TensorBoard untouched."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbboard", description="Run TensorBoard in the background, reuse it, list it, stop it.")
    parser.add_argument("--version", action="version", version=f"nbboard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("start", help="start (or reuse) a TensorBoard; extra TensorBoard flags go after --")
    p.add_argument("logdir_pos", nargs="?", metavar="LOGDIR", help="same as --logdir")
    p.add_argument("--logdir", help="directory (or gs:// s3:// hdfs:// URL) with event files")
    p.add_argument("--logdir_spec", "--logdir-spec", dest="logdir_spec", help="name1:/path1,name2:/path2")
    _start_options(p)

    p = sub.add_parser("list", help="show every TensorBoard of this user, stale ones marked")
    p.add_argument("--json", action="store_true", help="print a JSON array")

    p = sub.add_parser("kill", help="stop boards and clear stale records (all of them without a selector)")
    p.add_argument("--port", help="only the board on this port")
    p.add_argument("--pid", help="only the board with this pid")
    p.add_argument("--logdir", help="only the board(s) serving this logdir")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")

    p = sub.add_parser("demo", help="write an example logdir and start TensorBoard on it")
    p.add_argument("--dir", default="nbboard-demo", help="where to write it (default: ./nbboard-demo)")
    p.add_argument("--no-start", action="store_true", help="only write the logs")
    _start_options(p)
    p = sub.add_parser("tunnel", help="a public URL for a board (protected by a secret), e.g. from Colab or Kaggle")
    p.add_argument("--logdir", help="start or reuse the board for this logdir, then open its tunnel")
    p.add_argument("--port", help="open the tunnel of the running board on this port")
    p.add_argument(
        "--provider",
        choices=["auto", "ngrok", "localtunnel"],
        default=None,
        help="default: ngrok with a token, else localtunnel",
    )
    p.add_argument("--host", help="localtunnel server (default https://localtunnel.me)")
    p.add_argument("--no-auth", action="store_true", help="no secret: anyone with the link sees the board")
    p.add_argument("--ttl", help="close the tunnel after this long, e.g. 2h, 30m")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the provider (default 30)")
    p.add_argument("--authtoken", help="save an ngrok auth token (0600); '-' reads it from stdin")
    p.add_argument("--stop", action="store_true", help="close the tunnel (of --port, or all); boards keep running")
    p.add_argument("--show-url", action="store_true", help="print the full URL(s), secret included, again")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _start_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", help="port to serve on (default: a free one)")
    p.add_argument("--restart", action="store_true", help="replace a running board for the same logdir")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for TensorBoard (default 60)")
    p.add_argument("--json", action="store_true", help="print the instance as JSON")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    own, extra = _split_extra(args_in)
    parser = build_parser()
    try:
        args = parser.parse_args(own)
        if args.command == "start":
            return cmd_start(
                args.logdir, args.logdir_pos, args.logdir_spec, args.port, extra, args.timeout, args.restart, args.json
            )
        if extra and args.command not in ("demo", "tunnel"):
            raise NbboardError(
                f"`--` passes flags to TensorBoard, which `nbboard {args.command}` does not start",
                "use: nbboard start --logdir DIR -- --flag=value",
            )
        if args.command == "list":
            return cmd_list(args.json)
        if args.command == "kill":
            return cmd_kill(args.port, args.pid, args.logdir, args.json)
        if args.command == "tunnel":
            return cmd_tunnel(args, extra)
        if args.command == "demo":
            return cmd_demo(args.dir, args.no_start, args.port, extra, args.timeout, args.restart, args.json)
        if args.command is None:
            parser.print_help()
            return 2
        raise NotImplementedError(f"command {args.command} not implemented")
    except NbboardError as e:
        sys.stderr.write(f"nbboard: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("nbboard: interrupted\n")
        return 130
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 2
    except Exception as e:  # noqa: BLE001 - the last line of defence: a report, not a traceback
        sys.stderr.write(
            f"nbboard: internal error: {e.__class__.__name__}: {e}\n"
            "  this is an nbboard bug; please report it with the command you ran (set NBBOARD_DEBUG=1 for a traceback)\n"
        )
        import os

        if os.environ.get("NBBOARD_DEBUG"):
            import traceback

            traceback.print_exc()
        return 3


def _print_started(inst, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from . import fmt

    if as_json:
        print(json.dumps({**inst.to_json(), "reused": inst.reused}))
        return
    print(fmt.started(inst))
    print(inst.url)


def _survey_note(logdir: str | None, logdir_spec: str | None) -> None:
    from . import logdirs

    found = logdirs.survey(logdirs.resolve(logdir, logdir_spec))
    note = found.note() if found else ""
    if note:
        sys.stderr.write(note + "\n")


def cmd_start(
    logdir_opt: str | None,
    logdir_pos: str | None,
    logdir_spec: str | None,
    port: str | None,
    extra: list[str],
    timeout: float | None,
    restart: bool,
    as_json: bool,
) -> int:
    from . import api

    if logdir_pos and logdir_opt and logdir_pos != logdir_opt:
        raise NbboardError(f"two logdirs given: {logdir_pos!r} and --logdir {logdir_opt!r}", "give one")
    logdir = logdir_opt or logdir_pos
    if logdir is None and logdir_spec is None:
        raise NbboardError("no logdir given", "nbboard start --logdir DIR (the directory your training writes to)")
    _survey_note(logdir, logdir_spec)
    inst = api.start(
        logdir,
        port=api.validate_port(port),
        extra_args=extra,
        timeout=timeout,
        restart=restart,
        logdir_spec=logdir_spec,
    )
    _print_started(inst, as_json)
    return 0


def cmd_list(as_json: bool) -> int:
    from . import api, fmt

    found = api.scan()
    if as_json:
        print(json.dumps([i.to_json() for i in found.instances], indent=1))
    else:
        print(fmt.table(found.instances))
    note = fmt.skipped(found.skipped)
    if note:
        sys.stderr.write(note + "\n")
    return 0


def cmd_kill(port: str | None, pid: str | None, logdir: str | None, as_json: bool) -> int:
    from . import api, fmt

    report = api.kill(port=api.validate_port(port), pid=pid, logdir=logdir)
    if as_json:
        print(
            json.dumps(
                {
                    "stopped": [i.to_json() for i in report.stopped],
                    "cleaned": [i.to_json() for i in report.cleaned],
                    "skipped": [{"path": s.path, "why": s.why} for s in report.skipped],
                }
            )
        )
        return 0
    print(fmt.killed(report.stopped, report.cleaned, report.removed_logs))
    note = fmt.skipped(report.skipped)
    if note:
        sys.stderr.write(note + "\n")
    return 0


def cmd_demo(
    directory: str,
    no_start: bool,
    port: str | None,
    extra: list[str],
    timeout: float | None,
    restart: bool,
    as_json: bool,
) -> int:
    from . import api, demo

    root = demo.write_demo_logs(directory + "/logs")
    sys.stderr.write(
        f"wrote example summaries (scalars, histogram, image, text) for runs {', '.join(demo.RUNS)} to {root}\n"
    )
    if no_start:
        return 0
    inst = api.start(str(root), port=api.validate_port(port), extra_args=extra, timeout=timeout, restart=restart)
    _print_started(inst, as_json)
    if not as_json:
        print(f"stop it with: nbboard kill --port {inst.port}")
    return 0


def cmd_tunnel(args: argparse.Namespace, extra: list[str]) -> int:
    from . import api
    from .tunnels import ngrok

    if args.authtoken is not None:
        token = sys.stdin.readline() if args.authtoken == "-" else args.authtoken
        path = ngrok.save_token(token)
        sys.stderr.write(f"saved the ngrok auth token to {path} (readable by you only)\n")
        if args.logdir is None and args.port is None:
            return 0
    if args.stop:
        closed = api.close_tunnels(port=api.validate_port(args.port))
        for inst in closed:
            print(f"closed the {inst.tunnel.provider} tunnel of TensorBoard on port {inst.port}")
        if not closed:
            print("no open tunnel")
        return 0
    if args.show_url:
        urls = api.tunnel_urls(port=api.validate_port(args.port))
        for inst, url in urls:
            print(f"{inst.port}: {url}")
        if not urls:
            print("no open tunnel (open one with: nbboard tunnel --logdir DIR)")
        return 0
    if args.logdir is not None and args.port is not None:
        raise NbboardError("give --logdir or --port, not both", "nbboard tunnel --port 6006")
    if args.logdir is not None:
        _survey_note(args.logdir, None)
    result = api.tunnel(
        args.logdir,
        port=api.validate_port(args.port),
        provider=args.provider,
        host=args.host,
        auth=not args.no_auth,
        ttl=args.ttl,
        timeout=args.timeout,
        extra_args=extra,
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
        return 0
    verb = "reusing the" if result.reused else "opened a"
    sys.stderr.write(
        f"{verb} {result.tunnel.provider} tunnel to TensorBoard on port {result.instance.port} for {result.instance.logdir}\n"
    )
    print(result.url)
    sys.stderr.write(f"close it with: nbboard tunnel --stop --port {result.instance.port}\n")
    return 0
