"""Is a record still a working board? Process identity plus an HTTP answer.

A record is "running" only if its process is the one it names (pid *and*
creation time) and TensorBoard's HTTP API answers on its port. This is what
``%tensorboard`` skips: it reports "Reusing TensorBoard on port 6006" for a
pid that died long ago.
"""

from __future__ import annotations

import dataclasses
import http.client
import time

import psutil

from . import procs
from .registry import SOURCE_NBBOARD, Instance

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
        conn.request("GET", f"{prefix}/data/environment")
        resp = conn.getresponse()
        body = resp.read(4096)
        return resp.status == 200 and b"data_location" in body
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def owner(instance: Instance) -> tuple[psutil.Process | None, str]:
    """The process the record proves to be its TensorBoard, or (None, why not)."""
    if instance.source == SOURCE_NBBOARD:
        return procs.find_launched(instance.pid, instance.create_time, instance.argv)
    return procs.find_tensorboard(instance.pid, instance.start_time)


def check(instance: Instance, start_timeout: float = 60.0) -> tuple[Instance, psutil.Process | None]:
    """``instance`` with ``status``/``reason`` filled in, and its process if it is ours.

    Status: "running" (ours and answering), "starting" (ours, launched less
    than ``start_timeout`` ago, not answering yet), "stale" (anything else).
    A stale record may still come with a process: ours but hung; ``kill``
    stops it, ``list`` keeps the record so that it can.
    """
    proc, why = owner(instance)
    if proc is None:
        return dataclasses.replace(instance, status="stale", reason=why), None
    if answers(instance.port, instance.path_prefix, instance.host):
        return dataclasses.replace(instance, status="running", reason=""), proc
    if instance.state == "starting" and time.time() - instance.start_time < start_timeout:
        return dataclasses.replace(instance, status="starting", reason="not answering yet"), proc
    return (
        dataclasses.replace(
            instance, status="stale", reason=f"process {instance.pid} is alive but port {instance.port} does not answer"
        ),
        proc,
    )
