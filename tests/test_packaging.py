"""What ``pip install nbboard`` puts on disk is enough to run it.

In the main environment nbboard comes from the checkout; ``tests/matrix.py`` runs this file against
the wheel built from it, installed in a venv, with ``NBBOARD_MATRIX_CHECKOUT`` naming the checkout:
there a wheel that left out the front end (``js/``) or the demo fails here first, by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbboard
from tests.kernel import Kernel


def test_the_front_end_ships_inside_the_package() -> None:
    """Every file of js/ (the views, the view they share, the style), and both views put together from them."""
    from nbboard import frontend

    package = Path(nbboard.__file__).resolve().parent
    checkout = Path(os.environ.get("NBBOARD_MATRIX_CHECKOUT") or package.parent)
    shipped = sorted(p.name for p in (checkout / "js").iterdir() if p.suffix in (".js", ".css"))
    assert {"board.js", "view.js", "frame_park.js", "colab_board.js", "board.css"} <= set(shipped)
    for name in shipped:
        path = frontend.static(name)
        assert path.stat().st_size > 0, path
        if os.environ.get("NBBOARD_MATRIX_CHECKOUT"):
            assert path == package / "static" / name  # from the wheel, not from a js/ lying beside it
    assert "export default" in frontend.module("board.js") and "function drawHeader" in frontend.module("board.js")
    assert "function adopt" in frontend.module("board.js")  # js/frame_park.js, inlined too
    assert "function drawHeader" in frontend.script("colab_board.js")
    if os.environ.get("NBBOARD_MATRIX_CHECKOUT"):
        checkout = Path(os.environ["NBBOARD_MATRIX_CHECKOUT"]).resolve()
        assert package != checkout / "nbboard", "nbboard was imported from the checkout, not the installed wheel"
        assert Path(sys.prefix).resolve() in package.parents, f"nbboard is not installed in this venv: {package}"


def test_the_installed_command_writes_the_demo(tmp_path: Path) -> None:
    """The ``nbboard`` console script of this environment, as a user types it after ``pip install``."""
    command = Path(sys.executable).parent / ("nbboard.exe" if os.name == "nt" else "nbboard")
    done = subprocess.run(
        [str(command), "demo", "--no-start", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote example summaries" in done.stdout
    for run in ("train", "eval"):
        assert list((tmp_path / "demo" / "logs" / run).glob("events.out.tfevents.*"))


def test_the_kernel_runs_the_same_nbboard(isolated: Path, tmp_path: Path) -> None:
    """The tests' kernel imports the nbboard under test, not another install on this machine."""
    k = Kernel(tmp_path)
    try:
        there = k.text("import nbboard, sys; print(nbboard.__file__); print(sys.prefix)").split()
    finally:
        k.shutdown()
    assert there == [nbboard.__file__, sys.prefix]


def test_pyngrok_comes_with_nbboard() -> None:
    """`pip install nbboard` brings pyngrok, so `--tunnel ngrok` needs no extra step (it is no longer an extra)."""
    import importlib.metadata
    import importlib.util
    import re

    requires = importlib.metadata.requires("nbboard") or []
    assert [r for r in requires if re.match(r"pyngrok\b", r) and "extra ==" not in r], requires
    assert importlib.util.find_spec("pyngrok") is not None
