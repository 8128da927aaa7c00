"""What a board cell sends to the front end, counted message by message in a real kernel.

ipywidgets 7 (Colab) displays a widget through ``_ipython_display_``, which drops ``display_id``:
there, updating the display sent the widget a second time. ``tests/matrix.sh`` runs this file on
Colab's versions (ipywidgets 7.7.1, IPython 7.34) as well as on the newest ones (ipywidgets 8).
"""

from __future__ import annotations

import html
import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

import nbboard
from tests.helpers import tensorboards_serving
from tests.kernel import Kernel, widget_state

VIEW = "application/vnd.jupyter.widget-view+json"
STUB = Path(__file__).resolve().parent / "stubs" / "tensorboard_without.py"


def _shown(outs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The cell's display_data messages, per widget model id."""
    per_model: dict[str, list[dict[str, Any]]] = {}
    for o in outs:
        if o["type"] == "display_data" and VIEW in o["data"]:
            per_model.setdefault(o["data"][VIEW]["model_id"], []).append(o)
    return per_model


def _one_display(outs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Asserts the cell displayed exactly one widget, once, and that every update targets that display.

    Returns (model id, the newest bundle: the display or its last update)."""
    errors = [o for o in outs if o["type"] == "error"]
    assert not errors, "\n".join(errors[0]["traceback"])
    shown = _shown(outs)
    assert len(shown) == 1, f"the cell displayed {len(shown)} widgets"
    ((model_id, displays),) = shown.items()
    assert len(displays) == 1, f"widget {model_id} was displayed {len(displays)} times"
    display_id = displays[0]["transient"]["display_id"]
    updates = [o for o in outs if o["type"] == "update_display_data"]
    for u in updates:
        assert u["transient"]["display_id"] == display_id
        assert u["data"][VIEW]["model_id"] == model_id
    return model_id, (updates or displays)[-1]["data"]


def _stream(outs: list[dict[str, Any]]) -> str:
    return "".join(o.get("text", "") for o in outs if o["type"] == "stream")


def test_every_board_cell_displays_its_widget_once(kernel: Kernel, demo_logs: Path) -> None:
    model_id, bundle = _one_display(kernel.run(f"%board --logdir {demo_logs}"))
    (inst,) = nbboard.list()
    # The fallback for front ends without widgets (nbconvert) is the current one, not "starting".
    assert inst.url in bundle["text/html"] and "running" in bundle["text/plain"]

    reused, bundle = _one_display(kernel.run(f"%board --logdir {demo_logs}"))
    assert reused == model_id and inst.url in bundle["text/html"]

    newest, bundle = _one_display(kernel.run("%board"))
    assert inst.url in bundle["text/html"]

    api_shown, _ = _one_display(kernel.run("import nbboard; board = nbboard.display(nbboard.list()[0])"))
    assert len({model_id, newest, api_shown}) == 3
    assert [i.pid for i in nbboard.list()] == [inst.pid]


def test_a_failed_start_displays_once_and_its_fallback_says_why(kernel: Kernel, demo_logs: Path) -> None:
    _, bundle = _one_display(kernel.run(f"%board --logdir {demo_logs} --no_such_flag=1"))
    assert "failed" in bundle["text/html"] and "no_such_flag" in bundle["text/html"]
    assert nbboard.list() == []


def _needs_pkg_resources() -> bool:
    """tensorboard up to 2.20 imports setuptools' pkg_resources at start; 2.21 no longer does."""
    spec = importlib.util.find_spec("tensorboard.default")
    assert spec is not None and spec.origin
    return "import pkg_resources" in Path(spec.origin).read_text(encoding="utf-8")


def test_tensorboard_dying_while_importing_is_text_in_the_cell_and_the_cell_fails(
    isolated: Path, tmp_path: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Colab failure: tensorboard 2.19 on a Python without setuptools dies with
    ``No module named 'pkg_resources'`` before it serves.

    Real: the kernel, nbboard, the installed TensorBoard and the ModuleNotFoundError raised at
    TensorBoard's own import statement. Simulated: only the module's absence
    (tests/stubs/tensorboard_without.py hides it from the import system). Where the installed
    TensorBoard no longer imports pkg_resources (2.21+), it hides werkzeug instead, another
    dependency TensorBoard imports at start, so the same failure is checked on every stack.
    """
    missing = "pkg_resources" if _needs_pkg_resources() else "werkzeug"
    monkeypatch.setenv("NBBOARD_TENSORBOARD", shlex.join([sys.executable, str(STUB), missing]))
    k = Kernel(tmp_path)
    try:
        k.text("%load_ext nbboard")
        reply, outs = k.execute(f"%board --logdir {demo_logs}\nprint('the rest of the cell ran')")
    finally:
        k.shutdown()
    _, bundle = _one_display(outs)
    text = _stream(outs)
    says = f"No module named '{missing}'"
    # The traceback's tail, as plain text in the cell...
    assert "TensorBoard exited with code 1 before it was ready" in text and says in text
    assert "Traceback (most recent call last)" in text and "full log:" in text
    if missing == "pkg_resources":  # the fix, not just the symptom
        assert "pip install 'setuptools<81'" in text
    # ...in the widget, and in the fallback that front ends without widgets show.
    state = widget_state(outs)
    assert state["status"] == "failed" and says in state["error"]
    assert html.escape(says) in bundle["text/html"]
    # The cell fails there, as IPython's own magics do (UsageError: no Python traceback of nbboard's own),
    # so "Run all" stops at it and the rest of the cell does not run (issue 10).
    assert reply["status"] == "error" and reply["ename"] == "UsageError"
    assert text.startswith("UsageError: nbboard: TensorBoard exited with code 1")
    assert "the rest of the cell ran" not in text
    assert nbboard.list() == [] and tensorboards_serving(demo_logs) == []
