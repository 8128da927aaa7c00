"""``python -m nbboard.serve [TensorBoard args]``: TensorBoard in this process, with nbboard's hooks.

Boards run through this tiny entry point instead of ``python -m tensorboard.main``
so that nbboard can act from inside TensorBoard's own process:

- as the data server's parent, it sets ``TCP_NODELAY`` on the data server's
  sockets (:mod:`nbboard.nodelay`) the moment TensorBoard has started it, which
  removes the ~40 ms delayed-ACK stall from every dashboard request;
- the standby (``python -m nbboard.standby``) prepares TensorBoard the same
  way ahead of time and then runs the next board's arguments through
  :func:`run_tensorboard`;
- :data:`MIDDLEWARES` (a tuple, set before a run) and each run's own wrappers
  (the idle watchdog, the shared-code origin) wrap TensorBoard's WSGI app;
- it tells its launcher what the launcher waits for (port, version, the
  TCP_NODELAY outcome, the exit code) in one status file (:func:`report`); the
  log stays for people.

Everything else is TensorBoard's own ``main``: same flags, same output, same
exit codes, same ``%tensorboard`` info file, written safely (:mod:`nbboard.tbinfo`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

#: A WSGI application, as werkzeug calls it.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]

#: Wrappers applied to TensorBoard's WSGI app, first one innermost. Each takes the app and returns an app.
#: A tuple, replaced (never appended to) before :func:`run_tensorboard` runs: a run's own wrappers live in
#: that run only, so running twice in one process never stacks them (issue 20, item 9).
MIDDLEWARES: tuple[Callable[[WSGIApp], WSGIApp], ...] = ()

#: The line the board prints when TensorBoard's main returns or exits, for whoever reads its log.
EXIT_PREFIX = "nbboard: TensorBoard exited with code "
#: Set by the launcher in a board's environment (and by the standby for the board it becomes): the id under
#: which this board reports its port, version, TCP_NODELAY and exit to its launcher (:mod:`nbboard.registry.status`).
STATUS_VAR = "NBBOARD_STATUS"


def command() -> list[str]:
    """How to run this entry point with this interpreter (TensorBoard's arguments follow)."""
    return [sys.executable, "-m", "nbboard.serve"]


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` in which ``python -m nbboard.serve`` can import nbboard.

    A kernel may have imported nbboard from a directory that only its own
    ``sys.path`` names (a notebook's ``sys.path.insert``): the child would not
    find it. That directory is appended to ``PYTHONPATH``, after everything the
    child would search anyway, so nothing the child finds today is shadowed.
    """
    import site

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    current = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    known = current + list(getattr(site, "getsitepackages", list)()) + [site.getusersitepackages()]
    if any(os.path.abspath(p) == root for p in known):
        return env
    return {**env, "PYTHONPATH": os.pathsep.join([*current, root])}


def wrap(app: WSGIApp, middlewares: Sequence[Callable[[WSGIApp], WSGIApp]] = ()) -> WSGIApp:
    """``app`` inside every middleware of :data:`MIDDLEWARES`, then inside ``middlewares`` (one run's own)."""
    for middleware in (*MIDDLEWARES, *middlewares):
        app = middleware(app)
    return app


def prepare(warm: bool = False) -> Any:
    """Import TensorBoard and build what does not depend on its arguments; returns the program.

    The standby calls this ahead of time with ``warm=True`` (it is most of
    TensorBoard's start-up); a direct start calls it just before
    :func:`run_tensorboard`.
    """
    from absl import app  # noqa: F401  (imported here so that the standby pays for it, ~20 ms)
    from tensorboard import default, main_lib, program

    main_lib.global_init()
    plugins = default.get_plugins()
    try:
        tensorboard = program.TensorBoard(plugins=plugins, server_class=_make_server)
    except TypeError:  # a TensorBoard without server factories: plain TensorBoard, no hooks
        return program.TensorBoard(plugins=plugins)
    # The hooks below only save time: if this TensorBoard is shaped differently, it runs as it is.
    with contextlib.suppress(Exception):
        _poll_port_file_promptly()
    if warm:
        with contextlib.suppress(Exception):
            warm_assets(tensorboard.assets_zip_provider, background=True)
    return tensorboard


class _PromptSleep:
    """``time`` for TensorBoard's data-server ingester, whose ``sleep`` ends once the port file is complete.

    TensorBoard starts its data server, sleeps 10 ms, then polls the port file
    the server writes every 0.5 s: a server that needs 11 ms costs the board
    half a second. Each sleep here still lasts at most as long as asked (so
    TensorBoard's own timeout is unchanged) but returns as soon as the file
    TensorBoard is about to read ends with a newline.
    """

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        deadline = self._real.monotonic() + seconds
        port_file = _child_port_file()
        while True:
            left = deadline - self._real.monotonic()
            if left <= 0:
                return
            if port_file is None:
                port_file = _child_port_file()
            elif _complete(port_file):
                return
            self._real.sleep(min(left, 0.002))


def _child_port_file() -> str | None:
    """The ``--port-file`` of this process's newest child (the data server being started), if any."""
    from . import nodelay

    for pid in reversed(nodelay.children(os.getpid())):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith(b"--port-file="):
                return os.fsdecode(arg[len(b"--port-file=") :])
    return None


def _complete(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read().endswith(b"\n")
    except OSError:
        return False


def _poll_port_file_promptly() -> None:
    """Install :class:`_PromptSleep` in TensorBoard's ingester (Linux: it reads /proc); else change nothing."""
    import time

    from tensorboard.data import server_ingester

    if sys.platform.startswith("linux") and getattr(server_ingester, "time", None) is time:
        server_ingester.time = _PromptSleep(time)


def warm_assets(provider: Callable[[], Any] | None, background: bool = False) -> bool:
    """Compress TensorBoard's web assets ahead of a board's start; True if the routes will come from them.

    TensorBoard's core plugin re-reads its 14 MB of web assets from the zip and
    gzips each file every time it starts (~0.3 s here). Nothing in that depends
    on the arguments, so the standby does it while it waits, in the
    ``background`` (zlib runs outside the GIL): a board handed over before it
    is done waits for it, which is never longer than compressing itself. The
    board then builds the same routes from the same bytes (``_gzip`` writes
    mtime 0, so they are identical). Any other assets provider takes
    TensorBoard's own path. Returns False, changing nothing, if this
    TensorBoard is not shaped as expected.
    """
    import functools
    import threading
    import zipfile

    from tensorboard.plugins.core import core_plugin

    plugin = core_plugin.CorePlugin
    gzip = getattr(core_plugin, "_gzip", None)
    if (
        provider is None
        or not callable(gzip)
        or not all(callable(getattr(plugin, n, None)) for n in ("get_resource_apps", "_serve_index", "_serve_asset"))
    ):
        return False
    done = threading.Event()
    built: dict[str, bytes] = {}

    def build() -> None:
        try:
            with provider() as fp, zipfile.ZipFile(fp) as zip_:
                for path in zip_.namelist():
                    data = zip_.read(path)
                    built[path] = data if path == "index.html" else gzip(data)
        except Exception:  # noqa: BLE001 - TensorBoard's own path then reports whatever is wrong
            built.clear()
        finally:
            if "index.html" not in built:
                built.clear()
            done.set()

    original = plugin.get_resource_apps

    def get_resource_apps(self: Any) -> dict[str, Any]:
        if getattr(self, "_assets_zip_provider", None) is not provider:
            return original(self)
        done.wait()
        if not built:
            return original(self)
        apps = {}
        for path, data in built.items():
            if path == "index.html":
                apps["/" + path] = functools.partial(self._serve_index, data)
            else:
                apps["/" + path] = functools.partial(self._serve_asset, path, data)
        apps["/"] = apps["/index.html"]
        return apps

    plugin.get_resource_apps = get_resource_apps
    if background:
        threading.Thread(target=build, name="nbboard-assets", daemon=True).start()
        return True
    build()
    return bool(built)


class _Run:
    """What one :func:`run_tensorboard` adds to TensorBoard: its wrappers, and the event that stops its early
    TCP_NODELAY watcher. Handed to TensorBoard as its server factory, so nothing of a run outlives it."""

    def __init__(self, middlewares: Sequence[Callable[[WSGIApp], WSGIApp]]) -> None:
        import threading

        self.middlewares = tuple(middlewares)
        self.started = threading.Event()

    def __call__(self, wsgi_app: WSGIApp, flags: Any) -> Any:
        return _make_server(wsgi_app, flags, self)


def _make_server(wsgi_app: WSGIApp, flags: Any, run: _Run | None = None) -> Any:
    """TensorBoard's own server factory, called once its data server answers: the moment to fix its sockets."""
    from tensorboard import program

    from . import loopback6, nodelay

    if run is not None:
        run.started.set()  # the early watcher's work is done or moot: this pass covers every socket
    try:
        outcome = nodelay.apply_to_children()
    except Exception as e:  # noqa: BLE001 - never let the optimisation stop the board
        outcome = nodelay.Outcome(False, f"{type(e).__name__}: {e}")
    print(outcome.line(), flush=True)
    app = wrap(wsgi_app, run.middlewares if run else ())
    server = loopback6.with_twin(
        lambda: program.create_port_scanning_werkzeug_server(app, flags), getattr(flags, "port", None) == 0
    )
    # The server is bound and listening: its port is final, and what the launcher probes next.
    with contextlib.suppress(Exception):  # like the optimisation, the report never stops the board
        from tensorboard import version

        port = int(server.server_port)
        report(port=port, version=version.VERSION, nodelay=outcome.applied, nodelay_note=outcome.detail)
    return server


def report(**fields: Any) -> None:
    """Add ``fields`` (of :class:`nbboard.registry.BoardStatus`) to the status this board reports.

    Only a board its launcher asked (:data:`STATUS_VAR`) reports; a failure to
    write is left for the launcher to notice (it falls back to waiting), never
    raised into TensorBoard.
    """
    sid = os.environ.get(STATUS_VAR, "")
    if not sid:
        return
    import dataclasses

    from . import registry

    with contextlib.suppress(Exception):
        current = registry.read_status(sid, os.getpid()) or registry.BoardStatus(pid=os.getpid())
        registry.write_status(sid, dataclasses.replace(current, **fields))


def run_tensorboard(args: Sequence[str], tensorboard: Any = None) -> int:
    """Run TensorBoard's main with ``args`` (no program name) in this process; returns its exit code."""
    import threading

    from absl import app
    from tensorboard.plugins import base_plugin

    from . import idle, nodelay, tbinfo

    tbinfo.install()  # TensorBoard's own writer follows links planted in the shared info directory
    args, idle_seconds = idle.split_flag(args)
    own: list[Callable[[WSGIApp], WSGIApp]] = []
    if idle_seconds:
        watchdog = idle.Watchdog(idle_seconds, idle.stop_this_board)
        own.append(watchdog.middleware)  # its clock starts once TensorBoard builds its app
    from . import sharedcode

    if sharedcode.enabled():
        own.append(sharedcode.middleware)  # one code origin for every board (issue 18)
    tensorboard = tensorboard if tensorboard is not None else prepare()
    run = _Run(own)
    if getattr(tensorboard, "server_class", None) is _make_server:  # prepare()'s hooks: this run's, not a global
        tensorboard.server_class = run
    sys.argv = ["tensorboard", *args]
    code: Any = 0
    threading.Thread(target=nodelay.watch_children, args=(run.started,), daemon=True, name="nbboard-nodelay").start()
    try:
        app.run(tensorboard.main, flags_parser=tensorboard.configure)
    except base_plugin.FlagsError as e:
        print(f"Error: {e}", file=sys.stderr)
        code, reason = 1, str(e)
    except SystemExit as e:
        code, reason = e.code, ""
    else:
        reason = ""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code, reason = 1, str(code)
    print(f"{EXIT_PREFIX}{code}", flush=True)
    report(exited=True, exit_code=code, exit_reason=reason)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run_tensorboard(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    # Run the importable module, not this __main__ copy: what others add to nbboard.serve (MIDDLEWARES) must count.
    from nbboard import serve

    sys.exit(serve.main())
