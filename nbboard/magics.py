"""``%board``: parse the line, call the API, show the result.

Registered by ``%load_ext nbboard``. Only IPython's magic machinery is
imported at load time; the API, psutil and the widget load on first use.
Options are configurable in the IPython config, e.g.
``c.BoardMagics.height = 600``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import traitlets
from IPython.core.magic import Magics, line_magic, magics_class

from . import config, options
from .tunnels import providers

if TYPE_CHECKING:
    from .config import BoardConfig


#: Seconds the standby's preparation waits after ``%load_ext`` (or a stop), unless a launch needs it sooner.
STANDBY_DELAY = 0.5
#: After a board took the standby, the next standby waits until the browser has loaded that board
#: (the board's frame says so) and this many seconds more, for the first charts: TensorBoard's 6 MB of
#: JavaScript and a standby importing TensorBoard would otherwise share a small machine's CPU while the
#: user waits for the chart. A launch hurries it, as above.
REFILL_AFTER_SHOWN = 1.0
#: ...and waits at most this long when no frame says so (no display, a front end without widgets).
REFILL_LATEST = 10.0
#: After that second, the next standby also waits (at most this long) for the CPU to calm down: the frame's
#: ``load`` comes before TensorBoard has fetched and drawn its charts, which on a busy machine takes seconds more.
REFILL_QUIET_WAIT = 10.0
#: Busy below this share of all cores (%), over half a second, counts as calm.
REFILL_QUIET_CPU = 60.0
#: Seconds ``%board`` waits for a reuse before drawing a "starting" board (a real start takes about a second).
REUSE_WAIT = 0.05
REUSE_WAIT_COLAB = 0.5


def _option(name: str) -> traitlets.TraitType[Any, Any]:
    """The configurable trait for the BoardConfig setting ``name``: its type, default and help are the field's."""
    setting = next(f for f in config.settings() if f.name == name)
    default, help = setting.default, setting.metadata["help"]
    if name == "tunnel_provider":
        trait: traitlets.TraitType[Any, Any] = traitlets.Enum(["auto", *providers.NAMES], default, help=help)
    elif default is None:  # idle_timeout: "" in a config file means never
        trait = traitlets.Unicode("", help=help)
    else:
        kinds = {bool: traitlets.Bool, int: traitlets.Int, float: traitlets.Float, str: traitlets.Unicode}
        trait = kinds[type(default)](default, help=help)
    return trait.tag(config=True)


@magics_class
class BoardMagics(Magics):
    # One configurable trait per BoardConfig setting (c.BoardMagics.height = 600), default and help from there.
    height = _option("height")
    start_timeout = _option("start_timeout")
    tunnel_provider = _option("tunnel_provider")
    standby = _option("standby")
    idle_timeout = _option("idle_timeout")
    standby_idle = _option("standby_idle")

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._boards: dict[int, Any] = {}  # pid -> embed.Board shown in this kernel
        #: (hurry, recorded, cancelled) events of a standby being prepared
        self._standby: tuple[Any, Any, Any] | None = None

    @line_magic
    def board(self, line: str) -> None:
        """Start (or reuse) TensorBoard and show it inline. ``%board --help`` for options.

        A failure raises IPython's UsageError, as IPython's own magics do: the
        cell is marked failed (so "Run all" and nbclient/papermill stop there)
        and shows one readable message, no traceback.
        """
        from IPython.core.error import UsageError  # in IPython 7.34 as in 8 and 9

        from .errors import NbboardError

        try:
            self._board(line)
        except NbboardError as e:
            raise UsageError(f"nbboard: {e}") from None
        except KeyboardInterrupt:
            raise UsageError(
                "nbboard: interrupted; a TensorBoard it had begun to start is recorded: "
                "%board list shows it, %board kill stops it"
            ) from None

    def _board(self, line: str) -> None:
        from . import api, fmt, logdirs, magic_args

        cmd = magic_args.parse(line)
        for note in cmd.notes:
            print(f"nbboard: {note}")
        if cmd.action == "help":
            print(magic_args.USAGE)
            return
        if cmd.action == "list":
            found = api.scan()
            print(fmt.table(found.instances, magic=True, ended=found.ended, standbys=found.standbys))
            if found.skipped:
                print(fmt.skipped(found.skipped))
            return
        if cmd.action == "kill":
            self._cancel_standby()  # a pending standby would otherwise appear after the kill
            target = logdirs.resolve(cmd.logdir, check=False) if cmd.logdir is not None else None
            report = api.kill(port=cmd.port, pid=cmd.pid, logdir=target)
            print(fmt.killed(report.stopped, report.cleaned, report.removed_logs, report.standbys, report.ended))
            if report.stopped and (cmd.port, cmd.pid, cmd.logdir) != (None, None, None):
                self.prepare_standby()  # a board stopped, another may follow; a bare kill clears everything
            return
        if cmd.logdir is None and cmd.logdir_spec is None:
            self._redisplay(cmd)
            return
        self._start_and_show(cmd)

    def board_config(self) -> BoardConfig:
        """The API's settings, from this magic's traitlets (``c.BoardMagics.…``)."""
        values = {f.name: getattr(self, f.name) for f in config.settings()}
        values["idle_timeout"] = values["idle_timeout"] or None  # the trait's "" is the field's None
        return config.BoardConfig(**values)

    def prepare_standby(self, warm_display: bool = False, delay: float = STANDBY_DELAY) -> None:
        """Start a standby in the background, unless turned off or one is there.

        The work waits ``delay`` seconds, so that it shares no CPU with the
        cell that loaded the extension, unless a launch needs it sooner
        (:meth:`_hurry_standby`, called by the launcher only when no running
        board can be reused). With ``warm_display`` the same thread then imports
        what drawing a board needs (the widget stack, ~0.1 s), so that the first
        ``%board`` after a pause does not wait for it.
        """
        settings = self.board_config()
        if not config.standby_wanted(settings):
            return
        import threading

        hurry = threading.Event()
        recorded = threading.Event()
        cancelled = threading.Event()

        def work() -> None:
            hurry.wait(delay)
            try:
                if not cancelled.is_set():
                    from . import standby

                    standby.ensure(settings)
            finally:
                recorded.set()
            if warm_display:
                with contextlib.suppress(Exception):  # the cell that needs it imports it again and reports
                    from . import api, embed, fmt, logdirs, magic_args  # noqa: F401

                    if embed.host().view == "colab":
                        from . import colab  # noqa: F401  (Colab's board is HTML/JS, not the widget)
                    else:
                        from . import widget  # noqa: F401

        threading.Thread(target=work, name="nbboard-standby", daemon=True).start()
        self._standby = (hurry, recorded, cancelled)

    def _hurry_standby(self) -> None:
        """A launch is coming: let a pending standby be recorded first, so that the launch can wait for it."""
        if self._standby is not None:
            hurry, recorded, _ = self._standby
            hurry.set()
            recorded.wait(timeout=5)  # an optimisation: never hold a start up for long
            self._standby = None

    def _refill_after_shown(self) -> None:
        """The browser has loaded a board made from the standby: prepare the next one once its charts are drawn."""
        if self._standby is None:
            return
        import threading

        hurry = self._standby[0]

        def when_calm() -> None:
            import time

            import psutil

            if hurry.wait(REFILL_AFTER_SHOWN):
                return  # a launch already hurried it
            deadline = time.monotonic() + REFILL_QUIET_WAIT
            while time.monotonic() < deadline and not hurry.is_set():
                if psutil.cpu_percent(interval=0.5) < REFILL_QUIET_CPU:
                    break
            hurry.set()

        threading.Thread(target=when_calm, name="nbboard-refill", daemon=True).start()

    def _cancel_standby(self) -> None:
        """Drop a standby still waiting to be prepared (``%board kill``): none may start after the kill."""
        if self._standby is not None:
            hurry, recorded, cancelled = self._standby
            cancelled.set()
            hurry.set()
            recorded.wait(timeout=5)  # one already being spawned is recorded first, so that the kill finds it
            self._standby = None

    def _redisplay(self, cmd: Any) -> None:
        """``%board`` alone: the newest running board again, else the logdirs found under the working directory."""
        from . import api, embed

        newest = api.newest_running()
        if newest is not None:
            embed.display(newest, cmd.height or self.height)
            return
        self._discover(cmd)

    def _discover(self, cmd: Any) -> None:
        """No board and no logdir: look for event files; start the one found, or offer several."""
        import dataclasses

        from . import discover, embed, fmt
        from .errors import UsageError

        found = discover.discover(_cwd())
        if not found.candidates:
            stopped = f" (the search stopped early: {found.truncated})" if found.truncated else ""
            raise UsageError(
                f"no TensorBoard is running, and no event files (events.out.tfevents.*) under {found.root}{stopped}",
                "start one with: %board --logdir DIR (the directory your training writes summaries to)",
            )
        if len(found.candidates) == 1:
            only = found.candidates[0]
            print(f"nbboard: {fmt.found_one(only)}")
            self._start_and_show(dataclasses.replace(cmd, logdir=only.path))
            return
        board = embed.Board(cmd.height or self.height) if cmd.display else None
        if board is None:
            print(f"nbboard: no TensorBoard is running; {fmt.candidates(found, '%board')}")
            return
        board.offer(found, self.board_config(), standby_hook=self._hurry_standby)

    def _start_and_show(self, cmd: Any) -> None:
        from . import api, embed, logdirs
        from .errors import NbboardError

        target = logdirs.resolve(cmd.logdir, cmd.logdir_spec)
        extra = logdirs.normalise_extra(cmd.extra)  # every usage error before the survey's note
        survey = logdirs.survey(target)
        note = survey.note() if survey else ""
        if note and cmd.logdir and not cmd.logdir.startswith("/"):
            note += f" (relative paths resolve against the kernel's working directory: {_cwd()})"
        if note:
            print(f"nbboard: {note}")
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as FutureTimeout

        height = cmd.height or self.height
        # TensorBoard boots in its own process while this thread draws the board: the start runs
        # in a worker, so importing and displaying the widget costs no extra wall time.
        pool = ThreadPoolExecutor(max_workers=1)
        pending = pool.submit(
            api.start,
            target,
            extra_args=extra,
            config=self.board_config(),
            standby_hook=self._hurry_standby,
            **options.start_arguments(cmd),
        )
        pool.shutdown(wait=False)
        # A reuse answers in a few ms. On Colab, where every update re-renders the whole output, a reuse slowed
        # by a busy machine gets longer before a "starting" output is drawn (a real start takes a second).
        wait = REUSE_WAIT_COLAB if embed.host().view == "colab" else REUSE_WAIT
        try:
            instance = pending.result(timeout=wait)
        except FutureTimeout:
            instance = None
        board = None
        if instance is not None:
            board = self._show_fast(instance, height) if cmd.display else None
        else:
            board = embed.Board(height, target.display) if cmd.display else None
            try:
                instance = pending.result()
            except NbboardError as e:
                if board is not None:
                    board.fail(str(e))
                raise
            if board is not None:
                board.show(instance)
                self._remember(instance, board)
        if instance.record.from_standby and not instance.reused:
            # The standby became this board: have the next one ready for the next board (a new cell, a new logdir).
            self.prepare_standby(delay=REFILL_LATEST)
            if board is not None and board.view is not None:
                from .boardview import Action

                board.view.actions[Action.SHOWN] = self._refill_after_shown
        if board is None and not cmd.display:
            from . import fmt

            print(fmt.started(instance))
            print(instance.url)
        if cmd.tunnel is not None:
            self._open_tunnel(instance, cmd.tunnel, board)

    def _show_fast(self, instance: Any, height: int) -> Any:
        """Show a board that needed no waiting; a reused board re-displays its existing widget
        (a new view of the same model: no new comm, no front-end code sent again)."""
        from . import embed

        known = self._boards.get(instance.pid)
        if known is not None and known.redisplay(height):
            return known
        board = embed.Board(height, instance.logdir, instance=instance)  # drawn running from its first frame
        board.show(instance)
        self._remember(instance, board)
        return board

    def _remember(self, instance: Any, board: Any) -> None:
        from .boardview import Action

        if board.view is not None:
            self._boards[instance.pid] = board
            stop = board.view.actions.get(Action.STOP)
            if stop is not None and not getattr(stop, "prepares_standby", False):

                def stop_then_prepare() -> None:
                    stop()
                    self.prepare_standby()

                stop_then_prepare.prepares_standby = True  # type: ignore[attr-defined]
                board.view.actions[Action.STOP] = stop_then_prepare

    def _open_tunnel(self, instance: Any, provider: str, board: Any) -> None:
        from . import api

        chosen = None if provider == "auto" else provider  # None: the configured default
        result = api.tunnel(port=instance.port, provider=chosen, config=self.board_config())
        for note in result.notes:
            print(f"nbboard: {note}")
        if board is not None and board.view is not None:
            board.view.tunnel_url = result.url
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
    if isinstance(getattr(ipython, "configurables", None), list):
        ipython.configurables.append(magics)  # %config BoardMagics.height = 600, as for IPython's own
    magics.prepare_standby(warm_display=True)


def unregister(ipython: Any) -> None:
    magics = _registered.pop(id(ipython), None)
    if magics is not None:
        ipython.magics_manager.magics["line"].pop("board", None)
        if magics in getattr(ipython, "configurables", []):
            ipython.configurables.remove(magics)
