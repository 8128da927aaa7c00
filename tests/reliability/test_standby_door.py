"""Garbage at the standby's door: its loopback port is visible to every local user (``ss -ltn``).

Before: a hand-off with a non-ASCII ``proof`` raised TypeError in
``hmac.compare_digest`` and deeply nested JSON raised RecursionError; each
escaped the connection's thread and wrote an ~830-byte traceback into the
owner's log, which lives on as the board's log. A real standby, real sockets.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import nbboard
from nbboard import handoff, registry, standby
from nbboard.config import BoardConfig
from nbboard.registry import StandbyRecord
from tests.helpers import wait_until
from tests.reliability import figures

#: How much the standby's log may grow from all the garbage together ("a few KB").
MAX_GROWTH = 4096


def _ready_standby() -> StandbyRecord:
    assert standby.ensure(BoardConfig()) is not None
    ready = wait_until(
        lambda: [r for r in registry.read_standbys()[0] if r.state == "ready"], "the standby to get ready", timeout=120
    )
    return ready[0]


def _line(message: dict, ascii_only: bool = True) -> bytes:
    return json.dumps(message, ensure_ascii=ascii_only).encode() + b"\n"


def _after_hello(port: int, second: bytes) -> None:
    """A genuine-looking hello, then ``second`` instead of a proof made with the key."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_line({"hello": os.urandom(16).hex()}))
        sock.makefile("rb").readline(4096)  # the standby's nonce and proof
        sock.sendall(second)
        sock.settimeout(5)
        try:
            sock.recv(4096)
        except OSError:
            pass


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.settimeout(5)
            sock.recv(4096)
        except OSError:
            pass  # the standby hung up on it: that is the point


def _slowloris(port: int, stop: threading.Event) -> None:
    """A hello trickled one byte at a time, until the standby hangs up or the test ends."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for byte in b'{"hello": "' + b"a" * 10_000:
            if stop.is_set():
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.2)


NESTED = b"[" * 200_000 + b"]" * 200_000 + b"\n"


def _garbage(port: int, kind: str) -> None:
    nonce = os.urandom(16).hex()
    if kind == "non-ASCII proof":
        _after_hello(port, _line({"proof": "é" * 64, "payload": "{}"}, ascii_only=False))
    elif kind == "non-ASCII proof, escaped":
        _after_hello(port, _line({"proof": "\u00e9" * 64, "payload": "{}"}))
    elif kind == "nested JSON":
        _send(port, NESTED)
    elif kind == "nested JSON after hello":
        _after_hello(port, NESTED)
    elif kind == "nested hello":
        _send(port, b'{"hello": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    elif kind == "huge line":
        _send(port, b"x" * (5 * 1024 * 1024) + b"\n")
    elif kind == "binary":
        _send(port, os.urandom(8192))
    elif kind == "wrong key":
        _after_hello(port, _line({"proof": "0" * 64, "payload": json.dumps({"args": [], "env": {}, "cwd": "/"})}))
    elif kind == "wrong types":
        _send(port, _line({"hello": {"a": [1, 2]}, "nonce": nonce}))
    elif kind == "empty":
        _send(port, b"")
    else:  # pragma: no cover
        raise AssertionError(kind)


KINDS = [
    "non-ASCII proof",
    "non-ASCII proof, escaped",
    "nested JSON",
    "nested JSON after hello",
    "nested hello",
    "huge line",
    "binary",
    "wrong key",
    "wrong types",
    "empty",
]


@pytest.mark.timeout(600)
def test_three_hundred_garbage_hand_offs_leave_the_log_small_and_the_standby_usable(
    isolated: Path, demo_logs: Path
) -> None:
    ready = _ready_standby()
    log = Path(ready.log_path)
    before = log.stat().st_size
    slow_stop = threading.Event()
    slow = [threading.Thread(target=_slowloris, args=(ready.port, slow_stop)) for _ in range(4)]
    for t in slow:
        t.start()
    tries = [KINDS[i % len(KINDS)] for i in range(300 - len(slow))]
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # four keyless processes' worth, as in the report
        list(pool.map(lambda kind: _garbage(ready.port, kind), tries))
    slow_stop.set()
    for t in slow:
        t.join()
    took = time.monotonic() - started
    time.sleep(0.5)  # whatever the standby was going to write about them, it has written
    growth = log.stat().st_size - before
    inst = nbboard.start(str(demo_logs))
    figures.record(
        f"standby door: {len(tries) + len(slow)} keyless hand-offs in {took:.0f} s "
        f"({', '.join(f'{n} {k}' for k, n in Counter(tries).items())}, {len(slow)} slowloris)",
        f"the standby's log grew by {growth} bytes (before: ~830 bytes a traceback); "
        f"the next start {'used the standby' if inst.pid == ready.pid else 'did NOT use the standby'}",
    )
    assert growth <= MAX_GROWTH, log.read_text(errors="replace")[-3000:]
    assert "Traceback" not in log.read_text(errors="replace")
    assert inst.pid == ready.pid and inst.record.from_standby  # the standby still became the next board


@pytest.mark.parametrize(
    "reply",
    [
        _line({"proof": "é" * 64, "nonce": "a" * 32}, ascii_only=False),
        _line({"proof": "\u00e9" * 64, "nonce": "a" * 32}),
        NESTED,
        _line({"proof": ["x"], "nonce": {"y": 1}}),
        os.urandom(4096) + b"\n",
    ],
    ids=["non-ASCII proof", "escaped non-ASCII proof", "nested JSON", "wrong types", "binary"],
)
def test_a_start_that_reaches_a_hostile_listener_falls_back_quietly(reply: bytes) -> None:
    """The starter's side: whatever answers on a standby's port (a port reused by another user's program),
    the hand-off is simply not made (the start then runs cold); before, TypeError and RecursionError escaped."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.makefile("rb").readline(4096)
                conn.sendall(reply)
                time.sleep(0.5)

        t = threading.Thread(target=answer)
        t.start()
        assert handoff.connect(server.getsockname()[1], "k" * 64, json.dumps({"args": []})) is None
        t.join()


def test_a_start_that_reaches_a_trickling_listener_falls_back_within_the_hand_off_deadline() -> None:
    """Whatever listens on a standby's port may answer the hello a byte a second. Before: each read had
    HANDOFF_TIMEOUT, the hand-off none, so such a listener held the start for ~1000 s (a reply may be 1 KiB);
    now the whole hand-off is cut at twice HANDOFF_TIMEOUT and the start runs cold."""
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:

        def trickle() -> None:
            conn, _ = server.accept()
            with conn:
                conn.makefile("rb").readline(4096)
                for byte in b'{"proof": "' + b"a" * 1000:
                    if stop.wait(1.0):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return  # the start hung up

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        result: list[object] = []
        starter = threading.Thread(
            target=lambda: result.append(handoff.connect(server.getsockname()[1], "k" * 64, "{}")), daemon=True
        )
        starter.start()
        starter.join(timeout=10 * handoff.HANDOFF_TIMEOUT)
        stop.set()
        assert not starter.is_alive(), "the start is still waiting on a listener that trickles its answer"
        assert result == [None]
        t.join(timeout=5)
