"""The chart in the notebook: ``%board`` vs ``%tensorboard`` end to end, JupyterLab 4 in headless Chromium.

What the user waits for: from running a board cell until TensorBoard has drawn a scalar chart in the
cell's output. One JupyterLab serves both sides; each round opens a fresh browser context and a fresh
kernel per side (sides alternate) and runs, in one notebook:

1. ``%load_ext`` and 3 s of reading, then the first board (logdir A);
2. a second, new board in the next cell (logdir B);
3. the first board's cell again (reuse);
4. a kernel restart, ``%load_ext`` and 2 s, then the first board's cell again;
5. the notebook saved and the page reloaded: until a chart is drawn again (or not at all).

WebGL is off (``--disable-webgl --disable-3d-apis``), so both sides draw SVG charts. The timed cell's
output is kept in view (JupyterLab 4 does not render off-screen cells; TensorBoard draws only visible cards).
Times are the browser's own clock: ``Date.now()`` in the page when the cell is run, and inside the board's
frame when the chart has drawn (polled every animation frame).

    python benchmarks/run.py --only lab          # this section only, 3 rounds after a warm-up round
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import requests
from common import FIGURES, WORK, fmt_s, kill_everything, section, tb_cleanup_registry

#: The steps of a round, in order; each is one row of the table.
STEPS = (
    ("first", "first board, 3 s after `%load_ext`"),
    ("second", "a second, new board in the next cell"),
    ("rerun", "the first board's cell run again (reuse)"),
    ("restart", "after a kernel restart: `%load_ext`, 2 s, the first board's cell"),
    ("reload", "page reload (notebook saved): until a chart is drawn again"),
)
GOALS = {"first": 0.5, "second": 0.4, "rerun": 0.3, "restart": 0.3}
CHROMIUM_EXTRA = ("--disable-webgl", "--disable-3d-apis")
#: A drawn scalar chart inside TensorBoard's frame (SVG renderer: a path with line segments, not an icon):
#: then the frame's Date.now(), when its navigation started (epoch ms) and whether TensorBoard's code came
#: from the browser's HTTP cache; null while there is none.
DRAWN = """() => {
  const drawn = [...document.querySelectorAll('scalar-card svg path, tf-scalar-card vz-line-chart2 path.line')]
    .some(p => !p.closest('mat-icon') && (p.getAttribute('d') || '').includes('L'));
  if (!drawn) return null;
  const js = performance.getEntriesByType('resource').find(e => new URL(e.name).pathname.endsWith('/index.js'));
  return {now: Date.now(), nav: performance.timeOrigin, cached: js ? js.transferSize === 0 : null};
}"""
#: Select cell ``i``, run it (not awaited: we time it ourselves) and return the page's Date.now(). What the cell
#: showed before is marked old first: a re-run's new output may hold the very same iframe element (nbboard
#: moves its live frame into the new view), so a frame counts only in a new board view, or as a new iframe
#: (``%tensorboard``). Marks on ``window.__marks`` when the cell's output first shows a new nbboard board, the
#: board says "running", and such a frame is in the output (the page's clock, ms).
RUN_CELL = """async ([i, wait]) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  panel.content.activeCellIndex = i;
  const node = panel.content.widgets[i].node;
  node.scrollIntoView({block: 'start'});
  for (const old of node.querySelectorAll('.nbboard, iframe')) old.dataset.benchOld = '1';
  const marks = window.__marks = {};
  const seen = () => {
    const out = node.querySelector('.jp-OutputArea');
    if (!out) return;
    const t = Date.now();
    if (!marks.board && out.querySelector('.nbboard:not([data-bench-old])')) marks.board = t;
    if (!marks.running && out.querySelector('.nbboard[data-state=running]:not([data-bench-old])')) marks.running = t;
    if (!marks.iframe && window.__newFrame(node)) marks.iframe = t;
  };
  if (window.__observer) window.__observer.disconnect();
  window.__observer = new MutationObserver(seen);
  window.__observer.observe(node, {subtree: true, childList: true, attributes: true});
  const t0 = Date.now();
  window.__marks.t0 = t0;
  const done = app.commands.execute('notebook:run-cell');
  if (wait) await done;
  return t0;
}"""
#: The frame of a new output in a cell's node (see RUN_CELL), laid out (not a zero-size placeholder).
NEW_FRAME = """window.__newFrame = (node) => [...node.querySelectorAll('.jp-OutputArea iframe')].find((f) => {
  const view = f.closest('.nbboard');
  const fresh = view ? !view.dataset.benchOld : !f.dataset.benchOld;
  return fresh && f.isConnected && f.getBoundingClientRect().height > 0;
}) || null;"""
#: The new board frame in cell ``i``'s output, or null.
FRAME_IN_CELL = """([i]) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
  return window.__newFrame(cell.node);
}"""


def _notebook(path: Path, ext: str, first: str, second: str) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for src in (ext, first, second)
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def _sides(round_: int) -> tuple[str, str]:
    return ("%board", "%tensorboard") if round_ % 2 == 0 else ("%tensorboard", "%board")


class _Timer:
    """Times cells of one notebook page: cell run → a chart drawn in that cell's board frame."""

    def __init__(self, page: Any) -> None:
        self.page = page
        #: per timed cell: (seconds from the cell's run until its frame's navigation started, TensorBoard's code cached)
        self.parts: list[tuple[float, bool | None]] = []

    def run(self, i: int, wait: bool = False) -> int:
        self.page.evaluate(f"() => {{ {NEW_FRAME} }}")
        return self.page.evaluate(RUN_CELL, [i, wait])

    def chart_time(self, i: int, t0: int, timeout: float = 60.0) -> float:
        """Seconds from ``t0`` (page clock, ms) until cell ``i``'s board frame has drawn a chart, checked inside
        the frame once it is in the new output (a frame kept alive from the old output has drawn before: then
        the time is when the check first ran in its new place)."""
        self.page.evaluate(f"() => {{ {NEW_FRAME} }}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            handle = self.page.evaluate_handle(FRAME_IN_CELL, [i])
            element = handle.as_element()
            frame = element.content_frame() if element is not None else None
            if frame is None or frame.url in ("", "about:blank"):
                time.sleep(0.01)
                continue
            try:
                left = max(1.0, deadline - time.monotonic()) * 1000
                done = frame.wait_for_function(DRAWN, timeout=min(left, 1000), polling="raf").json_value()
                self.parts.append(((done["nav"] - t0) / 1000, done["cached"]))
                return (done["now"] - t0) / 1000
            except Exception:  # noqa: BLE001 - the frame was replaced (a new view), or not drawn yet: look again
                continue
        raise TimeoutError(f"no chart drawn in cell {i} within {timeout:g} s")


def bench_lab(rounds: int) -> None:
    from nbboard.demo import write_demo_logs
    from tests.browser import JupyterServer, chromium

    logs = {name: write_demo_logs(WORK / f"lab-logs-{name}", steps=200, seed=i) for i, name in enumerate("AB")}
    cells = {
        "%board": ("%load_ext nbboard", f"%board --logdir {logs['A']}", f"%board --logdir {logs['B']}"),
        "%tensorboard": (
            "%load_ext tensorboard",
            f"%tensorboard --logdir {logs['A']}",
            f"%tensorboard --logdir {logs['B']}",
        ),
    }
    got: dict[str, dict[str, list[float]]] = {side: {key: [] for key, _ in STEPS} for side in cells}
    #: per side and step: seconds from the cell's run until its frame's navigation started; whether the code was cached
    nav: dict[str, dict[str, list[float]]] = {side: {key: [] for key, _ in STEPS} for side in cells}
    cached: dict[str, dict[str, list[bool | None]]] = {side: {key: [] for key, _ in STEPS} for side in cells}
    missing: dict[str, int] = {side: 0 for side in cells}
    lab_back: dict[str, list[float]] = {side: [] for side in cells}  # after the reload: the notebook's cells shown
    board_marks: dict[str, dict[str, list[float]]] = {}  # nbboard's output, step -> mark -> seconds after the run
    standby_boards = [0, 0]  # nbboard's boards of the first and second cells that were a standby
    notes = WORK / "lab-notebooks"
    notes.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    (WORK / "lab-server").mkdir()
    server = JupyterServer(WORK / "lab-server", notes)
    try:
        with chromium(WORK, CHROMIUM_EXTRA) as browser:
            for round_ in range(rounds + 1):
                for side in _sides(round_):
                    name = f"r{round_}-{side.strip('%')}.ipynb"
                    _notebook(notes / name, *cells[side])
                    times, boards, marks = _one_round(browser, server, name)
                    shown = {k: v if v is None else round(v[0], 3) for k, v in times.items()}
                    print(f"lab round {round_} {side}: {shown}", flush=True)
                    kill_everything()
                    tb_cleanup_registry()
                    if round_ == 0:
                        continue  # warm-up: Chromium, JupyterLab's assets, the kernel's imports
                    if side == "%board":
                        for key, m in marks.items():
                            for what, t in m.items():
                                board_marks.setdefault(key, {}).setdefault(what, []).append(t)
                        for i, logdir in enumerate((logs["A"], logs["B"])):
                            standby_boards[i] += any(b.logdir == str(logdir) and b.record.from_standby for b in boards)
                    for key, value in times.items():
                        if value is None:
                            missing[side] += key == "reload"
                            continue
                        if key == "reload":
                            lab_back[side].append(value[3])
                        got[side][key].append(value[0])
                        nav[side][key].append(value[1])
                        cached[side][key].append(value[2])
    finally:
        server.stop()
        kill_everything()
        tb_cleanup_registry()
    load_after = os.getloadavg()
    lines = [
        "JupyterLab 4 (`tests/browser.py`'s server) in headless Chromium with WebGL off (`--disable-webgl",
        "--disable-3d-apis`: both sides draw SVG charts). Each round gives each side a fresh browser context and a",
        "fresh kernel (sides alternate which goes first) and runs one notebook: `%load_ext`, 3 s of reading, the",
        "first board (logdir A, 2 runs × 200 steps); 3 s of looking at it, a second, new board in the next cell",
        "(logdir B); 3 s, the first board's cell again; a kernel restart (REST), `%load_ext`, 2 s, the first board's cell;",
        "then the notebook is saved and the page reloaded. Timed with the browser's own clock from running the cell",
        "(page) until a scalar card in that cell's board frame has drawn a line (frame, polled every animation",
        "frame); the reload row from the reload until a chart is drawn again. `%tensorboard` runs with its defaults",
        f"(ports from 6006 up). {rounds} rounds after a warm-up round; median [min–max]. Load average (1 min)",
        f"{load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end of the section (other work on the",
        "machine shares its 2 cores).",
        "",
        "| cell run → first chart drawn | `%tensorboard` | `%board` | `%board` / `%tensorboard` | goal |",
        "|---|---|---|---|---|",
    ]
    verdicts = []
    for key, label in STEPS:
        theirs, ours = got["%tensorboard"][key], got["%board"][key]
        if not theirs or not ours:
            lines.append(
                f"| {label} | {fmt_s(theirs) if theirs else 'not drawn'} | {fmt_s(ours) if ours else 'not drawn'} | | |"
            )
            continue
        ratio = statistics.median(ours) / statistics.median(theirs)
        goal = GOALS.get(key)
        verdict = "" if goal is None else f"≤ {goal:g}×: {'met' if ratio <= goal else 'missed'}"
        if goal is not None:
            verdicts.append(f"{key} {ratio:.2f}× ({'met' if ratio <= goal else 'missed'})")
        lines.append(f"| {label} | {fmt_s(theirs)} | {fmt_s(ours)} | {ratio:.2f}× | {verdict} |")
        FIGURES[f"lab_{key}"] = {"tensorboard": statistics.median(theirs), "board": statistics.median(ours)}
    lines += [
        "",
        "Where the time goes (medians): until the board's frame starts to load (the kernel: start or reuse, the",
        "display; the front end: the widget, the URL) + the frame's own load until the chart is drawn, and how often",
        "TensorBoard's 6 MB of JavaScript came from the browser's HTTP cache; or, when the new output shows the old",
        "output's live frame again (nbboard's frame park), how often and the whole time until its chart was checked",
        "drawn in the new output.",
        "",
        "| step | `%tensorboard`: until the frame loads + the frame | `%board`: until the frame loads + the frame |",
        "|---|---|---|",
    ]
    for key, label in STEPS:  # the reload's first part: JupyterLab itself, then the output (and its widget) again
        cells_ = []
        for side in ("%tensorboard", "%board"):
            if not nav[side][key]:
                cells_.append("")
                continue
            runs = list(zip(got[side][key], nav[side][key], cached[side][key], strict=True))
            loaded = [r for r in runs if r[1] >= 0]  # a frame that started loading before the run was kept alive
            parts = []
            if loaded:
                before = statistics.median(n for _, n, _ in loaded)
                frame = statistics.median(t - n for t, n, _ in loaded)
                hits = sum(bool(c) for _, _, c in loaded)
                parts.append(f"{before:.2f} s + {frame:.2f} s (code cached {hits} of {len(loaded)})")
            if len(loaded) < len(runs):
                kept = [t for t, n, _ in runs if n < 0]
                parts.append(
                    f"the same frame shown again in {len(kept)} of {len(runs)} (no load; {statistics.median(kept):.2f} s)"
                )
            cells_.append("; ".join(parts))
        lines.append(f"| {label} | {cells_[0]} | {cells_[1]} |")
    if lab_back["%board"] and lab_back["%tensorboard"]:
        lines += [
            "",
            "After the reload, JupyterLab showed the notebook's cells again after "
            f"{statistics.median(lab_back['%tensorboard']):.2f} s (`%tensorboard`'s round) and "
            f"{statistics.median(lab_back['%board']):.2f} s (`%board`'s): the rest of the reload row is the output "
            "(for `%board` its widget, whose model comes from the kernel) and the frame.",
        ]
    lines += [
        "",
        "`%board` in the page (medians, seconds after the cell's run): the board appears / says running / has its",
        "iframe:",
        "",
    ]
    for key, label in STEPS[:4]:
        m = board_marks.get(key, {})
        got_marks = " / ".join(
            f"{statistics.median(m[w]):.2f} s" if m.get(w) else "–" for w in ("board", "running", "iframe")
        )
        lines.append(f"- {label}: {got_marks}")
    lines += [
        "",
        f"nbboard's first boards were the standby in {standby_boards[0]} of {rounds} rounds, its second boards in "
        f"{standby_boards[1]} of {rounds}.",
        "",
        "Goals: " + "; ".join(verdicts) + ".",
    ]
    for side in cells:
        if missing[side]:
            lines.append(f"After the reload, `{side}` drew no chart in {missing[side]} of {rounds} rounds (60 s).")
    section(
        "The chart in the notebook: `%board` vs `%tensorboard` in JupyterLab, cell run → chart drawn", lines, key="lab"
    )


Timed = tuple  # (total, until the frame loads, code cached[, the reload only: until JupyterLab shows the cells])


def _one_round(
    browser: Any, server: Any, name: str
) -> tuple[dict[str, Timed | None], list[Any], dict[str, dict[str, float]]]:
    """One side's notebook, start to end; its timings (total, until the frame loads, code cached) and the
    boards nbboard listed before the kernel restart (empty for ``%tensorboard``)."""
    import nbboard

    server.open_session(name)
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    times: dict[str, Timed | None] = {}
    marks: dict[str, dict[str, float]] = {}
    boards: list[Any] = []
    try:
        page = context.new_page()
        page.goto(f"{server.base}lab/tree/{name}?reset&token={server.token}")
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
            " && window.jupyterapp.shell.currentWidget.content.widgets.length === 3",
            timeout=120_000,
        )
        timer = _Timer(page)

        def timed(key: str, cell: int) -> None:
            total = timer.chart_time(cell, timer.run(cell))
            before, hit = timer.parts[-1]
            times[key] = (total, before, hit)
            m = page.evaluate("() => window.__marks")
            marks[key] = {k: (v - m["t0"]) / 1000 for k, v in m.items() if k != "t0"}

        timer.run(0, wait=True)
        time.sleep(3.0)  # the user reads, types the next cell
        timed("first", 1)
        time.sleep(3.0)  # the user looks at the chart, types the next cell
        timed("second", 2)
        boards = nbboard.list()
        time.sleep(3.0)  # the user looks at the second board, goes back to the first
        timed("rerun", 1)
        time.sleep(1.0)
        _restart_kernel(server, name, page)
        timer.run(0, wait=True)
        time.sleep(2.0)
        timed("restart", 1)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        time.sleep(1.0)
        t0 = page.evaluate("() => Date.now()")
        page.reload()
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.content.widgets.length === 3",
            timeout=120_000,
        )
        lab_back = (page.evaluate("() => Date.now()") - t0) / 1000  # JupyterLab shows the notebook's cells again
        reload_timer = _Timer(page)
        try:
            total = reload_timer.chart_time(1, t0, timeout=60)
            times["reload"] = (total, *reload_timer.parts[-1], lab_back)
        except TimeoutError:
            times["reload"] = None
    finally:
        context.close()
        for s in requests.get(server.base + "api/sessions", headers=server.headers, timeout=10).json():
            requests.delete(server.base + f"api/sessions/{s['id']}", headers=server.headers, timeout=30)
    print(f"  marks {marks}", flush=True)
    return times, boards, marks


def _restart_kernel(server: Any, name: str, page: Any) -> None:
    (session,) = [
        s
        for s in requests.get(server.base + "api/sessions", headers=server.headers, timeout=10).json()
        if s["path"] == name
    ]
    kernel = session["kernel"]["id"]
    r = requests.post(server.base + f"api/kernels/{kernel}/restart", headers=server.headers, timeout=60)
    r.raise_for_status()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=60_000,
    )
    time.sleep(1.0)  # the restarted kernel settles; %tensorboard's TensorBoard is gone with the old one


def bench_shared_code(reps: int) -> None:
    """The code origin alone, without JupyterLab or the standby: a second board's page, shared code on vs off."""
    import nbboard
    from nbboard.config import BoardConfig
    from nbboard.demo import write_demo_logs
    from tests.browser import chromium

    logs = [write_demo_logs(WORK / f"shared-code-{i}", seed=i) for i in range(2)]
    rows = ("first board (cold cache)", "a second board, another port", "the second board again (reload)")
    got: dict[tuple[str, str], list[float]] = {}
    drawn = "() => [...document.querySelectorAll('scalar-card svg path')].some(p => !p.closest('mat-icon') && (p.getAttribute('d') || '').includes('L'))"

    def visit(page: Any, url: str) -> float:
        page.goto("about:blank")
        t0 = time.perf_counter()
        page.goto(url + "#timeseries", wait_until="commit")
        page.wait_for_function(drawn, timeout=120_000, polling="raf")
        return time.perf_counter() - t0

    with chromium(WORK, CHROMIUM_EXTRA) as browser:
        for rep in range(reps + 1):
            for mode in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                os.environ["NBBOARD_SHARED_CODE"] = "1" if mode == "on" else "0"
                try:
                    boards = [nbboard.start(str(d), config=BoardConfig(standby=False)) for d in logs]
                    context = browser.new_context(viewport={"width": 1400, "height": 1200})
                    page = context.new_page()
                    times = (visit(page, boards[0].url), visit(page, boards[1].url), visit(page, boards[1].url))
                    context.close()
                finally:
                    os.environ.pop("NBBOARD_SHARED_CODE", None)
                    kill_everything()
                if rep:
                    for row, t in zip(rows, times, strict=True):
                        got.setdefault((mode, row), []).append(t)
    lines = [
        "Headless Chromium alone (WebGL off), a fresh context per round: two fresh boards (cold starts, no standby),",
        "the first board's page, then the second board's, then the second again; timed from the navigation until a",
        f"scalar chart is drawn. Shared code on vs off (`NBBOARD_SHARED_CODE=0`), alternating; {reps} rounds after a",
        f"warm-up round. Load average (1 min) {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| page | shared code off | shared code on | on / off |",
        "|---|---|---|---|",
    ]
    for row in rows:
        off, on = got[("off", row)], got[("on", row)]
        lines.append(f"| {row} | {fmt_s(off)} | {fmt_s(on)} | {statistics.median(on) / statistics.median(off):.2f}× |")
    section("One code origin for every board: a second board's page, shared code on vs off", lines, key="sharedcode")
