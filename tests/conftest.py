"""Shared fixtures: every test gets its own registry and temp dir, and leaves nothing running.

``NBBOARD_HOME`` isolates nbboard's registry and ``TMPDIR`` isolates
TensorBoard's own (``<tempdir>/.tensorboard-info``), so no test can list or
kill a board it did not start.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import ARTIFACTS, standbys_under, tensorboards_under


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the 10-minute soak instead of the 30-second one")


def pytest_sessionstart(session: pytest.Session) -> None:
    figures = ARTIFACTS / "reliability.md"
    if figures.exists():
        figures.unlink()  # figures are per run


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
    leftovers = [p for p in {*tensorboards_under(tmp_path), *standbys_under(tmp_path)} if p.pid not in before]
    for p in leftovers:
        with contextlib.suppress(psutil.Error):
            p.kill()
    assert not leftovers, f"test left TensorBoard processes behind: {[p.pid for p in leftovers]}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
