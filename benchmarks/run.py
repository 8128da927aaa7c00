"""nbboard against %tensorboard and bare TensorBoard, side by side in one run.

    python benchmarks/run.py [--reps 5] [--quick] [--only NAME,...]

Writes benchmarks/RESULTS.md (medians, min–max, ratios). Every figure is
measured in this run on this machine; nothing is copied from elsewhere.
Runs in its own NBBOARD_HOME and TMPDIR and stops everything it starts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402  (moves this process into its own NBBOARD_HOME and TMPDIR first)
    FIGURES,
    ROOT,
    WORK,
    Kernel,
    bare_start,
    fmt_s,
    kill_everything,
    section,
    stop_pid,
    tb_cleanup_registry,
    wait_runs,
)

import nbboard  # noqa: E402
from nbboard import api, liveness  # noqa: E402
from nbboard.config import BoardConfig  # noqa: E402
from nbboard.demo import write_demo_logs  # noqa: E402

#: The cold path: sections that measure TensorBoard's own start-up run without the standby.
COLD = BoardConfig(standby=False)

# ---------------------------------------------------------------------------
# cold start


def nbboard_start(logdir: Path, runs: int) -> float:
    t0 = time.perf_counter()
    inst = nbboard.start(str(logdir), config=COLD)
    wait_runs(inst.port, runs)
    elapsed = time.perf_counter() - t0
    kill_everything()
    return elapsed


def manager_start(logdir: Path, runs: int) -> float:
    from tensorboard import manager

    t0 = time.perf_counter()
    result = manager.start(
        ["--logdir", str(logdir), "--port", "0", "--host", "127.0.0.1"], timeout=datetime.timedelta(seconds=60)
    )
    assert isinstance(result, manager.StartLaunched), result
    wait_runs(result.info.port, runs)
    elapsed = time.perf_counter() - t0
    stop_pid(result.info.pid)
    return elapsed


def bench_cold_start(logdir: Path, reps: int) -> dict[str, list[float]]:
    fns = {
        "bare tensorboard (floor, polled every 10 ms)": bare_start,
        "nbboard.start": nbboard_start,
        "tensorboard.manager.start": manager_start,
    }
    for fn in fns.values():
        fn(logdir, 2)  # warm-up: page cache, pyc files
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():  # interleaved, so drift hits every side alike
            out[name].append(fn(logdir, 2))
    floor = out["bare tensorboard (floor, polled every 10 ms)"]
    lines = ["Time until TensorBoard's HTTP API lists the runs. Interleaved repetitions after one warm-up each.", ""]
    lines += ["| what | median [min–max] | ratio to floor (median / max) |", "|---|---|---|"]
    for name, xs in out.items():
        lines.append(
            f"| {name} | {fmt_s(xs)} | {statistics.median(xs) / statistics.median(floor):.2f}× / {max(xs) / max(floor):.2f}× |"
        )
    section("Cold start to a usable board (no standby)", lines, key="cold")
    FIGURES["cold_floor"] = statistics.median(out["bare tensorboard (floor, polled every 10 ms)"])
    FIGURES["cold_nbboard"] = statistics.median(out["nbboard.start"])
    return out


# ---------------------------------------------------------------------------
# kernels


def bench_kernel(logdir: Path, reps: int, floor: list[float]) -> None:
    cells = {
        "%board": ("%load_ext nbboard", f"%board --logdir {logdir}", {}),
        "%board (standby off)": ("%load_ext nbboard", f"%board --logdir {logdir}", {"NBBOARD_STANDBY": "0"}),
        "%tensorboard": ("%load_ext tensorboard", f"%tensorboard --logdir {logdir} --host 127.0.0.1 --port 0", {}),
    }
    first: dict[str, list[float]] = {k: [] for k in cells}
    rerun: dict[str, list[float]] = {k: [] for k in cells}
    empty: list[float] = []
    load: dict[str, list[float]] = {k: [] for k in cells}
    for rep in range(reps + 1):
        for name, (ext, cell, env) in cells.items():
            k = Kernel(WORK, env=env)
            try:
                t_empty = k.time("pass")
                t_load = k.time(ext)
                t_first = k.time(cell)
                t_rerun = [k.time(cell) for _ in range(5)]
            finally:
                k.shutdown()
                kill_everything()
                tb_cleanup_registry()
            if rep == 0:
                continue  # warm-up
            empty.append(t_empty)
            load[name].append(t_load)
            first[name].append(t_first)
            rerun[name].append(statistics.median(t_rerun))
    overhead = statistics.median(empty)
    f_med = statistics.median(floor)
    lines = [
        f'A fresh kernel per repetition runs the extension\'s cell and at once the board cell (as "Run all" does); kernel overhead (an empty cell) {overhead * 1000:.1f} ms. Target for `%board`: ≤ 1.05 × floor + overhead = {(1.05 * f_med + overhead):.3f} s. With the standby on, `%board` waits for the standby `%load_ext` has just started rather than start a second TensorBoard beside it.',
        "",
        "| cell | first run in a kernel | ratio to floor + overhead (median / max) |",
        "|---|---|---|",
    ]
    for name, xs in first.items():
        lines.append(
            f"| `{name}` | {fmt_s(xs)} | {statistics.median(xs) / (f_med + overhead):.2f}× / {max(xs) / (max(floor) + overhead):.2f}× |"
        )
    section(
        "First `%board` vs `%tensorboard` cell in a real kernel, right after loading the extension", lines, key="kernel"
    )
    lines = [
        "The same cell run again in the same kernel (median of 5 re-runs per kernel). `%board` checks pid, creation time and an HTTP answer; `%tensorboard` checks nothing.",
        "",
        "| cell | re-run | ",
        "|---|---|",
    ]
    for name, xs in rerun.items():
        lines.append(f"| `{name}` | {fmt_s(xs, 'ms')} |")
    lines.append(
        f"\nTarget `%board` ≤ 25 ms median: {'met' if statistics.median(rerun['%board']) <= 0.025 else 'missed'}."
    )
    section("Warm re-run of the same cell", lines, key="rerun")
    lines = ["| cell | time |", "|---|---|"]
    for name, xs in load.items():
        ext = "tensorboard" if name == "%tensorboard" else "nbboard" + (" (standby off)" if "off" in name else "")
        lines.append(f"| `%load_ext {ext}` | {fmt_s(xs, 'ms')} |")
    lines.append(f"\nTarget ≤ 50 ms: {'met' if statistics.median(load['%board']) <= 0.05 else 'missed'}.")
    section("Loading the extension", lines, key="load")


def in_process_reuse(logdir: Path, reps: int) -> None:
    inst = nbboard.start(str(logdir))
    xs = []
    for _ in range(reps * 20):
        t0 = time.perf_counter()
        again = nbboard.start(str(logdir))
        xs.append(time.perf_counter() - t0)
        assert again.reused
    probe = []
    for _ in range(reps * 20):
        t0 = time.perf_counter()
        liveness.answers(inst.port)
        probe.append(time.perf_counter() - t0)
    kill_everything()
    section(
        "Reuse inside one process (API)",
        [
            "| what | median [min–max] |",
            "|---|---|",
            f"| `nbboard.start` of a live board (lock, registry read, identity, HTTP probe) | {fmt_s(xs, 'ms')} |",
            f"| of which the HTTP probe | {fmt_s(probe, 'ms')} |",
        ],
        key="reuse",
    )


# ---------------------------------------------------------------------------
# stale recovery


def bench_stale(logdir: Path, reps: int, floor: list[float]) -> None:
    from tensorboard import manager

    xs = []
    for rep in range(reps + 1):
        inst = nbboard.start(str(logdir), config=COLD)
        os.kill(inst.pid, signal.SIGKILL)
        psutil.Process(inst.pid).wait(5)
        t0 = time.perf_counter()
        fresh = nbboard.start(str(logdir), config=COLD)
        wait_runs(fresh.port, 2)
        elapsed = time.perf_counter() - t0
        assert not fresh.reused
        kill_everything()
        if rep:
            xs.append(elapsed)
    # What %tensorboard does in the same situation:
    args = ["--logdir", str(logdir), "--port", "0", "--host", "127.0.0.1"]
    launched = manager.start(args, timeout=datetime.timedelta(seconds=60))
    os.kill(launched.info.pid, signal.SIGKILL)
    psutil.Process(launched.info.pid).wait(5)
    t0 = time.perf_counter()
    again = manager.start(args, timeout=datetime.timedelta(seconds=60))
    tb_elapsed = time.perf_counter() - t0
    tb_cleanup_registry()
    added = statistics.median(xs) - statistics.median(floor)
    section(
        "Stale recovery: SIGKILL TensorBoard, then start again",
        [
            "| what | median [min–max] |",
            "|---|---|",
            f"| nbboard: detect the dead board, drop it, launch and serve | {fmt_s(xs)} |",
            f"| floor (bare cold start, the cold-start section) | {fmt_s(floor)} |",
            "",
            f"nbboard adds {added * 1000:+.0f} ms to the floor at median (target ≤ +150 ms).",
            f"`tensorboard.manager.start` in the same situation returned `{type(again).__name__}` for the dead pid "
            f"{again.info.pid if hasattr(again, 'info') else '?'} in {tb_elapsed * 1000:.1f} ms: a blank board.",
        ],
        key="stale",
    )


# ---------------------------------------------------------------------------
# kill and list


def bench_kill(logdir: Path, reps: int) -> None:
    xs, cli = [], []
    for rep in range(reps + 1):
        for which in ("api", "cli"):
            dirs = []
            for i in range(10):
                d = WORK / f"k{i}"
                d.mkdir(exist_ok=True)
                dirs.append(d)
            threads = [threading.Thread(target=nbboard.start, args=(str(d),)) for d in dirs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(nbboard.list()) == 10
            t0 = time.perf_counter()
            if which == "api":
                report = api.kill()
                assert len(report.stopped) == 10
            else:
                subprocess.run([sys.executable, "-m", "nbboard", "kill"], check=True, capture_output=True)
            elapsed = time.perf_counter() - t0
            assert nbboard.list() == []
            if rep:
                (xs if which == "api" else cli).append(elapsed)
    section(
        "Stopping 10 running boards",
        [
            "| what | median [min–max] |",
            "|---|---|",
            f"| `nbboard.kill()` | {fmt_s(xs)} |",
            f"| `nbboard kill` (a new interpreter, as typed) | {fmt_s(cli)} |",
            "",
            f"Target ≤ 1 s: {'met' if statistics.median(cli) <= 1 else 'missed'}.",
        ],
        key="kill",
    )


def plant_stale(n: int) -> None:
    from nbboard import registry

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for i in range(n):
        registry.write_private(
            registry.boards_dir() / f"pid-{4_000_000 + i}.json",
            json.dumps(
                {
                    "schema": 1,
                    "pid": 4_000_000 + i,
                    "create_time": 1.0,
                    "port": 1,
                    "logdir": "/gone",
                    "cache_key": "x",
                    "argv": [],
                    "start_time": 1,
                }
            ),
        )


def bench_list(reps: int) -> None:
    dirs = []
    for i in range(10):
        d = WORK / f"l{i}"
        d.mkdir(exist_ok=True)
        dirs.append(d)
    for d in dirs:
        nbboard.start(str(d))
    api_times, cli_times = [], []
    for rep in range(reps + 1):
        plant_stale(90)
        t0 = time.perf_counter()
        listed = nbboard.list()
        elapsed = time.perf_counter() - t0
        assert sum(i.status == "running" for i in listed) == 10 and len(listed) == 100
        plant_stale(90)
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nbboard", "list"], check=True, capture_output=True)
        cli_elapsed = time.perf_counter() - t1
        if rep:
            api_times.append(elapsed)
            cli_times.append(cli_elapsed)
    kill_everything()
    section(
        "Listing 100 records of which 90 are stale (each checked and marked; `list` removes nothing)",
        [
            "| what | median [min–max] |",
            "|---|---|",
            f"| `nbboard.list()` | {fmt_s(api_times)} |",
            f"| `nbboard list` (a new interpreter, as typed) | {fmt_s(cli_times)} |",
            "",
            f"Target ≤ 0.3 s: {'met' if statistics.median(cli_times) <= 0.3 else 'missed'} for the command, "
            f"{'met' if statistics.median(api_times) <= 0.3 else 'missed'} for the API.",
        ],
        key="list",
    )


# ---------------------------------------------------------------------------
# the gate


GATE_SCRIPT = """
import asyncio, sys
from nbboard.tunnels.gate import Gate
async def main():
    gate = Gate(int(sys.argv[1]), sys.stdin.readline().strip())
    print(await gate.start(), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _gate_process(port: int, secret: str, code_dir: str = "") -> tuple[subprocess.Popen, int]:
    """A gate in its own process, as the tunnel helper runs it (the secret on stdin, never argv); ``code_dir``:
    import nbboard from there instead (another checkout, to compare in the same run)."""
    env = dict(os.environ, PYTHONPATH=code_dir) if code_dir else None
    proc = subprocess.Popen(
        [sys.executable, "-c", GATE_SCRIPT, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=code_dir or None,  # `python -c` puts the working directory first on sys.path
    )
    proc.stdin.write(secret + "\n")
    proc.stdin.flush()
    return proc, int(proc.stdout.readline())


def framing_us(n: int = 3000) -> float:
    """Microseconds of pure framing per request (no I/O): a visitor's GET read and checked, the request to
    TensorBoard framed, and a 5 kB answer read and framed for the visitor, as the gate does them."""
    import timeit

    from nbboard.tunnels import gate_http
    from nbboard.tunnels.gate import Gate

    secret = "s" * 43
    head = (
        "GET /data/plugin/scalars/scalars?run=train&tag=loss HTTP/1.1\r\nHost: 127.0.0.1:6006\r\n"
        "User-Agent: python-requests/2.32\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\n"
        f"Connection: keep-alive\r\nAuthorization: Bearer {secret}\r\n\r\n"
    ).encode()
    body = b"x" * 5000
    answer = (
        b"HTTP/1.1 200 OK\r\nServer: Werkzeug/3.1 Python/3.11\r\nDate: Wed, 02 Dec 2026 07:00:00 GMT\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000\r\nX-Content-Type-Options: nosniff\r\n"
        b"Content-Security-Policy: default-src 'self'\r\nConnection: close\r\n\r\n"
    )
    gate = Gate(6006, secret)

    def one() -> None:
        visitor = gate_http.Visitor(head)
        req = visitor.next_event()
        visitor.next_event()
        assert isinstance(req, gate_http.Request) and gate.auth.check(req.target, req.headers).kind == "ok"
        up = gate_http.upstream()
        up.send(gate._upstream_request(req, 0))
        up.receive_data(answer + body)
        framed = gate_http.Answer(req, up.next_event())
        framed.body(up.next_event().data)
        up.next_event()
        visitor.next_request()

    return min(timeit.repeat(one, number=n, repeat=3)) / n * 1e6


def bench_gate(logdir: Path, reps: int) -> None:
    """Direct vs through the gate. ``NBBOARD_BENCH_GATE_BASELINE=<dir>``: also through the gate of the nbboard
    package in <dir> (e.g. ``git archive main nbboard | tar -x -C <dir>``), interleaved in the same run."""
    from nbboard.tunnels.secrets import new_secret

    inst = nbboard.start(str(logdir))
    secret = new_secret()
    gate_proc, gate_port = _gate_process(inst.port, secret)
    baseline_dir = os.environ.get("NBBOARD_BENCH_GATE_BASELINE", "")
    base_proc, base_port = _gate_process(inst.port, secret, baseline_dir) if baseline_dir else (None, 0)
    path = "/data/plugin/scalars/scalars?run=train&tag=loss"
    direct = f"http://127.0.0.1:{inst.port}{path}"
    gated = f"http://127.0.0.1:{gate_port}{path}"
    based = f"http://127.0.0.1:{base_port}{path}"
    headers = {"Authorization": f"Bearer {secret}"}

    sessions: dict[str, requests.Session] = {}

    def latencies(url: str, n: int) -> list[float]:
        if url not in sessions:
            sessions[url] = requests.Session()
            sessions[url].get(url, headers=headers, timeout=10)
        s = sessions[url]
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = s.get(url, headers=headers, timeout=10)
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200
        return out

    def throughput(url: str, seconds: float = 3.0, clients: int = 4) -> float:
        count = [0]
        stop = time.monotonic() + seconds

        def worker() -> None:
            s = requests.Session()
            while time.monotonic() < stop:
                s.get(url, headers=headers, timeout=10)
                count[0] += 1

        ts = [threading.Thread(target=worker) for _ in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return count[0] / seconds

    latencies(direct, 50)
    latencies(gated, 50)
    d_lat, g_lat, b_lat = [], [], []
    if base_proc:
        latencies(based, 50)
    cpu = {gate_port: 0.0, base_port: 0.0}  # the gate process's CPU seconds over its latency blocks

    def timed_block(url: str, port: int, proc: subprocess.Popen) -> list[float]:
        before = psutil.Process(proc.pid).cpu_times()
        out = latencies(url, 20)
        after = psutil.Process(proc.pid).cpu_times()
        cpu[port] += after.user + after.system - before.user - before.system
        return out

    for _ in range(reps * 10):  # blocks of 20, alternating: the machine's drift falls on every path alike
        d_lat += latencies(direct, 20)
        g_lat += timed_block(gated, gate_port, gate_proc)
        if base_proc:
            b_lat += timed_block(based, base_port, base_proc)
    d_tp, g_tp, b_tp = [], [], []
    for _ in range(3):
        d_tp.append(throughput(direct))
        g_tp.append(throughput(gated))
        if base_proc:
            b_tp.append(throughput(based))
    # The same, while 300 tokenless connections hold half a request head each (the gate keeps 64 of them).
    held = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", gate_port))
        s.sendall(b"GET /data/runs HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    a_lat = []
    for _ in range(reps):
        sessions.pop(gated, None)  # a new connection, made while the held ones wait
        a_lat += latencies(gated, 200)
    a_tp = [throughput(gated) for _ in range(3)]
    for s in held:
        s.close()

    def pct(xs: list[float], q: float) -> float:
        return sorted(xs)[int(q * (len(xs) - 1))] * 1000

    added = pct(g_lat, 0.5) - pct(d_lat, 0.5)
    ratio = statistics.median(g_tp) / statistics.median(d_tp)
    for proc in (gate_proc, base_proc):
        if proc:
            proc.terminate()
            proc.wait()
    kill_everything()
    baseline = (
        [
            f"| through the gate of `{Path(baseline_dir).name}` (same run, interleaved) | {pct(b_lat, 0.5):.2f} ms "
            f"| {pct(b_lat, 0.99):.2f} ms | {statistics.median(b_tp):.0f} req/s | {cpu[base_port] / len(b_lat) * 1000:.2f} ms |"
        ]
        if base_proc
        else []
    )
    section(
        "The auth gate: TensorBoard's scalars data direct vs through the gate",
        [
            f"{len(d_lat)} sequential keep-alive requests each, the paths alternating every 20 (so the machine's "
            "drift falls on each alike); throughput with 4 concurrent clients for 3 s, 3 times. "
            "The gate runs in its own process, as in the tunnel helper; TensorBoard, the gate and the clients share the 2 cores.",
            "",
            "| path | p50 | p99 | throughput (median) | the gate's CPU per request |",
            "|---|---|---|---|---|",
            f"| direct to TensorBoard | {pct(d_lat, 0.5):.2f} ms | {pct(d_lat, 0.99):.2f} ms | {statistics.median(d_tp):.0f} req/s | |",
            f"| through the gate | {pct(g_lat, 0.5):.2f} ms | {pct(g_lat, 0.99):.2f} ms | {statistics.median(g_tp):.0f} req/s | {cpu[gate_port] / len(g_lat) * 1000:.2f} ms |",
            *baseline,
            f"| through the gate, after 300 tokenless connections sent half a head (the gate keeps 64, each at most 10 s) | {pct(a_lat, 0.5):.2f} ms | {pct(a_lat, 0.99):.2f} ms | {statistics.median(a_tp):.0f} req/s | |",
            "",
            f"Added at p50: {added:+.2f} ms (target ≤ 1 ms); throughput {ratio * 100:.0f} % of direct (target ≥ 80 %).",
            f"Of the gate's CPU per request, reading and framing the request and TensorBoard's answer (h11 and the "
            f"gate's rules, no I/O; gate_http) take {framing_us():.0f} µs.",
        ],
        key="gate",
    )


def bench_rss(logdir: Path) -> None:
    """Peak RSS of the tunnel helper (gate + localtunnel client) under load, against a loopback localtunnel server."""
    sys.path.insert(0, str(ROOT))
    from tests.localtunnel_server import LocaltunnelServer

    server = LocaltunnelServer(WORK)
    try:
        result = nbboard.tunnel(str(logdir), provider="localtunnel", host=server.url)
        helper = psutil.Process(result.tunnel.helper_pid)
        inst = result.instance
        peak = helper.memory_info().rss
        host = result.tunnel.public_url.split("//", 1)[1]
        secret = result.url.split("nbboard_token=")[1]
        s = requests.Session()
        for i in range(400):
            s.get(
                server.url + "/data/plugin/scalars/scalars?run=train&tag=loss",
                headers={"Host": host, "Authorization": f"Bearer {secret}"},
                timeout=10,
            )
            if i % 20 == 0:
                peak = max(peak, helper.memory_info().rss)
        tb = psutil.Process(inst.pid)
        tb_rss = tb.memory_info().rss + sum(c.memory_info().rss for c in tb.children(recursive=True))
    finally:
        kill_everything()
        server.stop()
    section(
        "Memory of what nbboard adds beside TensorBoard",
        [
            "| process | peak RSS |",
            "|---|---|",
            f"| tunnel helper (auth gate + localtunnel client), 400 requests through a loopback localtunnel server | {peak / 2**20:.0f} MiB |",
            f"| for scale: TensorBoard + its data server | {tb_rss / 2**20:.0f} MiB |",
            "",
            "Beside boards (TensorBoard processes), nbboard keeps at most one other long-lived process: the standby (see its own section for its memory), which becomes the next board or exits after 10 idle minutes; the CLI and the magic exit or return.",
        ],
        key="rss",
    )


SECTIONS = "lab,sharedcode,data,browser,standby,busy,restart,profile,cold,kernel,reuse,stale,kill,list,gate,rss"


def main() -> int:
    import lab
    import report
    import speed

    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and a small big logdir, for a fast check"
    )
    parser.add_argument("--only", default="", help=f"comma-separated sections: {SECTIONS}")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    unknown = only - set(SECTIONS.split(","))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    reps = min(args.reps, 2) if args.quick else args.reps

    def want(name: str) -> bool:
        return not only or name in only

    logdir = write_demo_logs(WORK / "demo")
    header = report.run_header(sys.argv[1:])
    print(header, flush=True)
    try:
        if want("lab"):
            lab.bench_lab(max(reps, 3) if not args.quick else 1)
        if want("sharedcode"):
            lab.bench_shared_code(reps)
        if want("data"):
            speed.bench_data(requests_per_series=10 if args.quick else 30)
        if want("browser"):
            speed.bench_browser(reps)
        if want("standby"):
            speed.bench_standby(logdir, reps)
        if want("busy"):
            speed.bench_busy(logdir, 1 if args.quick else 3)
        if want("restart"):
            runs, steps = (4, 2000) if args.quick else (20, 20000)
            speed.bench_restart(runs, steps, reps)
        if want("profile"):
            speed.profile_redisplay(logdir)
        floor = []
        if want("cold") or want("kernel") or want("stale"):
            floor = bench_cold_start(logdir, reps)["bare tensorboard (floor, polled every 10 ms)"]
        if want("kernel"):
            bench_kernel(logdir, reps, floor)
        if want("reuse"):
            in_process_reuse(logdir, reps)
        if want("stale"):
            bench_stale(logdir, reps, floor)
        if want("kill"):
            bench_kill(logdir, reps)
        if want("list"):
            bench_list(reps)
        if want("gate"):
            bench_gate(logdir, reps)
        if want("rss"):
            bench_rss(logdir)
    finally:
        kill_everything()
        tb_cleanup_registry()
        from common import SECTIONS as measured

        report.save(measured, FIGURES, header)  # what was measured is kept even if a later section fails
        print(f"wrote {report.RESULTS} and {report.CHART}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
