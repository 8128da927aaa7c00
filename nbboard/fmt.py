"""Words for people: the same sentences from the CLI and from ``%board``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from . import errors
from .discover import Candidate, Discovery
from .instance import Instance
from .links import printable
from .registry import EndedRecord, Skipped, StandbyRecord
from .tunnels.secrets import mask


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def clock(seconds: float) -> str:
    """A board's ticking clock: like :func:`duration`, but always two units past the first hour ("2 h 0 min"),
    so it keeps its shape as it ticks. js/view.js's ``duration`` says the same (tests/test_view_contract.py)."""
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return duration(seconds)
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours < 24 else f"{hours // 24} d {hours % 24} h"


def started(instance: Instance) -> str:
    if instance.reused:
        return (
            f"reusing TensorBoard on port {instance.port} (pid {instance.pid}), "
            f"started {duration(instance.uptime())} ago"
        )
    version = f" {instance.version}" if instance.version else ""
    return f"started TensorBoard{version} on port {instance.port} (pid {instance.pid}) for {instance.logdir}"


def table(
    instances: Sequence[Instance],
    now: float | None = None,
    *,
    magic: bool = False,
    ended: Sequence[EndedRecord] = (),
    standbys: Sequence[StandbyRecord] = (),
) -> str:
    """The ``list`` table; ``magic`` words its hints for ``%board`` instead of the shell.

    Below it: boards that stopped themselves (and why), and the standby waiting to become the next board.
    """
    now = time.time() if now is None else now
    after = [f"ended {n.port}: {n.reason} ({duration(now - n.ended_at)} ago; pid {n.pid}, {n.logdir})" for n in ended]
    after += [
        f"standby: pid {s.pid}, TensorBoard imported and {'ready' if s.state == 'ready' else 'starting'} for the next "
        f"board; exits after {duration(s.idle_timeout)} unused ({'%board kill' if magic else 'nbboard kill'} stops it)"
        for s in standbys
    ]
    if not instances:
        start = "%board --logdir DIR" if magic else "nbboard start --logdir DIR"
        return "\n".join([f"no TensorBoard running (start one with: {start})", *after])
    rows = [("PORT", "PID", "STATUS", "UPTIME", "SOURCE", "LOGDIR", "URL")]
    for i in instances:
        rows.append(
            (
                str(i.port),
                str(i.pid),
                i.status,
                duration(i.uptime(now)) if i.start_time else "?",
                i.source,
                i.logdir or "?",
                i.url,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    for i in instances:
        if i.status == "stale" and i.reason:
            lines.append(f"  stale {i.port}: {i.reason}")
        if i.tunnel is not None:
            lines.append(
                f"  tunnel {i.port}: {printable(mask(i.tunnel.public_url, i.tunnel.auth))} ({i.tunnel.provider})"
            )
        if i.is_ours and i.record.idle_timeout:
            lines.append(f"  idle {i.port}: stops itself after {duration(i.record.idle_timeout)} without a request")
    stale = sum(1 for i in instances if i.status == "stale")
    if stale:
        lines.append(f"{stale} stale record(s): clear them with: {'%board kill' if magic else 'nbboard kill'}")
    return "\n".join([*lines, *after])


def skipped(items: Sequence[Skipped], limit: int = 5) -> str:
    if not items:
        return ""
    lines = [f"skipped {len(items)} registry file(s) nbboard could not use:"]
    lines += [f"  {s.path}: {s.why}" for s in items[:limit]]
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more")
    return "\n".join(lines)


def killed(
    stopped: Sequence[Instance],
    cleaned: Sequence[Instance],
    removed_logs: int = 0,
    standbys: Sequence[StandbyRecord] = (),
    ended: Sequence[EndedRecord] = (),
) -> str:
    lines = [f"stopped TensorBoard on port {i.port} (pid {i.pid}, {i.source}) for {i.logdir}" for i in stopped]
    lines += [f"removed stale record: port {i.port}, pid {i.pid} ({i.source}): {i.reason}" for i in cleaned]
    lines += [f"stopped the standby (pid {s.pid})" for s in standbys]
    lines += [f"cleared the note of port {n.port} ({n.reason})" for n in ended]
    if removed_logs:
        lines.append(f"removed {removed_logs} old log file(s)")
    return "\n".join(lines) or "nothing to stop: no TensorBoard and no stale records"


# ---------------------------------------------------------------------------
# JSON for --json: one shape everywhere, never a secret


def demo_next_steps(instance: Instance, logdir: str) -> str:
    """After ``nbboard demo``: how to open the board, the notebook line for the same logs (absolute: a notebook
    runs wherever it was opened), how to stop it."""
    import shlex

    return (
        f"open it:        {instance.url}  (on a remote machine: ssh -L {instance.port}:127.0.0.1:{instance.port} "
        f"YOU@HOST first, or: nbboard tunnel --port {instance.port})\n"
        f"in a notebook:  %load_ext nbboard   then   %board --logdir {shlex.quote(logdir)}\n"
        f"stop it:        nbboard kill --port {instance.port}"
    )


def instance_json(instance: Instance) -> dict[str, Any]:
    """The public JSON form of a board (``nbboard list --json``, ``start --json``, ``kill --json``)."""
    data: dict[str, Any] = {
        "pid": instance.pid,
        "port": instance.port,
        "logdir": instance.logdir,
        "url": instance.url,
        "status": instance.status,
        "source": instance.source,
        "reason": instance.reason,
        "reused": instance.reused,
        "start_time": instance.start_time,
        "uptime_s": round(instance.uptime(), 1),
        "version": instance.version,
        "record": instance.record.path,
        "log": instance.log_path,
    }
    if instance.is_ours:
        data["tcp_nodelay"] = {"applied": instance.record.nodelay, "detail": instance.record.nodelay_note}
        data["from_standby"] = instance.record.from_standby
        data["idle_timeout_s"] = instance.record.idle_timeout
    if instance.tunnel is not None:
        data["tunnel"] = {
            "provider": instance.tunnel.provider,
            "url": mask(instance.tunnel.public_url, instance.tunnel.auth),
            "helper_pid": instance.tunnel.helper_pid,
            "expires_at": instance.tunnel.expires_at,
            "auth": instance.tunnel.auth,
        }
    return data


def ended_json(note: EndedRecord) -> dict[str, Any]:
    """A board that stopped itself, in ``list --json`` beside the boards: status "ended" and why."""
    return {
        "pid": note.pid,
        "port": note.port,
        "logdir": note.logdir,
        "status": "ended",
        "reason": note.reason,
        "ended_at": note.ended_at,
    }


def standby_json(record: StandbyRecord) -> dict[str, Any]:
    """The standby, in ``list --json``: status "standby" (it serves nothing until it becomes a board)."""
    return {
        "pid": record.pid,
        "port": 0,
        "logdir": "",
        "status": "standby",
        "state": record.state,
        "log": record.log_path,
    }


def skipped_json(item: Skipped) -> dict[str, str]:
    return {"path": item.path, "why": item.why}


# ---------------------------------------------------------------------------
# Logdirs found when none was given


def logdir_argument(path: str, cwd: str) -> str:
    """``path`` as a user would type it after ``--logdir``: relative to ``cwd`` when under it, quoted if needed."""
    import os
    import shlex

    relative = os.path.relpath(path, cwd)
    shown = path if relative == os.pardir or relative.startswith(os.pardir + os.sep) else relative
    # Control characters escaped: another user's directory named with a carriage return and an escape
    # sequence would otherwise print as a line to copy that is not the one nbboard wrote.
    return errors.shown(shlex.quote(shown), limit=4096)


def candidate_detail(runs: int, latest: float, now: float | None = None) -> str:
    """ "written 2 min ago, 4 runs": what tells two candidate logdirs apart."""
    now = time.time() if now is None else now
    age = f"written {duration(now - latest)} ago" if latest else "no write time"
    return f"{age}, {runs} run{'s' if runs != 1 else ''}"


def found_one(only: Candidate) -> str:
    """The one logdir found when none was given, and how recent it is (escaped, as in :func:`candidates`)."""
    return (
        f"no logdir given; found event files in {errors.shown(only.path, 4096)} "
        f"({candidate_detail(only.runs, only.latest)})"
    )


def candidates(found: Discovery, command: str, now: float | None = None) -> str:
    """The logdirs found, newest first, as lines to copy (``command`` is "%board" or "nbboard start")."""
    lines = [
        f"found event files in {len(found.candidates)} places under {errors.shown(found.root, 4096)} (newest first):"
    ]
    args = [logdir_argument(c.path, found.root) for c in found.candidates]
    width = max(len(a) for a in args)
    for arg, c in zip(args, found.candidates, strict=True):
        lines.append(f"  {command} --logdir {arg.ljust(width)}   # {candidate_detail(c.runs, c.latest, now)}")
    if found.truncated:
        lines.append(f"(the search stopped early: {found.truncated}; pass --logdir if yours is not listed)")
    return "\n".join(lines)
