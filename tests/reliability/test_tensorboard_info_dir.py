"""A hostile neighbour and TensorBoard's shared info directory (``<tempdir>/.tensorboard-info``), with two real users.

TensorBoard creates that directory 0777 without the sticky bit and writes
``pid-N.info`` with a plain ``open(path, "w")``. Here two real Unix users
(``seclocalv…``, you, and ``seclocala…``, the neighbour; both created for the
test and removed after) share one sticky temp directory, as users share /tmp.
The neighbour creates ``.tensorboard-info`` first and plants entries in it;
then you run nbboard.

Both sides run as non-root users, because root ignores file permissions and
would hide the regular-file variant. Their Python is the system's
``/usr/bin/python3.11`` with the dev venv's site-packages on PYTHONPATH: the
venv's own interpreter lives under root's 0700 home, which no other user can
execute. Everything else is real: real TensorBoards, real ``nbboard`` CLI and
API calls, a real ``%tensorboard`` board (``tensorboard.manager.start``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT
from tests.reliability import figures

PYTHON = "/usr/bin/python3.11"
pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid")
    or os.geteuid() != 0
    or not shutil.which("useradd")
    or not os.path.exists(PYTHON)
    or sys.version_info[:2] != (3, 11),
    reason="needs root (to create two users), useradd and a system Python 3.11 matching the venv",
)


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: Path


@dataclass(frozen=True)
class Machine:
    """Two users sharing one sticky temp directory."""

    you: User
    them: User
    shared_tmp: Path
    demo_logs: Path

    @property
    def info_dir(self) -> Path:
        return self.shared_tmp / ".tensorboard-info"


def _add_user(name: str, home: Path) -> User:
    subprocess.run(
        ["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    import pwd

    entry = pwd.getpwnam(name)
    home.mkdir()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return User(name, entry.pw_uid, entry.pw_gid, home)


def _stop_everything_of(user: User) -> None:
    procs = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == user.uid]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


@pytest.fixture
def machine(demo_logs: Path) -> Iterator[Machine]:
    base = Path(tempfile.mkdtemp(prefix="seclocal-", dir="/tmp"))
    os.chmod(base, 0o755)
    shared = base / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp is
    suffix = secrets.token_hex(3)
    users: list[User] = []
    try:
        users.append(_add_user(f"seclocalv{suffix}", base / "you"))
        users.append(_add_user(f"seclocala{suffix}", base / "them"))
        logs = users[0].home / "logs"
        shutil.copytree(demo_logs, logs)
        subprocess.run(["chown", "-R", f"{users[0].uid}:{users[0].gid}", str(logs)], check=True)
        yield Machine(users[0], users[1], shared, logs)
    finally:
        for user in users:
            _stop_everything_of(user)
            subprocess.run(["userdel", user.name], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)  # faster than rmtree on 200 000 files


def _run_as(machine: Machine, user: User, code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` as ``user`` in that user's own directory and environment; returns its stdout."""
    path = [str(ROOT), sysconfig.get_paths()["purelib"]]
    base_env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(path),
        "HOME": str(user.home),
        "TMPDIR": str(machine.shared_tmp),
        "NBBOARD_HOME": str(user.home / "nbboard"),
        "TENSORBOARD_BINARY": str(user.home / "tensorboard"),
    }
    result = subprocess.run(
        [PYTHON, "-c", code, *args],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        cwd=user.home,
        env={**base_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


PLANT = """
import os, sys
info = os.path.join(os.environ["TMPDIR"], ".tensorboard-info")
os.makedirs(info, exist_ok=True)
os.chmod(info, 0o777)  # as TensorBoard leaves it: writable by all, no sticky bit
kind, target, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for pid in range(first, last + 1):
    name = os.path.join(info, f"pid-{pid}.info")
    if kind == "symlink":
        os.symlink(target, name)
    else:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"planted")
        os.close(fd)
print(last - first + 1)
"""

#: You: start a board (directly, from the standby, or through another command), then stop it.
START = """
import json, os, sys, time
import nbboard
from nbboard import api, registry, standby
from nbboard.config import BoardConfig
how, logdir = sys.argv[1], sys.argv[2]
out = {}
if how == "standby":
    assert standby.ensure(BoardConfig()) is not None
    deadline = time.monotonic() + 120
    while not [r for r in registry.read_standbys()[0] if r.state == "ready"]:
        assert time.monotonic() < deadline, "the standby never got ready"
        time.sleep(0.05)
    out["standby_pid"] = registry.read_standbys()[0][0].pid
try:
    inst = nbboard.start(logdir, config=BoardConfig(standby=how == "standby"))
    out.update(pid=inst.pid, from_standby=inst.record.from_standby, log=registry.output_tail(inst.log_path, 400))
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
api.kill()
print(json.dumps(out))
"""

START_ENV = {
    "direct": {"NBBOARD_STANDBY": "0"},
    "standby": {},
    "another command": {"NBBOARD_STANDBY": "0", "NBBOARD_TENSORBOARD": f"{PYTHON} -m tensorboard.main"},
}


def _pid_range() -> tuple[int, int]:
    with open("/proc/sys/kernel/pid_max") as f:
        return 300, int(f.read())  # pids below 300 are the kernel's and init's on Linux


def _plant(machine: Machine, kind: str, target: str = "") -> int:
    first, last = _pid_range()
    return int(_run_as(machine, machine.them, PLANT, kind, target or "-", str(first), str(last)))


@pytest.mark.parametrize("how", list(START_ENV))
def test_links_planted_for_every_pid_do_not_make_your_board_overwrite_your_file(machine: Machine, how: str) -> None:
    """Before: your board's TensorBoard followed ``pid-<its pid>.info`` and replaced your file with its JSON."""
    yours = machine.you.home / "thesis.tex"
    yours.write_text("my thesis")
    os.chown(yours, machine.you.uid, machine.you.gid)
    planted = _plant(machine, "symlink", str(yours))
    out = json.loads(_run_as(machine, machine.you, START, how, str(machine.demo_logs), env=START_ENV[how]))
    assert "error" not in out, out
    first, last = _pid_range()
    assert first <= out["pid"] <= last  # a link was waiting for this very pid
    if how == "standby":
        assert out["from_standby"] and out["pid"] == out["standby_pid"]
    assert yours.read_text() == "my thesis", "your board wrote through the neighbour's link"
    assert os.readlink(machine.info_dir / f"pid-{out['pid']}.info") == str(yours)  # left alone, not followed
    figures.record(
        f"TensorBoard's shared info directory: {planted} `pid-N.info` symlinks to your file, planted by another "
        f"real user for every pid, then a board started ({how})",
        "board started, your file untouched, the links neither followed nor removed",
    )


@pytest.mark.parametrize("how", list(START_ENV))
def test_regular_files_planted_for_every_pid_do_not_break_your_start(machine: Machine, how: str) -> None:
    """Before: TensorBoard's ``open(path, "w")`` on the neighbour's file raised PermissionError and the board died."""
    planted = _plant(machine, "file")
    out = json.loads(_run_as(machine, machine.you, START, how, str(machine.demo_logs), env=START_ENV[how]))
    assert "error" not in out, out
    assert "PermissionError" not in out["log"]
    assert (machine.info_dir / f"pid-{out['pid']}.info").read_bytes() == b"planted"  # theirs, untouched
    figures.record(
        f"TensorBoard's shared info directory: {planted} regular `pid-N.info` files planted by another real user "
        f"for every pid, then a board started ({how})",
        "board started (before: PermissionError, no board), their files untouched",
    )


#: You: a %tensorboard board and an nbboard board.
START_BOTH = """
import json, sys
from datetime import timedelta
from tensorboard import manager
import nbboard
from nbboard.config import BoardConfig
logdir = sys.argv[1]
tb = manager.start(["--logdir", logdir, "--port", "0", "--host", "127.0.0.1"], timeout=timedelta(seconds=120))
assert isinstance(tb, manager.StartLaunched), tb
ours = nbboard.start(logdir + "/run1", config=BoardConfig(standby=False))
print(json.dumps({"tb_pid": tb.info.pid, "ours": ours.pid}))
"""

#: The neighbour: junk for every possible pid but your two boards', and more beyond pid_max.
JUNK = """
import os, sys
info = os.path.join(os.environ["TMPDIR"], ".tensorboard-info")
n, pid_max, spare = int(sys.argv[1]), int(sys.argv[2]), {int(p) for p in sys.argv[3:]}
names = [f"pid-{p}.info" for p in range(300, pid_max + 1) if p not in spare]
names += [f"pid-{pid_max + 1 + i}.info" if i % 4 else f"junk-{i}.info" for i in range(n - len(names))]
for i, name in enumerate(names):
    path = os.path.join(info, name)
    if name.startswith("pid-") and int(name[4:-5]) > pid_max and i % 10 == 1:
        os.symlink("/etc/passwd", path)
    elif name.startswith("pid-") and int(name[4:-5]) > pid_max and i % 10 == 2:
        os.mkfifo(path, 0o600)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if i % 2 else 0o644)
        os.write(fd, b'{"pid": 1, "port": 1, "start_time": 1, "version": "x"}' if i % 3 else b"junk")
        os.close(fd)
print(len(names), sum(1 for name in names if name.startswith("pid-") and int(name[4:-5]) <= pid_max))
"""

#: You again: how `nbboard list` reads the shared directory now, then `nbboard kill`.
LIST = """
import json, os, statistics, subprocess, sys, time
from nbboard import api
info = os.path.join(os.environ["TMPDIR"], ".tensorboard-info")
theirs = {os.path.join(info, e.name) for e in os.scandir(info) if e.stat(follow_symlinks=False).st_uid != os.getuid()}
opened = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        opened.append(os.fsdecode(args[0]))
sys.addaudithook(hook)
seconds = []
for _ in range(3):
    t = time.perf_counter()
    listed = api.list_instances()
    seconds.append(time.perf_counter() - t)
t = time.perf_counter()
cli = subprocess.run([sys.executable, "-m", "nbboard", "list"], capture_output=True, text=True)
cli_seconds = time.perf_counter() - t
report = api.kill()
print(json.dumps({
    "listed": sorted((i.pid, i.source, i.status) for i in listed),
    "opened_theirs": len([p for p in opened if p in theirs]),
    "cli": cli.stdout + cli.stderr, "cli_code": cli.returncode,
    "seconds": statistics.median(seconds), "cli_seconds": cli_seconds,
    "stopped": sorted(i.pid for i in report.stopped),
}))
"""


@pytest.mark.timeout(1200)
def test_two_hundred_thousand_junk_entries_are_not_opened_and_list_stays_usable(machine: Machine) -> None:
    """Before: every entry was opened (another user's 0600 files were reported as skipped by ``nbboard list``);
    now each is lstat'ed or passed over by name. ``%tensorboard``'s board is still listed and ``kill`` still
    stops it. The junk goes in once both boards run: a real ``%tensorboard`` board would itself crash on a file
    planted for its pid (TensorBoard's own writer; nbboard cannot change it)."""
    # What `%tensorboard` runs; its manager drops PYTHONPATH from the environment, so the script names it.
    site = sysconfig.get_paths()["purelib"]
    (machine.you.home / "tensorboard").write_text(
        f'#!/bin/sh\nPYTHONPATH={site} exec {PYTHON} -m tensorboard.main "$@"\n'
    )
    os.chmod(machine.you.home / "tensorboard", 0o755)
    _run_as(machine, machine.them, "import os; os.makedirs(os.environ['TMPDIR'] + '/.tensorboard-info', 0o777)")
    os.chmod(machine.info_dir, 0o777)  # as TensorBoard leaves it
    boards = json.loads(_run_as(machine, machine.you, START_BOTH, str(machine.demo_logs)))
    _, pid_max = _pid_range()
    spare = [str(p) for p in boards.values()]
    planted, in_range = map(int, _run_as(machine, machine.them, JUNK, "200000", str(pid_max), *spare).split())
    out = json.loads(_run_as(machine, machine.you, LIST))
    figures.record(
        f"TensorBoard's shared info directory holding {planted} junk entries of another real user ({in_range} "
        "regular files named for every possible pid, then files, 0600 files, links, FIFOs), beside your "
        "`%tensorboard` board and an nbboard board",
        f"`list_instances()` {out['seconds']:.2f} s, `nbboard list` {out['cli_seconds']:.2f} s (busy 2-core machine); "
        f"{out['opened_theirs']} of their entries opened; both boards listed and stopped by `nbboard kill`",
    )
    assert out["opened_theirs"] == 0
    assert out["cli_code"] == 0 and "skipped" not in out["cli"].lower(), out["cli"][:2000]
    listed = [tuple(x) for x in out["listed"]]
    assert (boards["tb_pid"], "tensorboard", "running") in listed
    assert (boards["ours"], "nbboard", "running") in listed
    assert out["stopped"] == sorted(boards.values())
    assert not (machine.info_dir / f"pid-{boards['tb_pid']}.info").exists()


def test_your_boards_are_still_in_tensorboards_registry_where_it_is_yours(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a temp directory of your own, ``%tensorboard``'s ``manager.get_all()`` still finds nbboard's boards,
    as it always did; a board of another command writes its file only in nbboard's private temp directory."""
    import nbboard
    from nbboard import api, registry
    from nbboard.config import BoardConfig

    tensorboard_manager = pytest.importorskip("tensorboard.manager")
    inst = nbboard.start(str(demo_logs), config=BoardConfig(standby=False))
    found = {i.pid: i.port for i in tensorboard_manager.get_all()}
    assert found.get(inst.pid) == inst.port
    assert registry.tensorboard_info_dir().lstat().st_mode & 0o1777 == 0o1777  # created sticky
    monkeypatch.setenv("NBBOARD_TENSORBOARD", f"{sys.executable} -m tensorboard.main")
    other = nbboard.start(str(demo_logs / "run1"), config=BoardConfig(standby=False))
    assert other.pid not in {i.pid for i in tensorboard_manager.get_all()}
    private = registry.private_tmp_dir() / ".tensorboard-info" / f"pid-{other.pid}.info"
    assert private.is_file()
    os.kill(other.pid, signal.SIGKILL)  # no atexit clean-up by TensorBoard: nbboard's kill removes the file
    psutil.Process(other.pid).wait(10)
    api.kill()
    assert not private.exists()
