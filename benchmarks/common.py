"""What every benchmark section shares: an isolated registry, statistics, boards, kernels, the report.

Importing this module moves the process into its own NBBOARD_HOME and TMPDIR
(under a fresh temp directory), so a benchmark never lists or stops a board
it did not start.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# An installed nbboard has its bytecode compiled (pip does it); so does this checkout, and its kernels may use it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
import compileall  # noqa: E402

compileall.compile_dir(str(ROOT / "nbboard"), quiet=1)

WORK = Path(tempfile.mkdtemp(prefix="nbb-bench-"))
os.environ["NBBOARD_HOME"] = str(WORK / "home")
os.environ["TMPDIR"] = str(WORK / "tmp")
(WORK / "tmp").mkdir()
tempfile.tempdir = None

from nbboard import api  # noqa: E402


def stats(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def fmt_s(xs: list[float], unit: str = "s") -> str:
    med, lo, hi = stats(xs)
    if unit == "ms":
        return f"{med * 1000:.1f} ms [{lo * 1000:.1f}–{hi * 1000:.1f}]"
    return f"{med:.3f} s [{lo:.3f}–{hi:.3f}]"


#: Sections measured in this run: key -> markdown (see report.py, which merges them into RESULTS.md).
SECTIONS: dict[str, str] = {}
#: Figures for the chart (docs/performance.png), by key.
FIGURES: dict[str, object] = {}


def section(title: str, lines: list[str], key: str = "") -> None:
    block = [f"## {title}", "", *lines, ""]
    SECTIONS[key or title] = "\n".join(block)
    print("\n".join(block), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs_listed(port: int, expected: int) -> bool:
    try:
        return len(requests.get(f"http://127.0.0.1:{port}/data/runs", timeout=2).json()) >= expected
    except (requests.RequestException, ValueError):
        return False


def wait_runs(port: int, expected: int, poll: float = 0.01, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not runs_listed(port, expected):
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} never listed {expected} runs")
        time.sleep(poll)


def stop_pid(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        p = psutil.Process(pid)
        family = [p, *p.children(recursive=True)]
        for q in family:
            with contextlib.suppress(psutil.Error):
                q.kill()
        psutil.wait_procs(family, timeout=5)


def kill_everything() -> None:
    with contextlib.suppress(Exception):
        api.kill()


class Kernel:
    """A real IPython kernel; ``env`` adds to (or, with None values, removes from) this process's environment."""

    def __init__(self, cwd: Path, env: dict[str, str | None] | None = None) -> None:
        from jupyter_client.manager import KernelManager

        environ = os.environ.copy()
        for k, v in (env or {}).items():
            if v is None:
                environ.pop(k, None)
            else:
                environ[k] = v
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=environ)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def time(self, code: str) -> float:
        t0 = time.perf_counter()
        reply = self.kc.execute_interactive(code, timeout=180, output_hook=lambda msg: None)
        elapsed = time.perf_counter() - t0
        assert reply["content"]["status"] == "ok", reply["content"]
        return elapsed

    def output(self, code: str) -> str:
        """Run ``code``; its printed text."""
        chunks: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                chunks.append(msg["content"]["text"])

        reply = self.kc.execute_interactive(code, timeout=180, output_hook=hook)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(chunks)

    def restart(self) -> None:
        self.kc.stop_channels()
        self.km.restart_kernel(now=False)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def tb_cleanup_registry() -> None:
    from tensorboard import manager

    for info in manager.get_all():
        stop_pid(info.pid)
    info_dir = Path(tempfile.gettempdir()) / ".tensorboard-info"
    for f in info_dir.glob("*.info"):
        f.unlink()


def bare_start(logdir: Path, runs: int) -> float:
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    wait_runs(port, runs)
    elapsed = time.perf_counter() - t0
    stop_pid(p.pid)
    p.wait()
    return elapsed
