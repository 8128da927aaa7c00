"""`%board` and `nbboard start` with no logdir: what a user sees in a real kernel, the CLI and JupyterLab.

Everything is real: the kernel, TensorBoard, JupyterLab and Chromium; the logdirs are the demo's real
event files, copied to where training scripts put them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import nbboard
from tests.browser import JupyterServer, chromium
from tests.helpers import nbboard_cli
from tests.kernel import Kernel, widget_state


def _logdir(src: Path, dst: Path, age: float = 0.0) -> Path:
    shutil.copytree(src, dst)
    if age:
        stamp = time.time() - age
        for f in dst.rglob("events.out.tfevents.*"):
            os.utime(f, (stamp, stamp))
    return dst


@pytest.fixture
def kernel_in(isolated: Path, tmp_path: Path) -> Iterator[tuple[Kernel, Path]]:
    work = tmp_path / "project"
    work.mkdir()
    k = Kernel(work)
    k.text("%load_ext nbboard")
    yield k, work
    k.shutdown()


def test_one_logdir_found_is_started(kernel_in: tuple[Kernel, Path], demo_logs: Path) -> None:
    kernel, work = kernel_in
    runs = _logdir(demo_logs, work / "runs")
    (work / ".venv").mkdir()
    _logdir(demo_logs, work / ".venv" / "copy")  # hidden: never offered
    outputs = kernel.run("%board")
    assert not [o for o in outputs if o["type"] == "error"]
    text = "".join(o.get("text", "") for o in outputs if o["type"] == "stream")
    assert f"no logdir given; found event files in {runs}" in text
    (inst,) = nbboard.list()
    assert inst.logdir == str(runs) and inst.status == "running"
    assert widget_state(outputs)["status"] == "running"


def test_several_are_offered_newest_first_and_nothing_starts(kernel_in: tuple[Kernel, Path], demo_logs: Path) -> None:
    kernel, work = kernel_in
    _logdir(demo_logs, work / "logs", age=7200)
    _logdir(demo_logs, work / "runs")
    outputs = kernel.run("%board")
    state = widget_state(outputs)
    assert state["status"] == "choose"
    assert [c["label"] for c in state["candidates"]] == ["runs", "logs"]
    assert state["candidates"][1]["detail"] == "written 2 h ago, 2 runs"
    assert nbboard.list() == []  # offering starts nothing


def test_nothing_found_fails_the_cell_with_the_next_step(kernel_in: tuple[Kernel, Path]) -> None:
    kernel, work = kernel_in
    reply, outputs = kernel.execute("%board")
    assert reply["status"] == "error" and reply["ename"] == "UsageError"
    text = "".join(o.get("text", "") for o in outputs if o["type"] == "stream")
    assert f"no event files (events.out.tfevents.*) under {work}" in text and "%board --logdir DIR" in text


def test_terminal_ipython_gets_lines_to_copy(isolated: Path, tmp_path: Path, demo_logs: Path) -> None:
    import subprocess
    import sys

    _logdir(demo_logs, tmp_path / "logs", age=600)
    _logdir(demo_logs, tmp_path / "my runs", age=120)
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c", "%load_ext nbboard\n%board"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "%board --logdir 'my runs'   # written 2 min ago, 2 runs" in result.stdout, result.stdout + result.stderr
    assert "%board --logdir logs        # written 10 min ago, 2 runs" in result.stdout
    assert nbboard.list() == []


def test_the_cli_starts_the_one_it_finds_and_lists_several(isolated: Path, tmp_path: Path, demo_logs: Path) -> None:
    one = tmp_path / "one"
    runs = _logdir(demo_logs, one / "lightning_logs")
    result = nbboard_cli("start", "--json", cwd=one)
    assert result.returncode == 0, result.stderr
    assert f"found event files in {runs}" in result.stderr
    assert json.loads(result.stdout)["logdir"] == str(runs)

    two = tmp_path / "two"
    _logdir(demo_logs, two / "runs")
    _logdir(demo_logs, two / "logs", age=60)
    result = nbboard_cli("start", cwd=two)
    assert result.returncode == 2
    assert "nbboard start --logdir runs" in result.stderr and "nbboard start --logdir logs" in result.stderr
    assert [i.logdir for i in nbboard.list()] == [str(runs)]


def test_the_buttons_start_the_chosen_logdir_in_jupyterlab(
    isolated: Path, tmp_path: Path, demo_logs: Path, artifacts: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _logdir(demo_logs, work / "logs", age=3600)
    runs = _logdir(demo_logs, work / "runs")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%load_ext nbboard\n%board")])
    nbformat.write(nb, work / "find.ipynb")
    server = JupyterServer(tmp_path, work)
    try:
        server.open_session("find.ipynb")
        with chromium(tmp_path) as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{server.base}lab/tree/find.ipynb?reset&token={server.token}")
            page.wait_for_function(
                "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
                timeout=90_000,
            )
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            buttons = page.locator(".nbboard .nbboard-candidate")
            buttons.first.wait_for(timeout=90_000)
            assert buttons.count() == 2
            assert buttons.nth(0).locator("code").inner_text() == "runs"
            assert "1 h ago" in buttons.nth(1).inner_text()
            page.locator(".nbboard").first.screenshot(path=str(artifacts / "board-discovery.png"))
            buttons.nth(0).click()
            page.frame_locator("iframe.nbboard-frame").first.get_by_text("loss", exact=True).first.wait_for(
                timeout=120_000
            )
            (inst,) = nbboard.list()
            assert inst.logdir == str(runs)
            assert page.locator(".nbboard .nbboard-frame").get_attribute("src") == f"http://127.0.0.1:{inst.port}/"
    finally:
        server.stop()
