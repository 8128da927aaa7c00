"""The registry never lies and never touches what it cannot prove is its own."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import nbboard
from nbboard import cli, registry
from tests.helpers import concurrent_starts, nbboard_cli, plant_record, tensorboards_serving

_plant = plant_record


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_record_for_a_reused_pid_is_dropped_and_the_process_left_alone(
    isolated: Path, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    real_created = psutil.Process(sleeper.pid).create_time()
    wrong_time = _plant(sleeper.pid, real_created - 3600, [sys.executable, "-m", "tensorboard.main", "--logdir", "/x"])
    assert cli.main(["kill"]) == 0
    out = capsys.readouterr().out
    assert f"removed stale record: port 1, pid {sleeper.pid}" in out and "another program" in out
    assert sleeper.poll() is None, "nbboard signalled an unrelated process"
    assert not wrong_time.exists()

    # Same creation time but another command line: still not the board it started.
    wrong_cmd = _plant(sleeper.pid, real_created, [sys.executable, "-m", "tensorboard.main", "--logdir", "/x"])
    assert cli.main(["kill", "--pid", str(sleeper.pid)]) == 0
    assert "another command" in capsys.readouterr().out
    assert sleeper.poll() is None
    assert not wrong_cmd.exists()


def _record(**fields: object) -> str:
    """A record in nbboard's format, with ``fields`` overridden."""
    base = {
        "schema": 1,
        "pid": 1,
        "create_time": 0,
        "port": 1,
        "logdir": "/",
        "cache_key": "x",
        "argv": [],
        "start_time": 0,
    }
    return json.dumps({**base, **fields})


def test_garbage_in_the_registry_is_skipped_reported_and_kept(
    isolated: Path, demo_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boards = registry.boards_dir()
    outside = tmp_path / "outside.json"
    outside.write_text(_record(pid=os.getpid()))
    junk = {
        "junk.json": b"\x00\xff not json",
        "truncated.json": b'{"schema": 1, "pid": 12',
        "types.json": _record(pid="12").encode(),
        "list.json": b"[1, 2, 3]",
        "future.json": json.dumps({"schema": 99, "pid": 1, "whatever": True}).encode(),
        "huge.json": b"{" + b" " * (registry.MAX_RECORD_BYTES + 10) + b"}",
    }
    for name, data in junk.items():
        (boards / name).write_bytes(data)
    (boards / "link.json").symlink_to(outside)
    (boards / "subdir").mkdir()

    inst = nbboard.start(str(demo_logs))
    assert cli.main(["list"]) == 0
    captured = capsys.readouterr()
    assert str(inst.port) in captured.out
    assert "skipped 8 registry file(s)" in captured.err
    assert "newer nbboard" in "\n".join(s.why for s in nbboard.scan().skipped)
    assert "symlink" in "\n".join(s.why for s in nbboard.scan().skipped)

    assert cli.main(["kill"]) == 0
    assert f"pid {inst.pid}" in capsys.readouterr().out
    for name in junk:
        assert (boards / name).exists(), f"{name} was deleted"
    assert (boards / "link.json").is_symlink() and outside.exists()


_ONE_OF_EACH = {
    "boards": (
        registry.write,
        registry.read_all,
        registry.BoardRecord(pid=4242, port=1, logdir="/", create_time=0.0, cache_key="", argv=(), start_time=0),
    ),
    "tunnels": (
        registry.write_tunnel,
        registry.read_tunnels,
        registry.TunnelRecord(
            provider="localtunnel",
            public_url="https://x",
            helper_pid=7,
            helper_create_time=0.0,
            gate_port=0,
            board_pid=4242,
        ),
    ),
    "standby": (
        registry.write_standby,
        registry.read_standbys,
        registry.StandbyRecord(
            pid=4242, create_time=0.0, argv=(), python="py", version="0", start_time=0, idle_timeout=1.0
        ),
    ),
    "ended": (
        registry.write_ended,
        registry.read_ended,
        registry.EndedRecord(pid=4242, port=1, logdir="/", reason="idle", ended_at=0),
    ),
}


@pytest.mark.parametrize("subdir", sorted(_ONE_OF_EACH))
def test_every_kind_of_record_is_read_by_one_rule(isolated: Path, tmp_path: Path, subdir: str) -> None:
    """Boards, tunnels, standbys and ended notes skip the same files: a temp file of a write in progress silently;
    a record under a name nbboard does not write, a link and junk reported. Before, the tunnel reader took a record
    under another board's name, and the standby and ended readers took any ``pid-*.json`` (issue 20, item 1)."""
    write, read, record = _ONE_OF_EACH[subdir]
    good = Path(write(record).path)
    directory = good.parent
    assert directory == registry.ensure_home() / subdir
    text = good.read_text()
    (directory / "pid-999.json").write_text(text)  # the right format under another pid's name
    (directory / "notes.json").write_text(text)
    (directory / "pid-5.json").write_bytes(b"not json")
    (directory / ".tmp-1-abc.json").write_text(text)
    outside = tmp_path / "outside.json"
    outside.write_text(text)
    (directory / "pid-6.json").symlink_to(outside)

    found, skipped = read()
    records = list(found.values()) if isinstance(found, dict) else found
    assert [r.path for r in records] == [str(good)]
    assert sorted(Path(s.path).name for s in skipped) == ["notes.json", "pid-5.json", "pid-6.json", "pid-999.json"]
    assert all((directory / name).exists() for name in ("pid-999.json", "notes.json", "pid-5.json", ".tmp-1-abc.json"))
    assert outside.exists()


def test_registry_directory_is_made_private(isolated: Path, demo_logs: Path) -> None:
    home = Path(os.environ["NBBOARD_HOME"])
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    nbboard.start(str(demo_logs))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for sub in ("boards", "logs", "locks", "secrets"):
        assert stat.S_IMODE((home / sub).stat().st_mode) == 0o700
    for f in (home / "boards").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_unusable_registry_is_a_clear_error_and_nothing_runs(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("NBBOARD_HOME", str(not_a_dir))
    result = nbboard_cli("start", "--logdir", str(demo_logs))
    assert result.returncode == 1
    assert f"nbboard's registry directory {not_a_dir} is not a directory" in result.stderr
    assert "NBBOARD_HOME" in result.stderr
    assert "Traceback" not in result.stderr
    assert tensorboards_serving(demo_logs) == []


def test_tensorboards_own_registry_is_listed_and_cleaned(
    isolated: Path, demo_logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A board started by %tensorboard (tensorboard.manager.start) then SIGKILLed leaves a stale info file."""
    from tensorboard import manager

    result = manager.start(["--logdir", str(demo_logs), "--port", "0", "--host", "127.0.0.1"], timeout=timedelta_s(60))
    assert isinstance(result, manager.StartLaunched), result
    dead_pid = result.info.pid
    os.kill(dead_pid, signal.SIGKILL)
    psutil.Process(dead_pid).wait(5)
    live = manager.start(
        ["--logdir", str(demo_logs), "--port", "0", "--host", "127.0.0.1", "--reload_interval", "9"],
        timeout=timedelta_s(60),
    )
    assert isinstance(live, manager.StartLaunched), live

    listed = {i.pid: i for i in nbboard.list()}
    assert listed[dead_pid].source == "tensorboard" and listed[dead_pid].status == "stale"
    assert listed[live.info.pid].source == "tensorboard" and listed[live.info.pid].status == "running"
    # %tensorboard itself still believes the dead board is there:
    assert dead_pid in {i.pid for i in manager.get_all()}

    assert cli.main(["kill"]) == 0
    out = capsys.readouterr().out
    assert f"stopped TensorBoard on port {live.info.port} (pid {live.info.pid}, tensorboard)" in out
    assert f"removed stale record: port {result.info.port}, pid {dead_pid} (tensorboard)" in out
    assert manager.get_all() == []
    assert nbboard.list() == []


def timedelta_s(seconds: float):  # type: ignore[no-untyped-def]
    import datetime

    return datetime.timedelta(seconds=seconds)


def test_concurrent_starts_of_one_logdir_launch_one_board(isolated: Path, demo_logs: Path) -> None:
    started = concurrent_starts(demo_logs, 5, timeout=120)
    pids = {s["pid"] for s in started}
    assert len(pids) == 1
    assert sum(s["reused"] for s in started) == 4
    assert len(tensorboards_serving(demo_logs)) == 1
    assert len(list(registry.boards_dir().glob("pid-*.json"))) == 1


def _tree(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every file and directory under ``root``: mode, size, mtime and content (no link followed)."""
    found = {}
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(here) / name
            st = path.lstat()
            data = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
    return found


def test_list_changes_nothing_on_disk_and_a_start_records_what_the_board_told(isolated: Path, demo_logs: Path) -> None:
    """`list` only reads, even where it used to write: a board whose starter was SIGKILLed before it read the
    port (the record the crash loop in tests/reliability leaves) is listed with the port the board reported,
    and not a byte, mode or time in NBBOARD_HOME changes; a home an older nbboard made, without a directory this
    one adds, stays without it. The next start records the port."""
    inst = nbboard.start(str(demo_logs))
    orphaned = registry.write(
        dataclasses.replace(inst.record, port=0, version="", state="starting", nodelay=False, nodelay_note="")
    )
    home = registry.ensure_home()
    (home / "ended").rmdir()
    before = _tree(home)
    assert [(i.pid, i.port, i.status) for i in nbboard.api.scan().instances] == [(inst.pid, inst.port, "running")]
    listed = nbboard_cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(b["pid"], b["port"]) for b in json.loads(listed.stdout)] == [(inst.pid, inst.port)]
    assert _tree(home) == before
    again = nbboard.start(str(demo_logs))
    assert (again.pid, again.port, again.reused) == (inst.pid, inst.port, True)
    assert registry.read_board(Path(orphaned.path)).port == inst.port


def test_the_board_reports_through_a_private_status_file_and_it_goes_with_its_log(
    isolated: Path, demo_logs: Path
) -> None:
    """The one channel from a board to its launcher: 0600, in this user's registry, named after the board's log."""
    inst = nbboard.start(str(demo_logs))
    sid = registry.status_id(inst.log_path)
    path = registry.ensure_home() / "status" / f"{sid}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    status = registry.read_status(sid, inst.pid)
    assert status is not None and (status.port, status.version, status.nodelay_note) == (
        inst.port,
        inst.record.version,
        inst.record.nodelay_note,
    )
    assert registry.read_status(sid, inst.pid + 1) is None  # another pid's word is not this board's
    assert nbboard_cli("kill").returncode == 0
    assert not path.exists() and not Path(inst.log_path).exists()


def test_a_board_whose_starter_died_is_found_however_much_it_printed_since(isolated: Path, demo_logs: Path) -> None:
    """The port of a board whose starter was killed before it read it comes from the board's status file, not
    from its log: 20 KiB of output after the serving line (appended here as TensorBoard's or its data server's
    warnings would be) once hid the port, so that `list` showed port 0 and the next start replaced a working
    board."""
    inst = nbboard.start(str(demo_logs))
    registry.write(dataclasses.replace(inst.record, port=0, version="", state="starting"))
    with open(inst.log_path, "a") as log:
        log.write("W1202 warning: a run with an unreadable event file\n" * 400)
    assert [(i.pid, i.port, i.status) for i in nbboard.api.scan().instances] == [(inst.pid, inst.port, "running")]
    again = nbboard.start(str(demo_logs))
    assert (again.pid, again.port, again.reused) == (inst.pid, inst.port, True)
    assert len(tensorboards_serving(demo_logs)) == 1
