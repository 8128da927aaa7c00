"""Pid reuse and registry garbage: nothing unproven is signalled, nothing outside the registry touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import nbboard
from nbboard import cli, registry
from tests.reliability.figures import record


@pytest.fixture
def bystanders(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Live processes nbboard did not start: a plain program and one whose command line says tensorboard."""
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    lookalike = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "tensorboard", "--logdir", str(tmp_path)]
    )
    yield [plain, lookalike]
    for p in (plain, lookalike):
        p.kill()
        p.wait()


def test_records_pointing_at_unrelated_processes_are_never_signalled(
    isolated: Path, bystanders: list[subprocess.Popen[bytes]]
) -> None:
    planted = 0
    selectors: list[list[str]] = [[], ["--pid", ""], ["--port", "1"]]
    for proc in bystanders:
        ps = psutil.Process(proc.pid)
        cases = [
            (ps.create_time() - 100, ps.cmdline()),  # same command, other creation time
            (
                ps.create_time(),
                [sys.executable, "-m", "tensorboard.main", "--logdir", "/x"],
            ),  # same time, other command
            (ps.create_time() + 5, [sys.executable, "-m", "tensorboard.main"]),
        ]
        # Every lying record under every selector (records are named by pid: one at a time).
        for created, argv in cases:
            for selector in selectors:
                registry.write_private(
                    registry.record_path(proc.pid),
                    json.dumps(
                        {
                            "schema": 1,
                            "pid": proc.pid,
                            "create_time": created,
                            "port": 1,
                            "logdir": "/x",
                            "cache_key": "k",
                            "argv": argv,
                            "start_time": int(time.time()),
                        }
                    ),
                )
                planted += 1
                cli.main(["kill", *(str(proc.pid) if part == "" else part for part in selector)])
                assert not registry.record_path(proc.pid).exists()  # the lying record is gone
        # And in %tensorboard's registry: a lookalike started long before the record says.
        info_dir = registry.tensorboard_info_dir()
        info_dir.mkdir(exist_ok=True)
        (info_dir / f"pid-{proc.pid}.info").write_text(
            json.dumps(
                {
                    "version": "2.21.0",
                    "start_time": int(ps.create_time()) + 3600,
                    "pid": proc.pid,
                    "port": 1,
                    "path_prefix": "",
                    "logdir": "/x",
                    "db": "",
                    "cache_key": "k",
                }
            )
        )
        planted += 1
        for selector in selectors:
            cli.main(["kill", *(str(proc.pid) if part == "" else part for part in selector)])
    signalled = sum(1 for p in bystanders if p.poll() is not None)
    record(
        f"pid reuse: {planted} records naming live unrelated processes (incl. a `tensorboard` lookalike), killed by every selector",
        f"{signalled} processes signalled",
    )
    assert signalled == 0
    assert list(registry.boards_dir().glob("*.json")) == []


def test_a_thousand_junk_files(
    isolated: Path, demo_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boards = registry.boards_dir()
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.json"
    victim.write_text(
        json.dumps(
            {
                "schema": 1,
                "pid": os.getpid(),
                "create_time": psutil.Process().create_time(),
                "port": 1,
                "logdir": "/",
                "cache_key": "x",
                "argv": psutil.Process().cmdline(),
                "start_time": 0,
            }
        )
    )
    kinds = 0
    for i in range(1000):
        kind = i % 8
        path = boards / f"junk-{i}.json"
        if kind == 0:
            path.write_bytes(os.urandom(64))
        elif kind == 1:
            path.write_text('{"schema": 1, "pid": ')
        elif kind == 2:
            path.write_text(
                json.dumps(
                    {
                        "schema": 1,
                        "pid": [1],
                        "create_time": "x",
                        "port": 1,
                        "logdir": 3,
                        "cache_key": "x",
                        "argv": [],
                        "start_time": 0,
                    }
                )
            )
        elif kind == 3:
            path.write_text(json.dumps({"schema": 999, "pid": 1}))
        elif kind == 4:
            path.write_bytes(b"{" + b" " * (registry.MAX_RECORD_BYTES + 1) + b"}")
        elif kind == 5:
            path.symlink_to(victim)
        elif kind == 6:
            path.write_text("null")
        else:
            path.write_text(
                json.dumps(
                    {
                        "schema": 1,
                        "pid": -5,
                        "create_time": 0,
                        "port": 99999,
                        "logdir": "/",
                        "cache_key": "",
                        "argv": [],
                        "start_time": 0,
                    }
                )
            )
        kinds += 1
    t0 = time.perf_counter()
    inst = nbboard.start(str(demo_logs))
    assert cli.main(["list"]) == 0
    err = capsys.readouterr().err
    assert cli.main(["kill"]) == 0
    elapsed = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert "skipped 1000 registry file(s)" in err
    assert f"pid {inst.pid}" in out
    assert psutil.pid_exists(os.getpid()) and victim.exists()  # the symlinked record's "process" (this test) is alive
    remaining = len(list(boards.iterdir()))
    record(
        "registry garbage: 1000 junk files (random bytes, truncated, wrong types, future schema, huge, symlinks, null, out of range)",
        f"start+list+kill worked in {elapsed:.2f} s, all 1000 reported skipped, {1000 - remaining} deleted, 0 files outside the registry touched",
    )
    assert remaining == 1000
