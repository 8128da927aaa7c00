"""Sections of benchmarks/run.py on what the user waits for: dashboard data, the first chart in a browser,
the first board of a session (the standby) and re-display after a kernel restart.

Each compares nbboard with bare TensorBoard or ``%tensorboard`` in the same run.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests
from common import (
    FIGURES,
    ROOT,
    WORK,
    Kernel,
    bare_start,
    fmt_s,
    free_port,
    kill_everything,
    section,
    stop_pid,
    tb_cleanup_registry,
    wait_runs,
)

import nbboard
from nbboard import registry
from nbboard.config import BoardConfig

COLD = BoardConfig(standby=False)
SERIES = (200, 1000, 5000)
TAGS = ("loss", "accuracy", "learning_rate", "grad_norm")
#: Serve every point, so that the 5000-point series is 5000 points (TensorBoard keeps 1000 by default).
ALL_POINTS = ["--samples_per_plugin=scalars=10000"]


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def spread(xs: list[float]) -> str:
    return f"{ms(statistics.median(xs))} [{xs and min(xs) * 1000:.1f}–{max(xs) * 1000:.1f}]"


# ---------------------------------------------------------------------------
# logdirs


def write_series_logdir(path: Path) -> Path:
    """Three runs of 200, 1000 and 5000 steps, four scalar tags each."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    if (path / "done").exists():
        return path
    for n in SERIES:
        w = EventFileWriter(str(path / f"s{n}"), max_queue_size=10000)
        for step in range(n):
            values = [
                summary_pb2.Summary.Value(tag=tag, simple_value=float(step) / (k + 1) + 0.01 * (step % 7))
                for k, tag in enumerate(TAGS)
            ]
            w.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=values)))
        w.close()
    (path / "done").write_text("")
    return path


def write_big_logdir(path: Path, runs: int, steps: int) -> Path:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    if (path / "done").exists():
        return path
    for r in range(runs):
        w = EventFileWriter(str(path / f"run{r:02d}"), max_queue_size=10000)
        for step in range(steps):
            values = [summary_pb2.Summary.Value(tag=f"m{k}", simple_value=float(step * k + r)) for k in range(4)]
            w.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=values)))
        w.close()
    (path / "done").write_text("")
    return path


# ---------------------------------------------------------------------------
# boards


class Board:
    """A fresh board on the series logdir: nbboard's (cold, no standby) or bare ``tensorboard``."""

    def __init__(self, kind: str, logdir: Path, extra: list[str]) -> None:
        self.kind = kind
        self.nodelay = ""
        if kind == "nbboard":
            inst = nbboard.start(str(logdir), extra_args=extra, config=COLD)
            self.pid, self.port = inst.pid, inst.port
            self.nodelay = "applied" if inst.record.nodelay else f"not applied ({inst.record.nodelay_note})"
        else:
            self.port = free_port()
            argv = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(self.port)]
            self.proc = subprocess.Popen(
                [*argv, "--host", "127.0.0.1", *extra],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.pid = self.proc.pid
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_loaded(self, points: int, timeout: float = 180) -> None:
        """Until every tag of the longest run is served with ``points`` points."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException, ValueError):
                if all(len(self.scalars(f"s{SERIES[-1]}", tag)) == points for tag in TAGS):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.kind} board never served {points} points")

    def scalars(self, run: str, tag: str = "loss", session: requests.Session | None = None) -> list:
        get = (session or requests).get
        reply = get(self.url + "data/plugin/scalars/scalars", params={"run": run, "tag": tag}, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def stop(self) -> None:
        if self.kind == "nbboard":
            kill_everything()
        else:
            stop_pid(self.pid)
            self.proc.wait()


def sides(rep: int) -> tuple[str, str]:
    """Alternate which side goes first, so that drift hits both alike."""
    return ("nbboard", "bare") if rep % 2 == 0 else ("bare", "nbboard")


# ---------------------------------------------------------------------------
# Dashboard data


def bench_data(requests_per_series: int, boards: int = 3) -> None:
    logdir = write_series_logdir(WORK / "series")
    p50: dict[str, dict[int, list[float]]] = {"nbboard": {n: [] for n in SERIES}, "bare": {n: [] for n in SERIES}}
    notes = []
    for rep in range(boards):
        for kind in sides(rep):
            board = Board(kind, logdir, ALL_POINTS)
            try:
                board.wait_loaded(SERIES[-1])
                session = requests.Session()
                for n in SERIES:
                    for _ in range(3):
                        board.scalars(f"s{n}", session=session)  # warm-up (connection, caches)
                times: dict[int, list[float]] = {n: [] for n in SERIES}
                for _ in range(requests_per_series):
                    for n in SERIES:
                        t0 = time.perf_counter()
                        points = board.scalars(f"s{n}", session=session)
                        times[n].append(time.perf_counter() - t0)
                        assert len(points) == n
                for n in SERIES:
                    p50[kind][n].append(statistics.median(times[n]))
                if kind == "nbboard":
                    notes.append(board.nodelay)
            finally:
                board.stop()
    med = {kind: {n: statistics.median(v) for n, v in series.items()} for kind, series in p50.items()}
    lines = [
        f"`GET /data/plugin/scalars/scalars` for one run and tag, {requests_per_series} sequential keep-alive requests per",
        f"series on each of {boards} fresh nbboard boards and {boards} fresh bare `tensorboard` processes (same logdir, same",
        f"flags `{' '.join(ALL_POINTS)}` so that every point is served; boards alternate, one at a time). Cell: median of",
        "the boards' p50 [min–max of the boards' p50].",
        "",
        "| series | bare TensorBoard p50 | nbboard p50 | bare / nbboard |",
        "|---|---|---|---|",
    ]
    for n in SERIES:
        lines.append(
            f"| {n} points | {spread(p50['bare'][n])} | {spread(p50['nbboard'][n])} | {med['bare'][n] / med['nbboard'][n]:.1f}× |"
        )
    both = (med["bare"][200] + med["bare"][1000]) / (med["nbboard"][200] + med["nbboard"][1000])
    worst = max(max(p50["nbboard"][200]), max(p50["nbboard"][1000]))
    five = med["bare"][5000] / med["nbboard"][5000]
    lines += [
        "",
        f"200 + 1000 points together: {both:.1f}× faster than bare (target ≥ 4×: {'met' if both >= 4 else 'missed'}); "
        f"highest nbboard p50 for them {ms(worst)} (target ≤ 25 ms: {'met' if worst <= 0.025 else 'missed'}); "
        f"5000 points {five:.2f}× (target ≥ 1, no slower: {'met' if five >= 1 else 'missed'}).",
        f"TCP_NODELAY on nbboard's boards: {', '.join(sorted(set(notes)))}.",
    ]
    control = _toggled_control(logdir, requests_per_series)
    lines += [
        "",
        "Control, free of board-to-board variation: one bare TensorBoard whose data server's sockets are switched",
        "between TensorBoard's own setting and TCP_NODELAY (from this process, through `pidfd_getfd`) every",
        f"{CONTROL_BLOCK} requests per series, {requests_per_series * 2} requests per series and setting in all.",
        "",
        "| series | TensorBoard's sockets p50 | TCP_NODELAY p50 | ratio |",
        "|---|---|---|---|",
    ]
    for n in SERIES:
        off, on = statistics.median(control[False][n]), statistics.median(control[True][n])
        lines.append(f"| {n} points | {ms(off)} | {ms(on)} | {off / on:.1f}× |")
    section("Dashboard data: scalar series from nbboard's boards vs bare TensorBoard", lines, key="data")
    FIGURES["data_p50"] = {str(n): {"bare": med["bare"][n], "nbboard": med["nbboard"][n]} for n in SERIES}


CONTROL_BLOCK = 5


def _toggled_control(logdir: Path, requests_per_series: int) -> dict[bool, dict[int, list[float]]]:
    import socket

    from nbboard import nodelay

    board = Board("bare", logdir, ALL_POINTS)
    times: dict[bool, dict[int, list[float]]] = {False: {n: [] for n in SERIES}, True: {n: [] for n in SERIES}}
    try:
        board.wait_loaded(SERIES[-1])
        (server,) = psutil.Process(board.pid).children()
        session = requests.Session()

        def switch(on: bool) -> None:
            pidfd = os.pidfd_open(server.pid)
            try:
                for fd in nodelay._socket_fds(server.pid):
                    with socket.socket(fileno=nodelay._pidfd_getfd(pidfd, fd)) as sock:
                        if sock.family in (socket.AF_INET, socket.AF_INET6):
                            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(on))
            finally:
                os.close(pidfd)

        for n in SERIES:
            board.scalars(f"s{n}", session=session)
        for block in range(2 * requests_per_series // CONTROL_BLOCK):
            on = block % 2 == 1
            switch(on)
            for _ in range(CONTROL_BLOCK):
                for n in SERIES:
                    t0 = time.perf_counter()
                    board.scalars(f"s{n}", session=session)
                    times[on][n].append(time.perf_counter() - t0)
    finally:
        board.stop()
    return times


# ---------------------------------------------------------------------------
# The first chart in a real browser

#: Scalar cards whose chart has drawn a line (SVG renderer: a path with line segments, not a mat-icon):
#: at least ``want`` of them, and with ``want`` 0 every card the page shows (TensorBoard expands two groups).
DRAWN = """(want) => {
  const cards = [...document.querySelectorAll('scalar-card')];
  const drawn = cards.filter(c => [...c.querySelectorAll('svg path')]
      .some(p => !p.closest('mat-icon') && (p.getAttribute('d') || '').includes('L')));
  return want ? drawn.length >= want : cards.length >= 2 && drawn.length === cards.length;
}"""


#: The page's own Resource Timing of its data requests (``/data/…``), after the charts are drawn.
DATA_TIMING = """() => performance.getEntriesByType('resource')
  .filter(e => new URL(e.name).pathname.includes('/data/'))
  .map(e => [new URL(e.name).pathname, e.duration])"""


def bench_browser(reps: int) -> None:
    from tests.browser import chromium  # the suite's launcher: Debian's chromium, the same flags, a private profile

    logdir = write_series_logdir(WORK / "series")
    rows = (
        "first visit: first chart drawn",
        "first visit: every shown chart drawn",
        "reload (code cached): first chart drawn",
        "reload (code cached): every shown chart drawn",
        "the page's chart-data requests (`timeSeries`), p50 as the browser timed them",
    )
    got: dict[str, dict[str, list[float]]] = {kind: {row: [] for row in rows} for kind in ("nbboard", "bare")}
    with chromium(WORK) as browser:

        def visit(page: Any, url: str) -> tuple[float, float, list[float]]:
            page.goto("about:blank")
            t0 = time.perf_counter()
            page.goto(url + "?forceSVG=true#timeseries", wait_until="commit")
            page.wait_for_function(DRAWN, arg=1, timeout=120_000, polling="raf")
            t_first = time.perf_counter() - t0
            page.wait_for_function(DRAWN, arg=0, timeout=120_000, polling="raf")
            t_every = time.perf_counter() - t0
            timing = page.evaluate(DATA_TIMING)
            return t_first, t_every, [d / 1000 for path, d in timing if path.endswith("/timeSeries")]

        for rep in range(reps + 1):
            for kind in sides(rep):
                board = Board(kind, logdir, [])
                context = browser.new_context(viewport={"width": 1600, "height": 1400})
                try:
                    board.wait_loaded(1000)  # TensorBoard's default sampling keeps 1000 points
                    page = context.new_page()
                    first, every, data = visit(page, board.url)
                    again, every_again, data_again = visit(page, board.url)
                finally:
                    context.close()
                    board.stop()
                if rep:  # the first round warms Chromium up
                    for row, value in zip(rows, (first, every, again, every_again), strict=False):
                        got[kind][row].append(value)
                    got[kind][rows[4]] += data + data_again
    lines = [
        "Headless Chromium (`/usr/bin/chromium` via Playwright), a fresh browser context per board, opens",
        f"`<board>/?forceSVG=true#timeseries` on a fresh board of the series logdir (3 runs × {len(TAGS)} tags, default",
        "flags) once it has loaded, then opens it once more (TensorBoard's code then comes from the browser's cache).",
        "Timed from the navigation until a scalar card's SVG chart has drawn a line (`scalar-card svg path`, not an",
        "icon), and until every card the page shows has (TensorBoard expands the first two tag groups, one card each).",
        "The last row is the browser's own Resource Timing of the chart-data requests",
        f"(`POST /data/plugin/timeseries/timeSeries`) of those visits. {reps} rounds after a warm-up round, sides alternating.",
        "",
        "| what | bare TensorBoard | nbboard | bare / nbboard |",
        "|---|---|---|---|",
    ]
    for row in rows:
        bare, ours = got["bare"][row], got["nbboard"][row]
        if not bare or not ours:
            continue
        unit = "ms" if statistics.median(bare) < 1 else "s"
        lines.append(
            f"| {row} | {fmt_s(bare, unit)} | {fmt_s(ours, unit)} | {statistics.median(bare) / statistics.median(ours):.2f}× |"
        )
    lines += [
        "",
        "A first visit is mostly the browser loading and running TensorBoard's 6 MB of JavaScript, the same for both;",
        "the chart data is where the data server's stall was, and it is paid again on every refresh of every chart.",
    ]
    section("The first scalar chart in a real browser: nbboard's board vs bare TensorBoard", lines, key="browser")
    FIGURES["browser_first_chart"] = {
        "bare": statistics.median(got["bare"][rows[0]]),
        "nbboard": statistics.median(got["nbboard"][rows[0]]),
    }


# ---------------------------------------------------------------------------
# The first board of a session: the standby

PAUSE = 3.0
#: A cell that keeps one core busy for about 2 s, calibrated below.
BUSY = "def _busy():\n    x = 0\n    for i in range({n}):\n        x += i * i\n\n_busy()\n"


def _board_cell(kernel: Kernel, logdir: Path) -> tuple[float, nbboard.Instance]:
    """Time the ``%board`` cell plus the wait until its board lists the runs (as the floor is measured)."""
    elapsed = kernel.time(f"%board --logdir {logdir}")
    (inst,) = [i for i in nbboard.list() if i.status == "running"]
    t0 = time.perf_counter()
    wait_runs(inst.port, 2)
    return elapsed + (time.perf_counter() - t0), inst


def _standby_pid() -> int | None:
    records, _ = registry.read_standbys()
    ready = [r for r in records if r.state == "ready"]
    return ready[0].pid if ready else None


def _calibrate_busy(seconds: float = 2.0) -> int:
    n = 2_000_000
    namespace: dict = {}
    exec(BUSY.format(n=n).replace("_busy()\n", ""), namespace)  # the very loop the kernel runs
    t0 = time.perf_counter()
    namespace["_busy"]()
    per = (time.perf_counter() - t0) / n
    return int(seconds / per)


def bench_standby(logdir: Path, reps: int) -> None:
    floor: list[float] = []
    first: list[float] = []
    from_standby = 0
    load_on: list[float] = []
    load_off: list[float] = []
    rss: list[tuple[float, float]] = []
    for rep in range(reps + 1):
        f = bare_start(logdir, 2)
        k = Kernel(WORK)
        try:
            t_load = k.time("%load_ext nbboard")
            time.sleep(PAUSE)  # the user reads, types the next cell
            pid = _standby_pid()
            if pid is not None:
                mem = psutil.Process(pid).memory_full_info()
                rss.append((mem.rss, mem.uss))
            t_first, inst = _board_cell(k, logdir)
        finally:
            k.shutdown()
            kill_everything()
            tb_cleanup_registry()
        k = Kernel(WORK, env={"NBBOARD_STANDBY": "0"})
        try:
            t_load_off = k.time("%load_ext nbboard")
        finally:
            k.shutdown()
            kill_everything()
        if rep == 0:
            continue  # warm-up
        floor.append(f)
        first.append(t_first)
        from_standby += inst.record.from_standby
        load_on.append(t_load)
        load_off.append(t_load_off)
    tb_rss = _tensorboard_rss(logdir)
    ratio = statistics.median(first) / statistics.median(floor)
    worst = max(first) / statistics.median(floor)
    lines = [
        f"A fresh kernel per repetition runs `%load_ext nbboard`, waits {PAUSE:g} s (a user reading, typing the next cell),",
        "then `%board --logdir DIR`; timed from the `%board` cell's request until its board lists the runs (the cell",
        "returns once the board answers; the runs are then listed at once). The floor is a bare `tensorboard` process,",
        "from `Popen` until `/data/runs` lists the runs, measured in the same repetition.",
        "",
        "| what | median [min–max] | ratio to the floor's median |",
        "|---|---|---|",
        f"| bare TensorBoard cold start (the floor) | {fmt_s(floor)} | 1.00× |",
        f"| first `%board` after `%load_ext` (standby) | {fmt_s(first)} | {ratio:.2f}× (max {worst:.2f}×) |",
        f"| `%load_ext nbboard`, standby on | {fmt_s(load_on, 'ms')} | |",
        f"| `%load_ext nbboard`, standby off (`NBBOARD_STANDBY=0`) | {fmt_s(load_off, 'ms')} | |",
        "",
        f"{from_standby} of {len(first)} boards were the standby. Target ≤ 0.4× the floor: "
        f"{'met' if ratio <= 0.4 else 'missed'}. `%load_ext` with the standby is "
        f"{statistics.median(load_on) / statistics.median(load_off):.2f}× the time without it (the standby starts from a "
        "background thread).",
    ]
    if rss:
        lines += [
            "",
            f"Memory of a waiting standby: RSS {statistics.median([r for r, _ in rss]) / 2**20:.0f} MiB, of which "
            f"{statistics.median([u for _, u in rss]) / 2**20:.0f} MiB its own (USS); a running bare TensorBoard on this "
            f"logdir, for scale: {tb_rss / 2**20:.0f} MiB (with its data server). The standby becomes that board, so "
            "the memory is spent ahead of time, not twice; an unused standby gives it back after 10 minutes.",
        ]
    section("The first board of a session: standby vs the bare TensorBoard floor", lines, key="standby")
    FIGURES["standby_floor"] = statistics.median(floor)
    FIGURES["standby_first"] = statistics.median(first)


def _tensorboard_rss(logdir: Path) -> float:
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_runs(port, 2)
        proc = psutil.Process(p.pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    finally:
        stop_pid(p.pid)
        p.wait()


def bench_busy(logdir: Path, reps: int) -> None:
    """What the standby costs a user whose cell keeps the CPU busy right after ``%load_ext``, on this machine."""
    n = _calibrate_busy()
    busy = BUSY.format(n=n)
    hog = [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 30:\n    pass\n"]
    results: dict[tuple[str, str], list[float]] = {}
    board: dict[tuple[str, str], list[float]] = {}
    used: dict[tuple[str, str], int] = {}
    for rep in range(reps + 1):
        for load in ("one core", "both cores"):
            for mode in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                env = {} if mode == "on" else {"NBBOARD_STANDBY": "0"}
                k = Kernel(WORK, env=env)
                other = None
                try:
                    k.time("%load_ext nbboard")
                    if load == "both cores":
                        other = subprocess.Popen(hog)
                    t_busy = k.time(busy)
                    if other is not None:
                        other.kill()
                        other.wait()
                        other = None
                    t_board, inst = _board_cell(k, logdir)
                finally:
                    if other is not None:
                        other.kill()
                    k.shutdown()
                    kill_everything()
                    tb_cleanup_registry()
                if rep:
                    results.setdefault((load, mode), []).append(t_busy)
                    board.setdefault((load, mode), []).append(t_board)
                    used[(load, mode)] = used.get((load, mode), 0) + inst.record.from_standby
    lines = [
        "A fresh kernel runs `%load_ext nbboard` and at once a pure-Python cell that keeps one core busy for about 2 s",
        '(the standby imports TensorBoard meanwhile), then `%board --logdir DIR`. With "both cores" another process',
        "keeps the second core busy during that cell. Standby on vs off (`NBBOARD_STANDBY=0`), same run, alternating.",
        "",
        "| other load | busy cell, standby on | busy cell, standby off | on / off | `%board` next, standby on | `%board` next, standby off |",
        "|---|---|---|---|---|---|",
    ]
    for load in ("one core", "both cores"):
        on, off = results[(load, "on")], results[(load, "off")]
        lines.append(
            f"| {load} | {fmt_s(on)} | {fmt_s(off)} | {statistics.median(on) / statistics.median(off):.2f}× | "
            f"{fmt_s(board[(load, 'on')])} ({used[(load, 'on')]} of {len(on)} from the standby) | {fmt_s(board[(load, 'off')])} |"
        )
    section("The standby when the user's cell is busy (2 cores)", lines, key="busy")


# ---------------------------------------------------------------------------
# Re-display after a kernel restart


def all_last_steps(port: int, runs: int, steps: int) -> bool:
    """Every run's last step is served; asked in parallel, as TensorBoard's own front end does."""

    def last_step_served(r: int) -> bool:
        try:
            data = requests.get(
                f"http://127.0.0.1:{port}/data/plugin/scalars/scalars",
                params={"run": f"run{r:02d}", "tag": "m3"},
                timeout=30,
            ).json()
            return bool(data) and data[-1][1] == steps - 1
        except (requests.RequestException, ValueError):
            return False

    with ThreadPoolExecutor(runs) as pool:
        return all(pool.map(last_step_served, range(runs)))


def _port_of_tensorboard_cell() -> int:
    from tensorboard import manager

    return manager.get_all()[-1].port


#: Between the restarted kernel's cells when they are run one by one (not counted: nobody waits then).
STEP_PAUSE = 2.0


def bench_restart(runs: int, steps: int, reps: int) -> None:
    big = write_big_logdir(WORK / f"big-{runs}x{steps}", runs, steps)
    cells = {
        "%board": ("%load_ext nbboard", f"%board --logdir {big}", lambda: nbboard.list()[-1].port),
        "%tensorboard": (
            "%load_ext tensorboard",
            f"%tensorboard --logdir {big} --host 127.0.0.1 --port 0",
            _port_of_tensorboard_cell,
        ),
    }
    modes = ("run all", "one by one")
    total = {(k, m): [] for k in cells for m in modes}
    shown = {(k, m): [] for k in cells for m in modes}
    probe: dict[str, list[float]] = {k: [] for k in cells}
    for name, (ext, cell, port_of) in cells.items():
        k = Kernel(WORK)
        try:
            k.time(ext)
            k.time(cell)
            port = port_of()
            deadline = time.monotonic() + 600
            while not all_last_steps(port, runs, steps):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            for rep in range(reps + 1):
                for mode in modes if rep % 2 == 0 else modes[::-1]:
                    k.restart()
                    time.sleep(1.0)  # the restarted kernel settles; TensorBoard's child is gone
                    t_ext = k.time(ext)
                    if mode == "one by one":
                        time.sleep(STEP_PAUSE)
                    t_cell = k.time(cell)
                    port = port_of()
                    t1 = time.perf_counter()
                    while True:  # the wait ends when the probe that finds every run's last step starts
                        t_start = time.perf_counter()
                        if all_last_steps(port, runs, steps):
                            t_data = t_start - t1
                            t_probe = time.perf_counter() - t_start
                            break
                        time.sleep(0.02)
                    if rep:  # the first round warms caches up
                        shown[(name, mode)].append(t_ext + t_cell)
                        total[(name, mode)].append(t_ext + t_cell + t_data)
                        probe[name].append(t_probe)
        finally:
            k.shutdown()
            kill_everything()
            tb_cleanup_registry()

    def med(key: tuple[str, str]) -> float:
        return statistics.median(total[key])

    lines = [
        "The interval: a board is up and loaded; the kernel restarts; the restarted kernel runs `%load_ext` and then",
        "the board cell, and the interval ends when every run's last step is served to a client. It counts the two",
        'cells and the wait for the data after them. "Run all": the cells back to back. "One by one": the user runs',
        f"them with a {STEP_PAUSE:g} s pause between (the pause is not counted: nobody waits then; nbboard imports its",
        "display code in that time). The data wait is found by polling with a probe of "
        f"{runs} parallel scalar requests (one per run, as TensorBoard's front end sends them) until all return the",
        "last step; it ends when the successful probe starts (the probe's own time is the instrument's: shown, not",
        "counted; a board that already serves everything waits ~0). `%tensorboard`'s TensorBoard dies with the",
        "kernel, so it relaunches and reloads the logdir; nbboard's board outlives the restart and is reused",
        "(identity and HTTP checked).",
        "",
        "| what | `%tensorboard` | `%board` | `%tensorboard` / `%board` |",
        "|---|---|---|---|",
    ]
    for mode in modes:
        t, b = (name, mode), ("%board", mode)
        lines += [
            f"| {mode}: until the data is served | {fmt_s(total[('%tensorboard', mode)])} | {fmt_s(total[b])} | "
            f"{med(('%tensorboard', mode)) / med(b):.1f}× |",
            f"| {mode}: the two cells | {fmt_s(shown[('%tensorboard', mode)])} | {fmt_s(shown[b])} | "
            f"{statistics.median(shown[('%tensorboard', mode)]) / statistics.median(shown[b]):.1f}× |",
        ]
        del t
    lines += [
        f"| the successful probe's own time (not counted) | {fmt_s(probe['%tensorboard'], 'ms')} | {fmt_s(probe['%board'], 'ms')} | |",
        "",
        "Target ≥ 20×: "
        + "; ".join(
            f"{mode} {'met' if med(('%tensorboard', mode)) / med(('%board', mode)) >= 20 else 'missed'}"
            for mode in modes
        )
        + ".",
    ]
    section(
        f"Re-display after a kernel restart, big logdir ({runs} runs × {steps} steps × 4 scalars)", lines, key="restart"
    )
    FIGURES["restart_tensorboard"] = med(("%tensorboard", "run all"))
    FIGURES["restart_board"] = med(("%board", "run all"))
    FIGURES["restart_tensorboard_step"] = med(("%tensorboard", "one by one"))
    FIGURES["restart_board_step"] = med(("%board", "one by one"))


def profile_redisplay(logdir: Path) -> Path:
    """pyinstrument's view of ``%load_ext nbboard`` + a reusing ``%board`` in a fresh kernel (the restart case)."""
    out = ROOT / "benchmarks" / "profile-redisplay.txt"
    inst = nbboard.start(str(logdir), config=COLD)
    k = Kernel(WORK)
    try:
        k.time("import pyinstrument")  # the profiler's own import is not the subject
        k.time(
            "from pyinstrument import Profiler\n"
            "_p = Profiler(interval=0.0005)\n"
            "_p.start()\n"
            "get_ipython().run_line_magic('load_ext', 'nbboard')\n"
            f"get_ipython().run_line_magic('board', '--logdir {logdir}')\n"
            "_p.stop()\n"
            f"open({str(out)!r}, 'w').write(_p.output_text(unicode=False, show_all=False))\n"
        )
    finally:
        k.shutdown()
        kill_everything()
    assert inst.pid
    print(out.read_text())
    return out
