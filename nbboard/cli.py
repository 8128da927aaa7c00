"""``nbboard`` on the command line: argparse → nbboard.api → print.

One function per subcommand, taking the parsed namespace and returning an exit
code; argparse dispatches to it (``set_defaults(func=…)``). Numbers and the
logdir are parsed here, once, and handed to the API resolved. Exit codes: 0
done, 1 an error nbboard explains (with a hint), 2 bad usage, 130
interrupted, 3 a bug (a short report, never a bare traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import cli_parser, options
from .cli_parser import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, split_extra
from .errors import NbboardError, UsageError


def build_parser() -> argparse.ArgumentParser:
    handlers = {"start": cmd_start, "list": cmd_list, "kill": cmd_kill, "demo": cmd_demo, "tunnel": cmd_tunnel}
    return cli_parser.build_parser(handlers)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    own, extra = split_extra(args_in)
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
    inst = api.start(target, extra_args=extra, **options.start_arguments(args))
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
        sys.stderr.write(fmt.found_one(only) + "\n")
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
    inst = api.start(str(root), extra_args=args.extra, **options.start_arguments(args))
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
