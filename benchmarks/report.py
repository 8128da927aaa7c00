"""benchmarks/RESULTS.md and docs/performance.png from the sections a run measured.

A run may measure only some sections (``--only``): its sections replace the
stored ones of the same name in ``benchmarks/results.json`` and RESULTS.md is
rendered again from all stored sections. Each section names the run it comes
from, and every ratio in a section compares figures measured in that run.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
STORE = HERE / "results.json"
RESULTS = HERE / "RESULTS.md"
NOTES = HERE / "notes.md"
CHART = HERE.parent / "docs" / "performance.png"

#: Section order in RESULTS.md.
ORDER = [
    "lab",
    "sharedcode",
    "data",
    "browser",
    "standby",
    "restart",
    "cold",
    "kernel",
    "rerun",
    "load",
    "reuse",
    "stale",
    "kill",
    "list",
    "gate",
    "rss",
]


def machine() -> str:
    """The machine, in one line: CPU, cores, memory, OS, Python and the packages measured."""
    import tensorboard

    import nbboard

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f" load average {os.getloadavg()[0]:.1f} at the start;" if hasattr(os, "getloadavg") else ""
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()};{load} Python {platform.python_version()}, "
        f"TensorBoard {tensorboard.__version__}, nbboard {nbboard.__version__}"
    )


def run_header(argv: list[str]) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python", "benchmarks/run.py", *argv])
    return f"{when}, `{command}`, on {machine()}"


def save(sections: dict[str, str], figures: dict[str, Any], header: str) -> None:
    """Store this run's sections and figures, then write RESULTS.md (and the chart if it has figures)."""
    stored: dict[str, Any] = {"sections": {}, "figures": {}}
    if STORE.exists():
        stored = json.loads(STORE.read_text())
    for key, markdown in sections.items():
        stored["sections"][key] = {"markdown": markdown, "run": header}
    for key, value in figures.items():
        stored["figures"][key] = {"value": value, "run": header}
    STORE.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n")
    RESULTS.write_text(render(stored))
    if stored["figures"]:
        chart(stored["figures"])


def render(stored: dict[str, Any]) -> str:
    lines = [
        "# nbboard benchmarks",
        "",
        "Every figure is measured on the machine named under its section, side by side with the alternative in the same",
        "run (ratios compare figures of one run only). Regenerate everything with `python benchmarks/run.py`, or some",
        "sections with `python benchmarks/run.py --only data,standby` (they replace the stored ones in",
        "`benchmarks/results.json`). The chart `docs/performance.png` is drawn from the same figures.",
        "",
    ]
    keys = [k for k in ORDER if k in stored["sections"]] + sorted(set(stored["sections"]) - set(ORDER))
    for number, key in enumerate(keys, 1):
        entry = stored["sections"][key]
        markdown = entry["markdown"].replace("## ", f"## {number}. ", 1)
        head, _, body = markdown.partition("\n")
        lines += [head, "", f"_Run {entry['run']}._", body.rstrip(), ""]
    if NOTES.exists():
        lines += [NOTES.read_text().rstrip(), ""]
    return "\n".join(lines)


def chart(figures: dict[str, Any]) -> None:
    """Startup and data latency, nbboard against %tensorboard / bare TensorBoard (docs/performance.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def value(key: str) -> Any:
        return figures.get(key, {}).get("value")

    startup = [
        ("first board of a session\n(vs bare TensorBoard)", "standby_floor", "standby_first"),
        ("cold start, no standby\n(vs bare TensorBoard)", "cold_floor", "cold_nbboard"),
        ("re-display after restart,\nRun all (vs %tensorboard)", "restart_tensorboard", "restart_board"),
        ("re-display after restart,\none by one (vs %tensorboard)", "restart_tensorboard_step", "restart_board_step"),
    ]
    startup = [(label, value(a), value(b)) for label, a, b in startup if value(a) and value(b)]
    data = value("data_p50") or {}
    notebook = [
        ("first board,\n3 s after %load_ext", "lab_first"),
        ("a second, new board\nin the next cell", "lab_second"),
        ("the board's cell\nrun again (reuse)", "lab_rerun"),
        ("after a kernel restart", "lab_restart"),
    ]
    notebook = [(label, value(k)["tensorboard"], value(k)["board"]) for label, k in notebook if value(k)]
    panels = [p for p in (notebook, startup, data) if p]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6.6 * len(panels), 4.4), squeeze=False)
    ours, theirs = "#e8710a", "#7f8c99"
    axis = iter(axes[0])
    if notebook:
        ax = next(axis)
        ys = range(len(notebook))
        ax.barh([y + 0.2 for y in ys], [s[1] for s in notebook], 0.38, color=theirs, label="%tensorboard")
        ax.barh([y - 0.2 for y in ys], [s[2] for s in notebook], 0.38, color=ours, label="%board")
        for y, (_, t, n) in zip(ys, notebook, strict=True):
            ax.text(n, y - 0.2, f" {n:.2f} s ({n / t:.2f}×)", va="center", fontsize=8)
            ax.text(t, y + 0.2, f" {t:.2f} s", va="center", fontsize=8)
        ax.set_yticks(list(ys), [s[0] for s in notebook])
        ax.invert_yaxis()
        ax.set_xlabel("seconds from running the cell until a chart is drawn (median)")
        ax.set_xlim(0, max(max(s[1], s[2]) for s in notebook) * 1.45)
        ax.set_title("In JupyterLab (Chromium)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
    if startup:
        ax = next(axis)
        ys = range(len(startup))
        ax.barh([y + 0.2 for y in ys], [s[1] for s in startup], 0.38, color=theirs, label="TensorBoard / %tensorboard")
        ax.barh([y - 0.2 for y in ys], [s[2] for s in startup], 0.38, color=ours, label="nbboard")
        for y, (_, t, n) in zip(ys, startup, strict=True):
            ax.text(n, y - 0.2, f" {n:.2f} s ({t / n:.1f}× faster)", va="center", fontsize=8)
            ax.text(t, y + 0.2, f" {t:.2f} s", va="center", fontsize=8)
        ax.set_yticks(list(ys), [s[0] for s in startup])
        ax.invert_yaxis()
        ax.set_xlabel("seconds until the board answers (median)")
        ax.set_xlim(0, max(max(s[1], s[2]) for s in startup) * 1.45)
        ax.set_title("Start-up")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
    if data:
        ax = next(axis)
        sizes = sorted(data, key=int)
        xs = range(len(sizes))
        bare = [data[s]["bare"] * 1000 for s in sizes]
        nb = [data[s]["nbboard"] * 1000 for s in sizes]
        ax.bar([x - 0.2 for x in xs], bare, 0.38, color=theirs, label="bare TensorBoard")
        ax.bar([x + 0.2 for x in xs], nb, 0.38, color=ours, label="nbboard")
        for x, b, n in zip(xs, bare, nb, strict=True):
            ax.text(x + 0.2, n, f"{n:.0f}", ha="center", va="bottom", fontsize=8)
            ax.text(x - 0.2, b, f"{b:.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), [f"{s} points" for s in sizes])
        ax.set_ylabel("ms per scalars request (p50)")
        ax.set_title("Dashboard data")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    fig.suptitle("nbboard vs TensorBoard on the same machine, same run (lower is better)", fontsize=10)
    fig.tight_layout()
    CHART.parent.mkdir(exist_ok=True)
    fig.savefig(CHART, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # redraw RESULTS.md and the chart from results.json
    save({}, {}, " ".join(sys.argv))
