"""The speed mechanisms work, and fall back cleanly where they cannot.

TCP_NODELAY on TensorBoard's data server (checked on the real sockets of the
real data server), the standby's lifecycle (recorded, used, replaced, cleared
by kill, idle exit, opt-out, never a dead or foreign process), the private
hand-off channel, and the hooks of ``nbboard.serve``. Timings live in
benchmarks/, not here.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

import nbboard
from nbboard import api, registry, serve, standby
from nbboard.config import BoardConfig
from nbboard.registry import StandbyRecord
from tests.helpers import (
    concurrent_starts,
    nbboard_cli,
    nodelay_flags,
    tensorboards_serving,
    tensorboards_under,
    wait_until,
)
from tests.kernel import Kernel, widget_state

LINUX = sys.platform.startswith("linux")


def _data_server(board_pid: int) -> psutil.Process:
    (child,) = psutil.Process(board_pid).children()
    assert any(a.startswith("--port-file=") for a in child.cmdline())  # TensorBoard's Rust data server
    return child


def _scalars(inst: nbboard.Instance) -> list:
    return requests.get(
        inst.url + "data/plugin/scalars/scalars", params={"run": "train", "tag": "loss"}, timeout=10
    ).json()


def _listed(pid: int) -> dict:
    out = nbboard_cli("list", "--json")
    assert out.returncode == 0, out.stderr
    (entry,) = [e for e in json.loads(out.stdout) if e["pid"] == pid]
    return entry


def _ready_standby(config: BoardConfig | None = None) -> StandbyRecord:
    record = standby.ensure(config or BoardConfig())
    assert record is not None
    wait_until(lambda: _standbys() and _standbys()[0].state == "ready", what="the standby to import TensorBoard")
    (ready,) = _standbys()
    return ready


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _standbys() -> list[StandbyRecord]:
    return registry.read_standbys()[0]


def _sitecustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Run ``code`` at start-up in every Python process the test starts (boards included), by a real
    sitecustomize on PYTHONPATH: how these tests change a board's own process without a test hook in nbboard."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))


# ---------------------------------------------------------------------------
# TCP_NODELAY


@pytest.mark.skipif(not LINUX, reason="pidfd_getfd is Linux-only; elsewhere the fallback test below applies")
def test_nodelay_is_set_on_the_real_data_server_sockets(isolated: Path, demo_logs: Path) -> None:
    inst = nbboard.start(str(demo_logs))
    assert inst.record.nodelay is True and "socket(s) of pid" in inst.record.nodelay_note
    assert inst.record.argv[1:3] == ("-m", "nbboard.serve")
    assert len(_scalars(inst)) == 50  # the dashboard's data comes through the data server
    flags = nodelay_flags(_data_server(inst.pid).pid)
    listening = [on for is_listener, on in flags if is_listener]
    accepted = [on for is_listener, on in flags if not is_listener]
    assert listening == [True] and accepted and all(accepted)
    entry = _listed(inst.pid)
    assert entry["tcp_nodelay"] == {"applied": True, "detail": inst.record.nodelay_note}
    assert entry["from_standby"] is False


INJECT_ENOSYS = """
import errno
import nbboard.nodelay as n
def _refuse(pidfd, target):
    raise OSError(errno.ENOSYS, "Function not implemented")
n._pidfd_getfd = _refuse
"""


def test_nodelay_failure_still_starts_a_working_board_and_says_why(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel or sandbox without pidfd_getfd (gVisor, Linux < 5.6), injected into the board's own process."""
    _sitecustomize(tmp_path, monkeypatch, INJECT_ENOSYS)
    inst = nbboard.start(str(demo_logs))
    assert inst.status == "running" and len(_scalars(inst)) == 50
    assert inst.record.nodelay is False
    if LINUX:
        assert "ENOSYS" in inst.record.nodelay_note and "Linux ≥ 5.6" in inst.record.nodelay_note
        flags = nodelay_flags(_data_server(inst.pid).pid)
        assert flags and not any(on for _, on in flags)  # left exactly as TensorBoard made them
    assert _listed(inst.pid)["tcp_nodelay"] == {"applied": False, "detail": inst.record.nodelay_note}


def test_nodelay_can_be_turned_off(isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBBOARD_NODELAY", "0")
    inst = nbboard.start(str(demo_logs))
    assert (inst.record.nodelay, inst.record.nodelay_note) == (False, "turned off by NBBOARD_NODELAY=0")
    assert len(_scalars(inst)) == 50


def test_another_tensorboard_command_runs_as_before(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ready_standby()
    monkeypatch.setenv("NBBOARD_TENSORBOARD", f"{sys.executable} -m tensorboard.main")
    inst = nbboard.start(str(demo_logs))
    assert inst.record.argv[1:3] == ("-m", "tensorboard.main") and not inst.record.from_standby
    assert inst.record.nodelay is False and "NBBOARD_TENSORBOARD" in inst.record.nodelay_note
    assert len(_scalars(inst)) == 50
    assert _standbys() and _standbys()[0].state == "ready"  # left for a start that may use it


def test_without_a_data_server_there_is_nothing_to_fix(isolated: Path, demo_logs: Path) -> None:
    inst = nbboard.start(str(demo_logs), extra_args=["--load_fast=false"])
    assert psutil.Process(inst.pid).children() == []
    assert inst.record.nodelay is False and inst.record.nodelay_note.startswith("no data server")
    assert len(_scalars(inst)) == 50


def test_board_interpreter_finds_nbboard_without_pythonpath(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that imported nbboard from a directory only its own sys.path names."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    inst = nbboard.start(str(demo_logs))
    assert inst.record.argv[1:3] == ("-m", "nbboard.serve") and len(_scalars(inst)) == 50
    root = str(Path(nbboard.__file__).resolve().parent.parent)
    assert serve.child_env({})["PYTHONPATH"].split(os.pathsep)[-1] == root


HIDE_NBBOARD = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "nbboard" or name.startswith("nbboard."):
            raise ModuleNotFoundError("No module named 'nbboard'", name="nbboard")
sys.meta_path.insert(0, _Hide())
"""


def test_a_board_interpreter_without_nbboard_runs_plain_tensorboard(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board's interpreter cannot import nbboard at all: the start falls back to TensorBoard's own entry point."""
    _sitecustomize(tmp_path, monkeypatch, HIDE_NBBOARD)
    inst = nbboard.start(str(demo_logs), config=BoardConfig(standby=False))
    assert inst.record.argv[1:3] == ("-m", "tensorboard.main") and len(_scalars(inst)) == 50
    assert inst.record.nodelay is False and "not importable" in inst.record.nodelay_note
    assert [p.pid for p in tensorboards_serving(demo_logs)] == [inst.pid]


MIDDLEWARE = """
import nbboard.serve as s
def stamp(app):
    def wrapped(environ, start_response):
        def start(status, headers, *rest):
            return start_response(status, headers + [("X-Seen-By", "test-middleware")], *rest)
        return app(environ, start)
    return wrapped
s.MIDDLEWARES = (*s.MIDDLEWARES, stamp)
"""


def test_middlewares_wrap_the_real_board(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook an idle watchdog will use: every request of the board goes through serve.MIDDLEWARES."""
    _sitecustomize(tmp_path, monkeypatch, MIDDLEWARE)
    inst = nbboard.start(str(demo_logs))
    for path in ("data/runs", "data/plugin/scalars/scalars?run=train&tag=loss", "index.html"):
        assert requests.get(inst.url + path, timeout=10).headers.get("X-Seen-By") == "test-middleware"


def test_each_run_wraps_the_app_in_its_own_middlewares_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20, item 9: a run's wrappers (here the idle watchdog) belong to that run. Before, every
    ``run_tensorboard`` in a process appended to the module's list, so a second run served each request
    through two watchdogs (and both clocks). TensorBoard's main is stood in for by a program that records the
    server factory it would call: a real TensorBoard cannot run twice in one process."""
    from nbboard import idle

    class Program:
        server_class = staticmethod(serve._make_server)  # as prepare() leaves it
        factories: list = []

        def configure(self, argv):  # type: ignore[no-untyped-def]
            from absl import flags

            flags.FLAGS.mark_as_parsed()  # as TensorBoard's own configure leaves absl
            return argv

        def main(self, _argv):  # type: ignore[no-untyped-def]
            Program.factories.append(self.server_class)
            return 0

    monkeypatch.setattr(serve.sys, "argv", list(serve.sys.argv))
    for _ in range(2):
        assert serve.run_tensorboard([f"{idle.FLAG}=600", "--logdir", "x"], Program()) == 0
    first, second = Program.factories
    assert serve.MIDDLEWARES == ()
    watchdogs = [[m for m in run.middlewares if isinstance(getattr(m, "__self__", None), idle.Watchdog)]
                 for run in (first, second)]  # fmt: skip
    assert first is not second and len(first.middlewares) == len(second.middlewares)
    assert [len(w) for w in watchdogs] == [1, 1] and watchdogs[0][0].__self__ is not watchdogs[1][0].__self__
    assert not first.started.is_set() and not second.started.is_set()


def test_warmed_assets_are_exactly_tensorboards_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorboard.data import server_ingester
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.core import core_plugin

    monkeypatch.setattr(server_ingester, "time", server_ingester.time)  # prepare() adjusts it: restore it after
    program = serve.prepare()
    original = core_plugin.CorePlugin.get_resource_apps
    monkeypatch.setattr(core_plugin.CorePlugin, "get_resource_apps", original)
    plugin = core_plugin.CorePlugin(base_plugin.TBContext(assets_zip_provider=program.assets_zip_provider))
    before = original(plugin)
    assert serve.warm_assets(program.assets_zip_provider) is True
    after = core_plugin.CorePlugin.get_resource_apps(plugin)
    assert after is not before and sorted(after) == sorted(before) and "/index.js" in after

    def shape(app):  # type: ignore[no-untyped-def]
        return app.func.__name__, app.args

    assert {k: shape(v) for k, v in after.items()} == {k: shape(v) for k, v in before.items()}
    other = core_plugin.CorePlugin(base_plugin.TBContext(assets_zip_provider=lambda: open(os.devnull, "rb")))
    with pytest.raises(zipfile.BadZipFile):  # another provider takes TensorBoard's own path (here: not a zip)
        core_plugin.CorePlugin.get_resource_apps(other)


def test_port_file_wait_ends_when_the_file_is_complete(tmp_path: Path) -> None:
    """TensorBoard's 0.5 s port-file poll returns as soon as the data server wrote its port."""

    class Clock:
        def __init__(self) -> None:
            self.now = 0.0
            self.slept = 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds
            self.slept += seconds

    port_file = tmp_path / "port"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--port-file={port_file}"])
    try:
        wait_until(lambda: serve._child_port_file() == str(port_file), what="the child to show")
        clock = Clock()
        serve._PromptSleep(clock).sleep(0.5)
        assert clock.slept == pytest.approx(0.5)  # no port file yet: the full sleep TensorBoard asked for
        port_file.write_text("4242")
        clock = Clock()
        serve._PromptSleep(clock).sleep(0.5)
        assert clock.slept == pytest.approx(0.5)  # written but not finished (no newline)
        port_file.write_text("4242\n")
        clock = Clock()
        serve._PromptSleep(clock).sleep(0.5)
        assert clock.slept == 0.0
    finally:
        child.kill()
        child.wait()


# ---------------------------------------------------------------------------
# The standby


def test_standby_is_recorded_then_becomes_the_next_board(isolated: Path, demo_logs: Path) -> None:
    ready = _ready_standby()
    proc = psutil.Process(ready.pid)
    assert ready.argv == tuple(proc.cmdline()) and ready.create_time == pytest.approx(proc.create_time(), abs=0.5)
    assert ready.python == sys.executable and ready.port and ready.state == "ready"
    key = Path(ready.secret_file).read_text().strip()
    assert len(key) == 64 and oct(Path(ready.secret_file).stat().st_mode & 0o777) == "0o600"
    assert oct(Path(ready.path).stat().st_mode & 0o777) == "0o600"
    assert key not in " ".join(proc.cmdline()) and key not in json.dumps(proc.environ())
    assert key not in Path(ready.path).read_text()
    assert tensorboards_serving(demo_logs) == []  # a standby serves nothing

    inst = nbboard.start(str(demo_logs))
    assert inst.pid == ready.pid and inst.record.from_standby and inst.record.argv == ready.argv
    assert sorted(requests.get(inst.url + "data/runs", timeout=10).json()) == ["eval", "train"]
    assert [p.pid for p in tensorboards_serving(demo_logs)] == [ready.pid]
    assert _standbys() == [] and not Path(ready.secret_file).exists()
    if LINUX:
        assert inst.record.nodelay is True
        assert all(on for _, on in nodelay_flags(_data_server(inst.pid).pid))
    entry = _listed(inst.pid)
    assert entry["from_standby"] is True and entry["status"] == "running"
    assert nbboard.start(str(demo_logs)).reused  # identity (pid, creation time, argv) proves it on reuse
    report = api.kill(logdir=str(demo_logs))
    assert [i.pid for i in report.stopped] == [ready.pid] and tensorboards_serving(demo_logs) == []


def test_board_from_a_standby_takes_the_starters_environment(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = _ready_standby()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("NBBOARD_TEST_MARK", "set-after-the-standby-started")
    inst = nbboard.start(str(demo_logs))
    assert inst.pid == ready.pid
    info = registry.tensorboard_info_dir() / f"pid-{inst.pid}.info"
    assert json.loads(info.read_text())["port"] == inst.port  # %tensorboard's registry follows TMPDIR, as before
    # The data server inherits the board's environment and directory: the starter's, not the standby's.
    server = _data_server(inst.pid)
    assert server.environ().get("NBBOARD_TEST_MARK") == "set-after-the-standby-started"
    assert Path(server.cwd()) == elsewhere


def test_a_stopped_board_is_replaced_by_a_new_standby(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    """From a kernel: %load_ext starts the standby, %board uses it, the widget's Stop starts the next one."""
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%load_ext nbboard")
        wait_until(lambda: bool(_standbys()), what="%load_ext to start a standby")
        first = _standbys()[0]
        state = widget_state(kernel.run(f"%board --logdir {demo_logs}"))
        assert state["status"] == "running" and state["pid"] == first.pid
        assert nbboard.list()[0].record.from_standby
        out = kernel.text(
            "import nbboard\n"
            f"m = get_ipython().magics_manager.registry['BoardMagics']\n"
            f"b = m._boards[{first.pid}]\n"
            "b.view._on_front_end_msg(b.view, {'type': 'stop'}, [])\n"
            "print(b.view.status)"
        )
        assert out.strip() == "stopped" and tensorboards_serving(demo_logs) == []
        wait_until(lambda: bool(_standbys()), what="a new standby after the Stop button")
        second = _standbys()[0]
        assert second.pid != first.pid
        other = tmp_path / "other"
        other.mkdir()
        wait_until(lambda: _standbys() and _standbys()[0].state == "ready", what="the new standby")
        state = widget_state(kernel.run(f"%board --logdir {other}"))
        assert state["pid"] == second.pid and [p.pid for p in tensorboards_serving(other)] == [second.pid]
        assert "stopped" in kernel.text(f"%board kill --port {state['port']}")
        wait_until(lambda: bool(_standbys()), what="a new standby after %board kill --port")
        kernel.text("%board kill")  # everything: boards and the standby
        assert _standbys() == []
    finally:
        kernel.shutdown()


def test_the_standby_is_refilled_once_a_board_took_it(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    """Issue 18: a second, new board in the next cell starts from a standby too, not cold. The board that took
    the standby is left alone (it is the one the browser is loading); the next standby is a new process, at
    most one at a time, and becomes the second board."""
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%load_ext nbboard")
        wait_until(lambda: _standbys() and _standbys()[0].state == "ready", what="%load_ext's standby")
        first = _standbys()[0]
        state = widget_state(kernel.run(f"%board --logdir {demo_logs}"))
        assert state["status"] == "running" and state["pid"] == first.pid
        # What board.js sends once the browser has loaded TensorBoard in the board's frame.
        kernel.text(
            "m = get_ipython().magics_manager.registry['BoardMagics']\n"
            f"m._boards[{first.pid}].view._on_front_end_msg(None, {{'type': 'shown'}}, [])"
        )
        wait_until(
            lambda: [s.pid for s in _standbys() if s.state == "ready" and s.pid != first.pid] != [],
            what="a new standby after the first board took the last one",
        )
        (refill,) = _standbys()  # one standby, not one per board
        assert refill.pid != first.pid and psutil.Process(first.pid).is_running()
        other = tmp_path / "other"
        other.mkdir()
        state = widget_state(kernel.run(f"%board --logdir {other}"))
        assert state["status"] == "running" and state["pid"] == refill.pid
        (second,) = [i for i in nbboard.list() if i.pid == refill.pid]
        assert second.record.from_standby and [p.pid for p in tensorboards_serving(other)] == [refill.pid]
        assert [p.pid for p in tensorboards_serving(demo_logs)] == [first.pid]  # the first board is untouched
        kernel.text("%board kill")
        assert _standbys() == []
    finally:
        kernel.shutdown()


def test_reusing_a_board_leaves_the_standby_alone(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    """Re-running a board cell reuses the board: the waiting standby is neither taken nor replaced."""
    inst = nbboard.start(str(demo_logs), config=BoardConfig(standby=False))
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%load_ext nbboard")
        wait_until(lambda: _standbys() and _standbys()[0].state == "ready", what="%load_ext's standby")
        waiting = _standbys()[0]
        state = widget_state(kernel.run(f"%board --logdir {demo_logs}"))
        assert state["pid"] == inst.pid
        time.sleep(3)  # longer than the refill's delay: nothing may change
        assert [(s.pid, s.state) for s in _standbys()] == [(waiting.pid, "ready")]
    finally:
        kernel.shutdown()


def test_a_board_right_after_load_ext_is_the_standby(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    """ "Run all": the standby %load_ext prepares is hurried and waited for, not raced by a second TensorBoard."""
    kernel = Kernel(tmp_path)
    try:
        outputs = kernel.run(f"%load_ext nbboard\n%board --logdir {demo_logs}")
        assert widget_state(outputs)["status"] == "running"
        (inst,) = nbboard.list()
        assert inst.record.from_standby and [p.pid for p in tensorboards_serving(demo_logs)] == [inst.pid]
    finally:
        kernel.shutdown()


def test_kill_clears_the_standby(isolated: Path) -> None:
    ready = _ready_standby()
    result = nbboard_cli("kill")
    assert result.returncode == 0, result.stderr
    assert not psutil.pid_exists(ready.pid) or psutil.Process(ready.pid).status() == psutil.STATUS_ZOMBIE
    assert _standbys() == [] and not Path(ready.secret_file).exists() and not Path(ready.log_path).exists()
    assert [p.name for p in registry.locks_dir().iterdir()] == []  # standby.lock too: nobody holds it any more


def test_kill_also_clears_a_standby_still_importing(isolated: Path) -> None:
    record = standby.ensure(BoardConfig())
    assert record is not None and record.state == "starting"
    api.kill()
    assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE
    assert _standbys() == []


def test_standby_exits_by_itself_when_idle(isolated: Path) -> None:
    ready = _ready_standby(BoardConfig(standby_idle=3))
    proc = psutil.Process(ready.pid)
    wait_until(lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, what="the idle exit")
    assert _standbys() == [] and not Path(ready.secret_file).exists() and not Path(ready.log_path).exists()


def test_standby_can_be_turned_off(isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert standby.ensure(BoardConfig(standby=False)) is None
    monkeypatch.setenv("NBBOARD_STANDBY", "0")
    assert standby.ensure(BoardConfig()) is None
    assert _standbys() == []
    monkeypatch.delenv("NBBOARD_STANDBY")
    ready = _ready_standby()
    inst = api.start(str(demo_logs), config=BoardConfig(standby=False))  # off: a ready standby is not used
    assert inst.pid != ready.pid and not inst.record.from_standby
    assert [s.pid for s in _standbys()] == [ready.pid]


def test_load_ext_with_the_standby_off_starts_no_thread(isolated: Path, tmp_path: Path) -> None:
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%config BoardMagics.standby = False")
        kernel.text("%load_ext nbboard")
        threads = kernel.text("import threading; print(sorted(t.name for t in threading.enumerate()))")
        assert "nbboard-standby" not in threads
    finally:
        kernel.shutdown()
    assert _standbys() == []


def test_a_dead_standby_is_never_used(isolated: Path, demo_logs: Path) -> None:
    ready = _ready_standby()
    os.kill(ready.pid, signal.SIGKILL)
    psutil.Process(ready.pid).wait(5)
    inst = nbboard.start(str(demo_logs))
    assert inst.pid != ready.pid and not inst.record.from_standby
    assert _standbys() == []  # the start collected the dead record


class _Listener:
    """A loopback port that notes whether anyone connected (to show a foreign process is never talked to)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.callers = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.callers += 1
            conn.close()


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("reused", ["other creation time", "other command line"])
def test_a_standby_record_whose_pid_was_reused_is_never_used(
    isolated: Path, demo_logs: Path, unrelated: subprocess.Popen[bytes], reused: str
) -> None:
    """The record names a live process that is not the standby: never talked to, never signalled."""
    listener = _Listener()
    proc = psutil.Process(unrelated.pid)
    key_file = registry.ensure_home() / "secrets" / "standby-planted.key"
    registry.write_private(key_file, "k" * 64)
    argv = ("python", "-m", "nbboard.standby", "--idle", "600")
    created = proc.create_time()
    if reused == "other creation time":
        argv, created = tuple(proc.cmdline()), created - 100
    registry.write_standby(
        StandbyRecord(
            pid=unrelated.pid,
            create_time=created,
            argv=argv,
            python=sys.executable,
            version=nbboard.__version__,
            start_time=int(time.time()),
            idle_timeout=600,
            port=listener.port,
            secret_file=str(key_file),
            state="ready",
        )
    )
    inst = nbboard.start(str(demo_logs))
    assert inst.pid != unrelated.pid and not inst.record.from_standby
    assert listener.callers == 0 and _standbys() == []
    api.kill()
    assert unrelated.poll() is None  # still running: not ours to stop


def test_the_hand_off_is_private(isolated: Path, demo_logs: Path) -> None:
    """Whoever can reach the loopback port but lacks the key gets nothing and changes nothing."""
    ready = _ready_standby()

    def call(*lines: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", ready.port), timeout=10) as s:
            try:
                for line in lines:
                    s.sendall(line)
                s.shutdown(socket.SHUT_WR)
                return b"".join(iter(lambda: s.recv(65536), b""))
            except ConnectionError:
                return b""  # hung up on before reading it all (a reset, or a broken pipe while sending)
            except OSError as e:
                if e.errno != errno.ENOTCONN:
                    raise
                return b""  # the reset arrived before our shutdown: the same hang-up, seen a step later

    assert call(b"GET /data/environment HTTP/1.1\r\n\r\n") == b""
    assert call(b"\x00" * 70000 + b"\n") == b""
    assert call(b'{"hello": "abc"}\n') == b""  # not a nonce: nothing is computed for it
    hello = b'{"hello": "%s"}\n' % (b"a" * 32)
    reply = json.loads(call(hello).splitlines()[0])
    assert set(reply) == {"proof", "nonce"}  # a proof over our nonce and its own: nothing reusable
    forged = json.dumps(
        {"proof": "0" * 64, "payload": json.dumps({"args": ["--logdir", "/tmp"], "env": {}, "cwd": "/"})}
    )
    answer = call(hello, forged.encode() + b"\n")
    assert b'"ok"' not in answer
    silent = socket.create_connection(("127.0.0.1", ready.port))  # a caller that never speaks delays nobody
    try:
        inst = nbboard.start(str(demo_logs))
    finally:
        silent.close()
    assert inst.pid == ready.pid and inst.record.from_standby


def test_a_hand_off_nobody_records_stops_itself(isolated: Path) -> None:
    ready = _ready_standby()
    handoff = standby.take(
        ["--logdir", str(isolated / "x"), "--port", "0", "--host", "127.0.0.1"], dict(os.environ), "/"
    )
    assert handoff is not None and handoff.record.pid == ready.pid
    handoff.close()  # the starter died before recording the board
    proc = psutil.Process(ready.pid)
    wait_until(
        lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, what="the unrecorded board to stop"
    )
    assert "did not record it; stopping" in Path(ready.log_path).read_text()
    wait_until(lambda: tensorboards_under(isolated) == [], what="its data server to follow it")


def test_eight_concurrent_starts_with_a_standby_make_one_board(isolated: Path, demo_logs: Path) -> None:
    ready = _ready_standby()
    assert {s["pid"] for s in concurrent_starts(demo_logs, 8)} == {ready.pid}
    assert [p.pid for p in tensorboards_serving(demo_logs)] == [ready.pid]


def test_a_failing_board_from_a_standby_reports_its_exit(isolated: Path, demo_logs: Path) -> None:
    ready = _ready_standby()
    with pytest.raises(nbboard.NbboardError) as err:
        nbboard.start(str(demo_logs), extra_args=["--no_such_flag=1"])
    assert "no_such_flag" in str(err.value) and "exited with code 2" in str(err.value)
    wait_until(lambda: _gone(ready.pid), what="the failed board's exit")  # its interpreter may still be tearing down
    assert nbboard.list() == [] and _standbys() == []
