"""Fuzzed request heads against the real gate (issue 10, item 6).

Hypothesis composes request lines, header names and values, odd bytes and
separators, duplicated and ambiguous length headers and huge headers, and
sends each on its own connection to a real Gate in front of an upstream that
records what reaches it. Two properties:

- no request without the secret ever gets a 2xx (or a login), and none
  reaches the upstream;
- the gate never crashes: no unhandled error in its loop or its log, and it
  still serves an authorised request afterwards.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbboard.tunnels.gate import MAX_HEAD
from tests.gates import SECRET, Echo, GateThread, echo_server
from tests.reliability.figures import record

WRONG = SECRET[:-1] + ("A" if SECRET[-1] != "A" else "B")
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PRI", "get", "G\x00T", ""]
TARGETS = [
    "/",
    "/data/runs",
    "*",
    "http://127.0.0.1:1/data/runs",
    "//evil.example/",
    "/\\evil.example",
    "127.0.0.1:22",
    f"/?nbboard_token={WRONG}",
    f"/?nbboard_token={SECRET[:20]}",
    f"/?nbboard_token={SECRET.upper()}",
    f"/?nbboard_token={SECRET}x",
    f"/?nbboard_token={SECRET}&nbboard_token={SECRET}",
    f"/{SECRET}/data/runs",
    f"/?token={SECRET}",
    "/%2e%2e/data",
    "/data%00/runs",
]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.1 ", "HTTP/1.10", "HTTP/1", ""]
NAMES = ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "Cookie", "Authorization",
         "X-Forwarded-Proto", "Upgrade", "Content-length", "Transfer-encoding", " Host", "Host ", "X\x00Y", "", ":"]  # fmt: skip
VALUES = [
    "0", "5", "-1", "+5", " 5", "5,5", "1e3", "0x10", "99999999999999999999", "chunked", "chunked, identity",
    "identity", "Chunked", "chunked\x0b", "close", "keep-alive, Upgrade", "100-continue", "200-ok", "websocket",
    f"nbboard_auth={SECRET}", f"nbboard_auth={WRONG}", f"Bearer {WRONG}", f"Basic {SECRET}", f"bearer{SECRET}",
    f"Bearer  {SECRET[1:]}", "a" * 9000, "\xff\xfe", "x\ry", "x\ny",
]  # fmt: skip
SEPARATORS = ["\r\n"] * 6 + ["\n", "\r", "\r\n ", "\r\n\t", "\x00"]

header = st.tuples(
    st.one_of(st.sampled_from(NAMES), st.text(max_size=12)), st.one_of(st.sampled_from(VALUES), st.text(max_size=40))
)
unauthenticated_head = st.builds(
    lambda method, target, version, headers, seps, huge, body: (
        f"{method} {target} {version}".encode("latin-1", "replace")
        + b"".join(
            sep.encode() + f"{k}:{v}".encode("utf-8", "surrogatepass")
            for (k, v), sep in zip(headers, seps, strict=False)
        )
        + (b"\r\nX-Huge: " + b"h" * huge if huge else b"")
        + b"\r\n\r\n"
        + body
    ),
    st.one_of(st.sampled_from(METHODS), st.text(max_size=8)),
    st.one_of(st.sampled_from(TARGETS), st.text(max_size=60).map(lambda t: "/" + t), st.text(max_size=20)),
    st.one_of(st.sampled_from(VERSIONS), st.text(max_size=10)),
    st.lists(header, max_size=8),
    st.lists(st.sampled_from(SEPARATORS), min_size=8, max_size=8),
    st.sampled_from([0, 0, 0, 100, MAX_HEAD - 200, MAX_HEAD + 10, 200_000]),
    st.binary(max_size=300),
)
raw_bytes = st.binary(min_size=1, max_size=2000)

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")
tally = {"unauthenticated": 0, "authorised_garbage": 0, "2xx": 0, "login": 0, "forwarded": 0}


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def gate() -> Iterator[tuple[GateThread, Errors]]:
    errors = Errors()
    logging.getLogger("nbboard.gate").addHandler(errors)
    with echo_server() as port:
        g = GateThread(port)
        try:
            yield g, errors
        finally:
            g.close()
            logging.getLogger("nbboard.gate").removeHandler(errors)


def send(port: int, data: bytes) -> bytes:
    """Send ``data``, then half-close (so a gate waiting for more sees the end), and read until closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the gate may have answered and closed before all of it was sent
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def still_serving(g: GateThread, errors: Errors) -> None:
    assert g.errors == [], g.errors
    assert errors.records == [], [r.getMessage() for r in errors.records]
    resp = requests.get(g.url + "/alive", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["path"] == "/alive"
    Echo.seen.clear()


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(unauthenticated_head, raw_bytes))
def test_fuzzed_heads_without_the_secret_never_get_through(gate: tuple[GateThread, Errors], data: bytes) -> None:
    g, errors = gate
    tally["unauthenticated"] += 1
    reply = send(g.gate.port, data)
    statuses = [int(code) for code in STATUS.findall(reply)]
    tally["2xx"] += sum(200 <= c < 300 for c in statuses)
    tally["login"] += statuses.count(302)
    tally["forwarded"] += len(Echo.seen)
    assert not any(200 <= c < 400 for c in statuses), (data[:200], reply[:200])
    assert Echo.seen == [], (data[:200], Echo.seen)
    if tally["unauthenticated"] % 100 == 0:
        still_serving(g, errors)


authorised_garbage = st.builds(
    lambda method, target, headers, body: (
        f"{method} {target} HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\n".encode()
        + b"".join(f"{k}:{v}\r\n".encode("utf-8", "surrogatepass") for k, v in headers)
        + b"\r\n"
        + body
    ),
    st.sampled_from(METHODS[:8]),
    st.one_of(st.sampled_from(TARGETS[:8]), st.text(max_size=40).map(lambda t: "/" + t)),
    st.lists(header, max_size=6),
    st.binary(max_size=300),
)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(authorised_garbage)
def test_fuzzed_heads_with_the_secret_never_crash_the_gate(gate: tuple[GateThread, Errors], data: bytes) -> None:
    g, errors = gate
    tally["authorised_garbage"] += 1
    send(g.gate.port, data)
    assert g.errors == [] and errors.records == []
    if tally["authorised_garbage"] % 50 == 0:
        still_serving(g, errors)


def test_zz_fuzz_figures(gate: tuple[GateThread, Errors]) -> None:
    """Runs after both fuzzers (alphabetical order within the module): the gate still serves, and the figures."""
    g, errors = gate
    still_serving(g, errors)
    assert tally["2xx"] == tally["login"] == tally["forwarded"] == 0
    record(
        f"fuzzed request heads: {tally['unauthenticated']} without the secret (odd bytes and separators, bad "
        "methods/targets/versions, duplicated and ambiguous length headers, huge headers) and "
        f"{tally['authorised_garbage']} with it plus garbage, sent to the real gate",
        f"{tally['2xx']} unauthenticated 2xx, {tally['forwarded']} reached TensorBoard; 0 unhandled errors, "
        "the gate served the owner after every batch",
    )
