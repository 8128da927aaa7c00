"""Is a record still a working board? Process identity plus an HTTP answer.

A record is "running" only if its process is the one it names (pid *and*
creation time) and TensorBoard's HTTP API answers on its port. This is what
``%tensorboard`` skips: it reports "Reusing TensorBoard on port 6006" for a
pid that died long ago.
"""

from __future__ import annotations

import http.client
import time

import psutil

from . import procs
from .idle import PROBE_HEADER
from .instance import Instance
from .registry import SOURCE_NBBOARD, BoardRecord

#: How long one probe may take. TensorBoard answers /data/environment in ~1 ms;
#: a board that needs longer is busy enough to count as not answering.
PROBE_TIMEOUT = 1.0


def answers(port: int, path_prefix: str = "", host: str = "127.0.0.1", timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a TensorBoard answers ``/data/environment`` on ``port``.

    http.client rather than requests: this runs on every re-run of a
    ``%board`` cell, and a bare connection costs a fraction of a session.
    """
    if port <= 0:
        return False
    prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
    conn = http.client.HTTPConnection(host if host not in ("", "0.0.0.0", "::") else "127.0.0.1", port, timeout=timeout)
    try:
        # Marked as a probe: it must not count as someone using the board (see nbboard.idle).
        conn.request("GET", f"{prefix}/data/environment", headers={PROBE_HEADER: "1"})
        resp = conn.getresponse()
        body = resp.read(4096)
        return resp.status == 200 and b"data_location" in body
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def owner(record: BoardRecord) -> tuple[psutil.Process | None, str]:
    """The process the record proves to be its TensorBoard, or (None, why not)."""
    if record.source == SOURCE_NBBOARD:
        return procs.find_launched(record.pid, record.create_time, record.argv)
    return procs.find_tensorboard(record.pid, record.start_time)


def check(record: BoardRecord, start_timeout: float = 60.0) -> tuple[Instance, psutil.Process | None]:
    """What ``record`` is now, and its process if it is ours.

    Status: "running" (ours and answering), "starting" (ours, launched less
    than ``start_timeout`` ago, not answering yet), "stale" (anything else).
    A stale record may still come with a process: ours but hung; ``kill``
    stops it, ``list`` keeps the record so that it can.
    """
    proc, why = owner(record)
    if proc is None:
        return Instance(record, status="stale", reason=why), None
    if answers(record.port, record.path_prefix, record.host):
        return Instance(record, status="running"), proc
    if record.state == "starting" and time.time() - record.start_time < start_timeout:
        return Instance(record, status="starting", reason="not answering yet"), proc
    why = f"process {record.pid} is alive but port {record.port} does not answer"
    return Instance(record, status="stale", reason=why), proc
