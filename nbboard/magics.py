"""``%board``: parse the line, call the API, show the result.

Registered by ``%load_ext nbboard``. Only IPython's magic machinery is
imported at load time; the API, psutil and the widget load on first use.
Options are configurable in the IPython config, e.g.
``c.BoardMagics.height = 600``.
"""

from __future__ import annotations

from typing import Any

import traitlets
from IPython.core.magic import Magics, line_magic, magics_class


@magics_class
class BoardMagics(Magics):
    height = traitlets.Int(800, help="Height of the inline board, in pixels.").tag(config=True)
    start_timeout = traitlets.Float(60.0, help="Seconds to wait for a new TensorBoard to answer.").tag(config=True)
    tunnel_provider = traitlets.Enum(
        ["auto", "ngrok", "localtunnel"], "auto", help="Provider for %board --tunnel when none is named."
    ).tag(config=True)

    @line_magic
    def board(self, line: str) -> None:
        """Start (or reuse) TensorBoard and show it inline. ``%board --help`` for options."""
        from .errors import NbboardError

        try:
            self._board(line)
        except NbboardError as e:
            print(f"nbboard: {e}")
        except KeyboardInterrupt:
            print("nbboard: interrupted (TensorBoard, if it was starting, has been stopped or recorded: %board list)")

    def _board(self, line: str) -> None:
        from . import api, fmt, magic_args

        cmd = magic_args.parse(line)
        for note in cmd.notes:
            print(f"nbboard: {note}")
        if cmd.action == "help":
            print(magic_args.USAGE)
            return
        if cmd.action == "list":
            found = api.scan()
            print(fmt.table(found.instances))
            if found.skipped:
                print(fmt.skipped(found.skipped))
            return
        if cmd.action == "kill":
            report = api.kill(port=cmd.port, pid=cmd.pid, logdir=cmd.logdir)
            print(fmt.killed(report.stopped, report.cleaned, report.removed_logs))
            return
        if cmd.logdir is None and cmd.logdir_spec is None:
            self._redisplay(cmd.height or self.height)
            return
        self._start_and_show(cmd)

    def _redisplay(self, height: int) -> None:
        from . import api, embed

        newest = api.newest_running()
        if newest is None:
            print(
                "nbboard: no TensorBoard is running. Start one with:  %board --logdir DIR\n"
                "  (DIR is the directory your training writes summaries to; relative paths start at the kernel's "
                "working directory)"
            )
            return
        embed.show(newest, height)

    def _start_and_show(self, cmd: Any) -> None:
        from . import api, embed, logdirs
        from .errors import NbboardError

        target = logdirs.resolve(cmd.logdir, cmd.logdir_spec)
        survey = logdirs.survey(target)
        note = survey.note() if survey else ""
        if note and cmd.logdir and not cmd.logdir.startswith("/"):
            note += f" (relative paths resolve against the kernel's working directory: {_cwd()})"
        if note:
            print(f"nbboard: {note}")
        board = embed.Board(cmd.height or self.height, target.display) if cmd.display else None
        try:
            instance = api.start(
                cmd.logdir,
                port=cmd.port,
                extra_args=cmd.extra,
                timeout=cmd.timeout or self.start_timeout,
                restart=cmd.restart,
                logdir_spec=cmd.logdir_spec,
            )
        except NbboardError as e:
            if board is not None:
                board.fail(str(e))
            raise
        if board is None:
            from . import fmt

            print(fmt.started(instance))
            print(instance.url)
        else:
            board.show(instance)
        if cmd.tunnel is not None:
            self._open_tunnel(instance, cmd.tunnel, board)

    def _open_tunnel(self, instance: Any, provider: str, board: Any) -> None:
        from . import api

        provider = self.tunnel_provider if provider == "auto" else provider
        result = api.tunnel(port=instance.port, provider=provider)
        for note in result.notes:
            print(f"nbboard: {note}")
        if board is not None and board.widget is not None:
            board.widget.tunnel_url = result.url
            print(
                f"nbboard: {'reusing the' if result.reused else 'opened a'} {result.tunnel.provider} tunnel: use the board's 'Public link' button (the link carries its secret)"
            )
        else:
            print(f"public link (keep it private: it carries the secret): {result.url}")
        print(
            f"nbboard: close it with the board's 'Close link' button or  !nbboard tunnel --stop --port {instance.port}"
        )


def _cwd() -> str:
    import os

    return os.getcwd()


_registered: dict[int, BoardMagics] = {}


def register(ipython: Any) -> None:
    magics = BoardMagics(ipython)
    ipython.register_magics(magics)
    _registered[id(ipython)] = magics


def unregister(ipython: Any) -> None:
    magics = _registered.pop(id(ipython), None)
    if magics is not None:
        ipython.magics_manager.magics["line"].pop("board", None)
