"""Start, reuse, restart, list and kill real TensorBoard processes through the API and the CLI."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import psutil
import pytest
import requests

import nbboard
from nbboard import cli
from tests.helpers import nbboard_cli, tensorboards_serving


def _runs(instance: nbboard.Instance) -> list[str]:
    return requests.get(instance.url + "data/runs", timeout=5).json()


def test_start_serves_the_logdir_on_loopback_and_records_it_privately(isolated: Path, demo_logs: Path) -> None:
    inst = nbboard.start(str(demo_logs))
    assert inst.reused is False
    assert inst.status == "running"
    assert sorted(_runs(inst)) == ["eval", "train"]
    proc = psutil.Process(inst.pid)
    conns = proc.net_connections() if hasattr(proc, "net_connections") else proc.connections()  # psutil < 6 (Colab)
    listening = {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
    # Loopback only: 127.0.0.1, and [::1] at the same port where IPv6 loopback exists (nbboard/loopback6.py).
    assert "127.0.0.1" in listening and listening <= {"127.0.0.1", "::1"}, listening
    home = Path(os.environ["NBBOARD_HOME"])
    record = home / "boards" / f"pid-{inst.pid}.json"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "boards").stat().st_mode) == 0o700
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(inst.log_path).stat().st_mode) == 0o600
    data = json.loads(record.read_text())
    assert data["pid"] == inst.pid and data["port"] == inst.port
    assert data["logdir"] == str(demo_logs)
    argv = data["argv"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "0"
    assert argv == psutil.Process(inst.pid).cmdline()
    assert data["create_time"] == pytest.approx(psutil.Process(inst.pid).create_time(), abs=0.5)
    assert data["version"] and data["state"] == "ready"


def test_same_logdir_from_elsewhere_is_reused(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    first = nbboard_cli("start", "--logdir", str(demo_logs), "--json")
    assert first.returncode == 0, first.stderr
    first_pid = json.loads(first.stdout)["pid"]
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    relative = os.path.relpath(demo_logs, elsewhere) + "/"
    again = nbboard_cli("start", "--logdir", relative, cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert f"reusing TensorBoard on port {json.loads(first.stdout)['port']} (pid {first_pid}), started" in again.stdout
    assert len(tensorboards_serving(demo_logs)) == 1


def test_restart_replaces_the_board(isolated: Path, demo_logs: Path) -> None:
    old = nbboard.start(str(demo_logs))
    new = nbboard.start(str(demo_logs), restart=True)
    assert new.pid != old.pid and new.reused is False
    assert not psutil.pid_exists(old.pid) or psutil.Process(old.pid).status() == psutil.STATUS_ZOMBIE
    assert new.port == old.port  # open browser tabs keep working
    assert [i.pid for i in nbboard.list()] == [new.pid]


def test_sigkilled_board_is_never_reused(isolated: Path, demo_logs: Path) -> None:
    first = nbboard.start(str(demo_logs))
    os.kill(first.pid, signal.SIGKILL)
    psutil.Process(first.pid).wait(5)
    (listed,) = nbboard.list()  # list changes nothing: the dead board is shown, marked, until start or kill
    assert (listed.pid, listed.status) == (first.pid, "stale") and "exited" in listed.reason
    second = nbboard.start(str(demo_logs))
    assert second.reused is False and second.pid != first.pid
    assert [i.pid for i in nbboard.list()] == [second.pid]  # start collected the dead record
    assert sorted(_runs(second)) == ["eval", "train"]


def test_list_shows_every_field_and_kill_selectors(
    isolated: Path, demo_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    third = tmp_path / "third"
    third.mkdir()
    a = nbboard.start(str(demo_logs))
    b = nbboard.start(str(other))
    c = nbboard.start(str(third))
    assert cli.main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["pid"], r["port"], r["logdir"], r["status"], r["source"]) for r in rows} == {
        (a.pid, a.port, str(demo_logs), "running", "nbboard"),
        (b.pid, b.port, str(other), "running", "nbboard"),
        (c.pid, c.port, str(third), "running", "nbboard"),
    }
    assert all(r["url"] == f"http://127.0.0.1:{r['port']}/" for r in rows)
    assert cli.main(["list"]) == 0
    table = capsys.readouterr().out
    assert "PORT" in table and "UPTIME" in table and str(other) in table

    assert cli.main(["kill", "--port", str(a.port)]) == 0
    assert f"stopped TensorBoard on port {a.port} (pid {a.pid}" in capsys.readouterr().out
    assert cli.main(["kill", "--pid", str(b.pid)]) == 0
    assert f"pid {b.pid}" in capsys.readouterr().out
    assert cli.main(["kill", "--logdir", str(third) + "/"]) == 0
    assert f"pid {c.pid}" in capsys.readouterr().out
    for inst in (a, b, c):
        assert not psutil.pid_exists(inst.pid) or psutil.Process(inst.pid).status() == psutil.STATUS_ZOMBIE
    assert nbboard.list() == []
    assert list(Path(os.environ["NBBOARD_HOME"], "logs").iterdir()) == []  # logs of stopped boards are removed


def test_kill_stops_the_data_server_child_too(isolated: Path, demo_logs: Path) -> None:
    inst = nbboard.start(str(demo_logs))
    children = psutil.Process(inst.pid).children(recursive=True)
    assert children, "TensorBoard 2.x runs its data server as a child"
    report = nbboard.kill()
    assert [i.pid for i in report.stopped] == [inst.pid]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


def test_kill_with_unknown_selector_says_what_exists(
    isolated: Path, demo_logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inst = nbboard.start(str(demo_logs))
    assert cli.main(["kill", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "no TensorBoard with port 1" in err and str(inst.port) in err and "nbboard list" in err
    assert nbboard.list()[0].pid == inst.pid  # nothing else disturbed


def test_extra_flags_pass_through_and_are_part_of_the_key(isolated: Path, demo_logs: Path) -> None:
    plain = nbboard.start(str(demo_logs))
    tuned = nbboard.start(str(demo_logs), extra_args=["--samples_per_plugin", "scalars=500"])
    assert tuned.pid != plain.pid
    assert "--samples_per_plugin=scalars=500" in psutil.Process(tuned.pid).cmdline()
    same = nbboard.start(str(demo_logs), extra_args=["--samples_per_plugin=scalars=500"])
    assert same.reused and same.pid == tuned.pid


def test_cli_passes_flags_after_double_dash(
    isolated: Path, demo_logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["start", "--logdir", str(demo_logs), "--", "--reload_interval", "7"]) == 0
    out = capsys.readouterr().out
    assert "started TensorBoard" in out
    (inst,) = nbboard.list()
    assert "--reload_interval=7" in psutil.Process(inst.pid).cmdline()


def test_logdir_spec_and_remote_logdirs_are_kept_verbatim(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    spec = f"demo:{demo_logs},empty:{tmp_path}"
    inst = nbboard.start(logdir_spec=spec)
    assert inst.logdir == spec
    assert ["--logdir_spec", spec] == psutil.Process(inst.pid).cmdline()[3:5]
    assert sorted(_runs(inst)) == ["demo/eval", "demo/train"]
    assert nbboard.list()[0].logdir == spec
    from nbboard import logdirs

    remote = logdirs.resolve("gs://bucket/runs/")
    assert (remote.display, remote.kind, remote.args) == (
        "gs://bucket/runs/",
        "remote",
        ("--logdir", "gs://bucket/runs/"),
    )
    assert logdirs.survey(remote) is None  # no existence check on remote storage


def test_demo_command_writes_every_kind_of_summary(isolated: Path, tmp_path: Path) -> None:
    result = nbboard_cli("demo", "--dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    (inst,) = nbboard.list()
    base = inst.url
    assert sorted(requests.get(base + "data/runs", timeout=5).json()) == ["eval", "train"]
    plugins = requests.get(base + "data/plugins_listing", timeout=5).json()
    assert all(plugins[p]["enabled"] for p in ("scalars", "histograms", "images", "text"))
    tags = requests.get(base + "data/plugin/scalars/tags", timeout=5).json()
    assert set(tags["train"]) == {"loss", "accuracy"}
    # One stream, and the three things a first-time user needs next: how to open it, the notebook line, how to stop it.
    assert result.stderr == "" and "wrote example summaries" in result.stdout
    root = tmp_path / "d" / "logs"
    assert f"open it:        {inst.url}" in result.stdout
    assert f"%load_ext nbboard   then   %board --logdir {root}" in result.stdout
    assert f"stop it:        nbboard kill --port {inst.port}" in result.stdout
