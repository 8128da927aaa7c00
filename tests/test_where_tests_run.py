"""The suite passes wherever it is started from, and writes nothing to the user's HOME.

A new user runs the README's two commands in order: ``nbboard demo`` leaves
``./nbboard-demo/`` (event files) in the clone, then ``bash tests/run.sh`` runs
pytest from there. Tests that run ``nbboard start`` with no logdir must not find
those files, and no test may read or write the user's ``~/.jupyter``,
``~/.ipython`` or ``~/.local/share/jupyter``. So the suite's entry point (pytest
with this repository's configuration) is run here, for real, from a directory
holding event files and from an empty one, on the tests whose outcome depends
on the working directory and on Jupyter's and IPython's per-user files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

#: Tests whose result depends on where they run: `nbboard start` with no logdir (discovery from the cwd), and a
#: real kernel and IPython (history, startup files, Jupyter's runtime and data files under HOME).
CWD_SENSITIVE = [
    "tests/test_shared_machine.py::test_every_documented_exit_code",
    "tests/test_packaging.py::test_the_kernel_runs_the_same_nbboard",
]


@pytest.mark.parametrize("with_event_files", [True, False], ids=["cwd-with-event-files", "empty-cwd"])
def test_the_suite_passes_from_any_directory_and_leaves_home_alone(
    tmp_path: Path, demo_logs: Path, with_event_files: bool
) -> None:
    where = tmp_path / "clone"
    where.mkdir()
    if with_event_files:  # what `nbboard demo` leaves in the clone
        shutil.copytree(demo_logs, where / "nbboard-demo" / "logs")
    home = tmp_path / "user-home"
    (home / ".config").mkdir(parents=True)
    # The user's own environment: no per-test directories, only HOME (as in a terminal).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_", "XDG_", "NBBOARD_", "PYTEST_")) and k not in ("IPYTHONDIR", "TMPDIR")
    }
    env.update(HOME=str(home), TMPDIR=str(tmp_path / "user-tmp"))
    (tmp_path / "user-tmp").mkdir()
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
            *(str(ROOT / t) for t in CWD_SENSITIVE),
        ],
        cwd=where, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert written == [".config"], f"the tests wrote into HOME: {written}"
    left = sorted(str(p.relative_to(where)) for p in where.rglob("*") if "nbboard-demo" not in p.parts)
    assert left == [], f"the tests wrote into the working directory: {left}"
