"""Logdir discovery on real directory trees: what it offers, what it skips, and that it stops in time."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nbboard.discover import discover


def _events(directory: Path, age: float = 0.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"events.out.tfevents.{int(time.time())}.host.{len(list(directory.iterdir()))}"
    path.write_bytes(b"")
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_offers_the_directory_people_pass_as_logdir_newest_first(tmp_path: Path) -> None:
    _events(tmp_path / "logs" / "fit" / "20240101-120000" / "train", age=3600)  # Keras
    _events(tmp_path / "logs" / "fit" / "20240101-120000" / "validation", age=3600)
    _events(tmp_path / "runs" / "Jan01_12-00-00_host")  # PyTorch, written just now
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x\n")
    found = discover(tmp_path)
    assert [c.path for c in found.candidates] == [str(tmp_path / "runs"), str(tmp_path / "logs")]
    logs = found.candidates[1]
    assert (logs.runs, logs.event_files) == (2, 2)
    assert found.truncated == ""


def test_skips_hidden_dirs_environments_dependency_trees_and_the_ignore_list(tmp_path: Path) -> None:
    _events(tmp_path / ".ipynb_checkpoints" / "x")
    _events(tmp_path / ".venv" / "lib" / "x")
    env = tmp_path / "myenv"
    _events(env / "lib" / "python3.12" / "site-packages" / "tb" / "x")
    (env / "pyvenv.cfg").write_text("home = /usr\n")
    conda = tmp_path / "condaenv"
    _events(conda / "pkgs")
    (conda / "conda-meta").mkdir()
    _events(tmp_path / "node_modules" / "pkg")
    _events(tmp_path / "old_runs" / "a")
    (tmp_path / ".nbboardignore").write_text("# old experiments\nold_runs/\n")
    _events(tmp_path / "lightning_logs" / "version_0")
    found = discover(tmp_path)
    assert [c.path for c in found.candidates] == [str(tmp_path / "lightning_logs")]


def test_does_not_follow_symlinks_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _events(outside / "run")
    work = tmp_path / "work"
    work.mkdir()
    (work / "link").symlink_to(outside)
    assert discover(work).candidates == ()


def test_a_huge_tree_is_cut_short_and_says_so(tmp_path: Path) -> None:
    big = tmp_path / "home" / "photos"
    big.mkdir(parents=True)
    for i in range(3000):
        (big / f"img{i}.jpg").write_bytes(b"")
    _events(tmp_path / "home" / "zz_logs" / "run")
    found = discover(tmp_path / "home", max_entries=1000)
    assert found.truncated == "looked at 1000 entries"

    deep = tmp_path / "deep"
    leaf = deep.joinpath(*[f"d{i}" for i in range(10)])
    _events(leaf)
    shallow = discover(deep, max_depth=3)
    assert shallow.candidates == () and shallow.truncated == "stopped at depth 3"
    assert [c.path for c in discover(deep, max_depth=12).candidates] == [str(deep / "d0")]


def test_event_files_directly_in_the_root_offer_the_root(tmp_path: Path) -> None:
    _events(tmp_path)
    assert [c.path for c in discover(tmp_path).candidates] == [str(tmp_path)]


def test_the_time_budget_stops_the_search(tmp_path: Path) -> None:
    for i in range(20):
        _events(tmp_path / f"dir{i}" / "sub" / "run")
    found = discover(tmp_path, time_budget=0.0)
    assert found.truncated == "searched for 0 s" and len(found.candidates) < 20
