"""Shared fixtures: every test gets its own registry and temp dir, and leaves nothing running.

``NBBOARD_HOME`` isolates nbboard's registry and ``TMPDIR`` isolates
TensorBoard's own (``<tempdir>/.tensorboard-info``), so no test can list or
kill a board it did not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the 10-minute soak instead of the 30-second one")


def pytest_sessionstart(session: pytest.Session) -> None:
    figures = ROOT / "tests" / "artifacts" / "reliability.md"
    if figures.exists():
        figures.unlink()  # figures are per run


ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real logdir (two runs: scalars, histogram, image, text), written once per session."""
    from nbboard.demo import write_demo_logs

    return write_demo_logs(tmp_path_factory.mktemp("demo") / "logs")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private NBBOARD_HOME and TMPDIR; stops every board started under them."""
    home = tmp_path / "nbhome"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("NBBOARD_HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches; make it follow TMPDIR
    before = {p.pid for p in psutil.process_iter()}
    yield tmp_path
    from nbboard import api

    with contextlib.suppress(Exception):
        api.kill()
    leftovers = [p for p in _tensorboards_under(tmp_path) if p.pid not in before]
    for p in leftovers:
        with contextlib.suppress(psutil.Error):
            p.kill()
    assert not leftovers, f"test left TensorBoard processes behind: {[p.pid for p in leftovers]}"


def _tensorboards_under(root: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "tensorboard" in cmd and str(root) in cmd:
            found.append(p)
    return found


def tensorboards_serving(logdir: str | Path) -> list[psutil.Process]:
    """Live TensorBoard processes (not their data-server children) serving ``logdir``."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any("tensorboard" in c for c in cmd[:3]) and any(str(logdir) in c for c in cmd):
            out.append(p)
    pids = {p.pid for p in out}
    return [p for p in out if p.ppid() not in pids]  # the data server is TensorBoard's child, not a second board


def nbboard_cli(*args: str, cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``nbboard`` command in a child process (its own interpreter, as a user would)."""

    return subprocess.run(
        [sys.executable, "-m", "nbboard", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
