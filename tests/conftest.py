"""Shared fixtures: every test gets its own registry, temp dir, HOME and working directory, and leaves nothing running.

Every test runs in an empty working directory of its own (so ``nbboard start``
with no logdir finds nothing, wherever pytest was started: a clone that holds
``nbboard-demo/`` included), with its own HOME, TMPDIR, XDG directories and
Jupyter/IPython config, data and runtime directories (so the suite writes
nothing under the user's HOME, and nothing there changes a result). The
session itself gets a private set first, for session fixtures and anything
started before a test. ``NBBOARD_HOME`` (the ``isolated`` fixture) isolates
nbboard's registry and ``TMPDIR`` TensorBoard's own
(``<tempdir>/.tensorboard-info``), so no test can list or kill a board it did
not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.helpers import ARTIFACTS, standbys_under, tensorboards_under

if TYPE_CHECKING:
    from tests.kernel import Kernel
    from tests.localtunnel_server import LocaltunnelServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the 10-minute soak instead of the 30-second one")


#: The variables through which programs find per-user files, relative to a private root.
PRIVATE_DIRS = {
    "HOME": "home",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_DATA_HOME": "home/.local/share",
    "XDG_STATE_HOME": "home/.local/state",
    "JUPYTER_CONFIG_DIR": "home/.jupyter",
    "JUPYTER_DATA_DIR": "home/.local/share/jupyter",
    "JUPYTER_RUNTIME_DIR": "home/.local/share/jupyter/runtime",
    "IPYTHONDIR": "home/.ipython",
}
_session_root: Path | None = None


def private_env(root: Path) -> dict[str, str]:
    """HOME, XDG and Jupyter/IPython directories under ``root`` (created), plus what must stay shared:
    npm's user config and cache (the localtunnel peer installs from the user's registry settings) and pyenv's root."""
    env = {}
    for var, rel in PRIVATE_DIRS.items():
        path = root / rel
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    real_home = Path(os.environ.get("NBBOARD_TESTS_REAL_HOME") or Path.home())
    env["NBBOARD_TESTS_REAL_HOME"] = str(real_home)
    env.setdefault("npm_config_userconfig", os.environ.get("npm_config_userconfig") or str(real_home / ".npmrc"))
    env.setdefault("npm_config_cache", os.environ.get("npm_config_cache") or str(real_home / ".npm"))
    if "PYENV_ROOT" not in os.environ and (real_home / ".pyenv").is_dir():
        env["PYENV_ROOT"] = str(real_home / ".pyenv")
    return env


def pytest_configure(config: pytest.Config) -> None:
    """The session's private HOME and Jupyter directories, before any fixture or plugin starts a program.

    (TMPDIR stays as it is for the session: pytest's own temp directory is made under it.)"""
    global _session_root
    _session_root = Path(tempfile.mkdtemp(prefix="nbboard-tests-"))
    os.environ.update(private_env(_session_root))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_root is not None:
        shutil.rmtree(_session_root, ignore_errors=True)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own working directory (empty), HOME, TMPDIR, XDG and Jupyter/IPython directories."""
    private = tmp_path / ".private"  # hidden: discovery and the tests' own globs of tmp_path skip it
    for var, value in private_env(private).items():
        monkeypatch.setenv(var, value)
    tmp = private / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches; make it follow TMPDIR
    cwd = private / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


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
    tmp.mkdir(exist_ok=True)
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


@pytest.fixture
def kernel(isolated: Path, tmp_path: Path) -> Iterator[Kernel]:
    """A real IPython kernel in this test's own directories, with ``%load_ext nbboard`` done."""
    from tests.kernel import Kernel

    k = Kernel(tmp_path)
    k.text("%load_ext nbboard")
    yield k
    k.shutdown()


@pytest.fixture
def lt(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocaltunnelServer]:
    """A real localtunnel server on 127.0.0.1 that nbboard's localtunnel provider uses; stops every board after."""
    from nbboard import api
    from tests.localtunnel_server import LocaltunnelServer

    server = LocaltunnelServer(tmp_path)
    monkeypatch.setenv("NBBOARD_LOCALTUNNEL_HOST", server.url)
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    yield server
    api.kill()
    server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
