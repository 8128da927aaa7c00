"""The standby: an interpreter with TensorBoard already imported, that becomes the next board.

Most of a cold start (~0.7 s of ~1 s here) is TensorBoard importing itself and
compressing its web assets, none of which depends on the logdir. A standby
pays for that in the background, so the next start only hands it arguments.

Its life:

- :func:`ensure` spawns ``python -m nbboard.standby`` detached
  and records it at once (state "starting"); a fresh key goes into a 0600 file
  and reaches the process on its stdin, never on argv or in its environment.
- The standby imports TensorBoard, listens on 127.0.0.1 (port 0) and records
  itself "ready" with its port.
- :func:`take`: a start proves it holds the key and the standby proves it
  does too (HMAC over fresh nonces, both ways) before the start sends
  TensorBoard's arguments, environment and working directory. The standby
  stops listening and runs that board (:func:`nbboard.serve.run_tensorboard`)
  in its own process; one hand-off per standby.
- The start records the board (pid, creation time and the standby's own
  command line, which names no logdir) and confirms; a hand-off nobody
  confirms within a minute stops itself, so no board runs unrecorded.
- Unused, it exits after ``idle_timeout``; ``nbboard kill`` stops it; a record
  whose process is gone, or whose pid now belongs to another program, is
  dropped and never used.

Off with ``BoardConfig(standby=False)``, ``c.BoardMagics.standby = False`` or
``NBBOARD_STANDBY=0``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from . import __version__, procs, registry, serve
from .config import BoardConfig, standby_wanted
from .registry import StandbyRecord

#: Longest message either side reads; an environment is a few KiB.
MAX_MESSAGE = 4 * 1024 * 1024
#: Longest of the other messages (a nonce, a proof, a yes or no).
MAX_SHORT_MESSAGE = 1024
#: Nonces are 16 random bytes and proofs an HMAC-SHA256, both in lower-case hex: nothing else is compared.
NONCE_HEX = 32
PROOF_HEX = 64
#: The standby's port is visible to every local user: refusals are logged at most once per this many seconds.
REFUSAL_LOG_INTERVAL = 60.0
#: How long one side waits for the other during a hand-off.
HANDOFF_TIMEOUT = 3.0
#: How long a board made from a standby waits for its starter to record it.
CONFIRM_TIMEOUT = 60.0
#: A standby this close to its idle exit is left alone.
IDLE_MARGIN = 5.0
#: A start waits for a standby still importing TensorBoard if it was spawned less than this many seconds ago.
STARTING_WAIT = 10.0
#: A standby still importing after this many seconds is broken: ensure() replaces it.
STARTING_LIMIT = 60.0
STARTING = "still importing TensorBoard"


@dataclass
class Handoff:
    """A standby that accepted a board's arguments; the starter records it, then confirms."""

    record: StandbyRecord
    sock: socket.socket

    def confirm(self) -> None:
        """The board is recorded: the standby may keep running it."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"recorded\n")
        self.close()

    def close(self) -> None:
        """Without a confirmation first, the board stops itself."""
        with contextlib.suppress(OSError):
            self.sock.close()


# ---------------------------------------------------------------------------
# The starter's side


def enabled(config: BoardConfig) -> bool:
    """May a standby be started or used? (See :func:`nbboard.config.standby_wanted`.)"""
    return standby_wanted(config)


def ensure(config: BoardConfig) -> StandbyRecord | None:
    """Start a standby unless one is alive (ready or still importing); returns it, or None if off.

    Runs in a background thread of the kernel: never raises.
    """
    try:
        if not enabled(config):
            return None
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            return None
        registry.ensure_home()
        with registry.lock("standby", timeout=30):
            for record, proc in _live():
                if record.state == "ready" or time.time() < record.start_time + STARTING_LIMIT:
                    return record
                procs.terminate_tree(proc)  # stuck importing for a minute: replace it
                _discard(record)
            return _spawn(config.standby_idle)
    except Exception:  # noqa: BLE001 - a standby is an optimisation; the next start simply runs cold
        return None


def _spawn(idle: float) -> StandbyRecord:
    key = secrets.token_hex(32)
    key_file = registry.ensure_home() / "secrets" / f"standby-{uuid.uuid4().hex[:12]}.key"
    registry.write_private(key_file, key)
    log_path = registry.new_log_path("tb")
    argv = [sys.executable, "-m", "nbboard.standby", "--idle", f"{idle:g}"]
    try:
        child = procs.spawn_detached(argv, log_path, serve.child_env(procs.owner_env()), stdin=subprocess.PIPE)
    except OSError:
        with contextlib.suppress(OSError):
            key_file.unlink()
        registry.remove_log_file(log_path)
        raise
    try:
        created = procs.create_time(child.pid)
    except Exception:  # noqa: BLE001 - it died at once: its record never proves a process, and is collected
        created = 0.0
    record = StandbyRecord(
        pid=child.pid,
        create_time=created,
        argv=tuple(argv),
        python=sys.executable,
        version=__version__,
        start_time=int(time.time()),
        idle_timeout=idle,
        secret_file=str(key_file),
        log_path=log_path,
    )
    try:
        record = registry.write_standby(record)
        assert child.stdin is not None
        child.stdin.write(key.encode() + b"\n")  # only after the record exists: the standby updates it
        child.stdin.close()
    except Exception:
        with contextlib.suppress(Exception):
            procs.terminate_tree(psutil.Process(child.pid))
        _discard(record)
        raise
    return record


def _live(any_interpreter: bool = False) -> list[tuple[StandbyRecord, psutil.Process]]:
    """Standby records whose process is the recorded one (ready or starting), newest first; only this
    interpreter's and nbboard's unless ``any_interpreter``. Another interpreter's standby is left alone:
    it serves its own starts."""
    records, _ = registry.read_standbys()
    alive = []
    mine = [r for r in records if any_interpreter or (r.python == sys.executable and r.version == __version__)]
    for record in sorted(mine, key=lambda r: r.start_time, reverse=True):
        proc = procs.find_launched(record.pid, record.create_time, record.argv)[0]
        if proc is not None:
            alive.append((record, proc))
    return alive


def running() -> tuple[StandbyRecord, ...]:
    """Standbys of this registry whose process is the recorded one (any interpreter), for ``list``."""
    return tuple(record for record, _ in _live(any_interpreter=True))


def usable(record: StandbyRecord) -> str:
    """Why this start may not use ``record`` ("" if it may; :data:`STARTING` if it may soon)."""
    if record.state != "ready" or not record.port:
        return STARTING
    if record.python != sys.executable:
        return f"runs {record.python}, not {sys.executable}"
    if record.version != __version__:
        return f"spawned by nbboard {record.version}"
    if time.time() > record.start_time + record.idle_timeout - IDLE_MARGIN:
        return "about to exit idle"
    proc, why = procs.find_launched(record.pid, record.create_time, record.argv)
    return why if proc is None else ""


def take(args: Sequence[str], env: dict[str, str], cwd: str) -> Handoff | None:
    """Hand TensorBoard's ``args`` to a ready standby; None (and no side effect) if there is none.

    A standby still importing TensorBoard (a start right after ``%load_ext``)
    is waited for: it is ready sooner than a cold start would be, and a cold
    start beside it would share the CPU with it. The caller records the board
    (pid, create_time and argv of the returned record) and then calls
    :meth:`Handoff.confirm`.
    """
    payload = json.dumps({"args": list(args), "env": env, "cwd": cwd})
    tried: set[int] = set()
    while True:
        try:
            records, _ = registry.read_standbys()
        except Exception:  # noqa: BLE001 - an unreadable registry is reported by the start itself
            return None
        pending = False
        for record in sorted(records, key=lambda r: r.start_time, reverse=True):
            if record.pid in tried:
                continue
            why = usable(record)
            if why == STARTING:
                pending = pending or _worth_waiting_for(record)
                continue
            tried.add(record.pid)
            if why:
                continue
            key = _read_key(record.secret_file)
            sock = _handshake(record.port, key, payload) if key else None
            if sock is not None:
                return Handoff(record, sock)
        if not pending:
            return None
        time.sleep(0.01)


def _worth_waiting_for(record: StandbyRecord) -> bool:
    """A standby still importing, spawned recently enough to be ready before a cold start would be."""
    if time.time() > record.start_time + STARTING_WAIT:
        return False
    return procs.find_launched(record.pid, record.create_time, record.argv)[0] is not None


def _discard(record: StandbyRecord) -> None:
    """Drop a standby that will never be a board: its record, its key file and its log."""
    registry.remove_standby(record)
    registry.remove_log_file(record.log_path)


def forget(record: StandbyRecord) -> None:
    """Drop a standby's record and key once its process is a recorded board (or gone)."""
    registry.remove_standby(record)


def _handshake(port: int, key: str, payload: str) -> socket.socket | None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=HANDOFF_TIMEOUT)
    except OSError:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        ours = secrets.token_hex(NONCE_HEX // 2)
        _send(sock, {"hello": ours})
        reply = _receive(reader, MAX_SHORT_MESSAGE)
        theirs = _hex(reply.get("nonce"), NONCE_HEX)
        if not hmac.compare_digest(_hex(reply.get("proof"), PROOF_HEX), _mac(key, "standby", ours, theirs)):
            raise ValueError("the standby did not prove it holds the key")
        _send(sock, {"proof": _mac(key, "starter", theirs, payload), "payload": payload})
        if _receive(reader, MAX_SHORT_MESSAGE).get("ok") is not True:
            raise ValueError("the standby refused")
        reader.close()
        return sock
    except Exception:  # noqa: BLE001 - whatever answered on that port, the start runs cold instead
        sock.close()
        return None


def _read_key(path: str) -> str:
    """The key in a 0600 file of ours (no symlink, no other owner), "" if it is not one."""
    if not path:
        return ""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return ""
    try:
        st = os.fstat(fd)
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            return ""
        return os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# kill and garbage


def clear() -> list[StandbyRecord]:
    """Stop every standby of this registry and drop every standby record; returns those stopped."""
    records, _ = registry.read_standbys()
    stopped = []
    alive = []
    for record in records:
        proc, _ = procs.find_launched(record.pid, record.create_time, record.argv)
        if proc is not None:
            alive.append(proc)
            stopped.append(record)
    procs.terminate_trees(alive)
    for record in records:
        _discard(record)
    return stopped


def collect_garbage() -> None:
    """Drop records of standbys that are gone, or whose pid now belongs to another program."""
    with contextlib.suppress(Exception):
        records, _ = registry.read_standbys()
        for record in records:
            if procs.find_launched(record.pid, record.create_time, record.argv)[0] is None:
                _discard(record)


# ---------------------------------------------------------------------------
# The standby's side (runs in ``python -m nbboard.standby``)


def run(args: Sequence[str]) -> int:
    """Import TensorBoard, wait for one hand-off (or the idle timeout), then run that board."""
    idle = float(args[args.index("--idle") + 1]) if "--idle" in args else 600.0
    program = serve.prepare(warm=True)
    key = sys.stdin.readline().strip()  # written by the spawner once it has recorded this process
    path = registry.standby_path(os.getpid())
    try:
        mine = registry.decode(StandbyRecord, registry.read_trusted_json(path), str(path))
    except ValueError:
        return 0  # the spawner died before recording this process: nobody may use it
    if not key:
        return 0
    door = _Door(key)
    deadline = time.monotonic() + idle  # idle from the moment it is ready
    with socket.create_server(("127.0.0.1", 0)) as listener:
        registry.write_standby(dataclasses.replace(mine, state="ready", port=listener.getsockname()[1]))
        if not door.wait(listener, deadline):
            _discard(mine)
            return 0
    assert door.job is not None and door.conn is not None
    _await_confirmation(door.conn)
    _become(door.job)
    os.environ[serve.STATUS_VAR] = registry.status_id(mine.log_path)  # this log is the board's: so is its status
    return serve.run_tensorboard(door.job["args"], program)


class _Door:
    """The standby's listener. Each caller is heard in its own thread, so a slow or hostile one
    delays nobody; the first genuine hand-off wins and the door closes."""

    MAX_CALLERS = 16

    def __init__(self, key: str) -> None:
        import threading

        self.key = key
        self.job: dict[str, Any] | None = None
        self.conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._callers = threading.BoundedSemaphore(self.MAX_CALLERS)
        self._wake_r, self._wake_w = socket.socketpair()

    def wait(self, listener: socket.socket, deadline: float) -> bool:
        """Hear callers until one hands off (True) or the idle deadline passes (False)."""
        import selectors
        import threading

        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while self.job is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for key, _ in selector.select(left):
                    if key.fileobj is not listener:
                        continue
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    if not self._callers.acquire(blocking=False):
                        conn.close()  # too many callers at once: none of them is a start waiting for us
                        continue
                    try:
                        threading.Thread(target=self._hear, args=(conn,), daemon=True).start()
                    except RuntimeError:  # no thread to be had: this caller goes unheard
                        self._callers.release()
                        conn.close()
        return True

    def _hear(self, conn: socket.socket) -> None:
        import threading

        # A caller trickling bytes would hold this thread forever: its whole hand-off gets a deadline.
        cutoff = threading.Timer(2 * HANDOFF_TIMEOUT, _hang_up, args=(conn,))
        job = None
        try:
            cutoff.start()
            job = _serve_handshake(conn, self.key, self._claim)
        except Exception as e:  # noqa: BLE001 - anyone can call: nothing a caller sends may reach the log as a traceback
            _refusals.note(type(e).__name__)
        finally:
            cutoff.cancel()
            self._callers.release()
        if job is None:
            with contextlib.suppress(OSError):
                conn.close()

    def _claim(self, job: dict[str, Any], conn: socket.socket) -> bool:
        with self._lock:
            if self.job is not None:
                return False
            self.job, self.conn = job, conn
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")
        return True


class _Refusals:
    """Callers refused at the standby's door, logged as at most one line per :data:`REFUSAL_LOG_INTERVAL`.

    The line names no detail of what the caller sent: its bytes are not the
    owner's to keep in the log, which lives on as the board's log.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._last = float("-inf")
        self._unlogged = 0

    def note(self, why: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < REFUSAL_LOG_INTERVAL:
                self._unlogged += 1
                return
            more = f" ({self._unlogged} more since the last line)" if self._unlogged else ""
            self._last, self._unlogged = now, 0
        with contextlib.suppress(Exception):
            print(
                f"nbboard: the standby refused a caller without its key ({why}){more}; "
                f"further refusals are counted, at most one line per {REFUSAL_LOG_INTERVAL:g} s",
                flush=True,
            )


_refusals = _Refusals()


def _hang_up(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def _serve_handshake(conn: socket.socket, key: str, claim: Any) -> dict[str, Any] | None:
    """The job a genuine starter sends, once ``claim(job, conn)`` accepted it; None for anything else
    (junk, a wrong key, a slow peer, a second start after the first). Every refusal is noted
    (see :class:`_Refusals`); what else a hostile caller can make it raise, the caller catches."""
    try:
        conn.settimeout(HANDOFF_TIMEOUT)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        theirs = _hex(_receive(reader, MAX_SHORT_MESSAGE).get("hello"), NONCE_HEX)
        ours = secrets.token_hex(NONCE_HEX // 2)
        _send(conn, {"proof": _mac(key, "standby", theirs, ours), "nonce": ours})
        message = _receive(reader, MAX_MESSAGE)
        payload = message.get("payload")
        if not isinstance(payload, str):
            raise ValueError("no payload")
        if not hmac.compare_digest(_hex(message.get("proof"), PROOF_HEX), _mac(key, "starter", ours, payload)):
            _refusals.note("wrong proof")
            return None
        job = json.loads(payload)
        if not (
            isinstance(job, dict)
            and isinstance(job.get("args"), list)
            and all(isinstance(a, str) for a in job["args"])
            and isinstance(job.get("env"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in job["env"].items())
            and isinstance(job.get("cwd"), str)
        ):
            _refusals.note("malformed job")
            return None
        if not claim(job, conn):
            _send(conn, {"ok": False, "why": "taken by another start"})
            return None
        _send(conn, {"ok": True})  # if this fails the start falls back, never confirms, and the board stops itself
        return job
    except OSError:
        return None  # hung up, or too slow: a start that gave up, or a port scan
    except ValueError as e:
        _refusals.note(str(e) if isinstance(e, _BadMessage) else "bad message")
        return None


def _await_confirmation(conn: socket.socket) -> None:
    """Stop this board if its starter does not confirm it recorded it (it died, or gave up)."""
    import signal
    import threading

    def wait() -> None:
        try:
            conn.settimeout(CONFIRM_TIMEOUT)
            confirmed = conn.makefile("rb").readline(64).strip() == b"recorded"
        except OSError:
            confirmed = False
        finally:
            conn.close()
        if not confirmed:
            print("nbboard: the start that took this standby did not record it; stopping", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, daemon=True, name="nbboard-confirm").start()


def _become(job: dict[str, Any]) -> None:
    """Take the starter's environment and working directory, as a freshly launched board would have."""
    import tempfile

    os.environ.clear()
    os.environ.update(job["env"])
    tempfile.tempdir = None  # gettempdir() caches; TensorBoard's info file follows TMPDIR
    with contextlib.suppress(OSError):
        os.chdir(job["cwd"])


def _mac(key: str, *parts: str) -> str:
    return hmac.new(key.encode(), "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


class _BadMessage(ValueError):
    """A message not of the hand-off's shape; its text is a fixed reason, never what was sent."""


#: A JSON string, escapes included; what is left once they are removed must be one flat object.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _receive(reader: Any, limit: int) -> dict[str, Any]:
    """One message: a single line of ASCII JSON, at most ``limit`` bytes, a flat object of strings and booleans.

    The shape is checked before the line is parsed, so no caller can make the
    parser recurse (nested arrays) or hand a non-ASCII string to
    ``hmac.compare_digest`` (which raises TypeError on one).
    """
    line = reader.readline(limit + 1)
    if len(line) > limit:
        raise _BadMessage("message too long")
    if not line.endswith(b"\n"):
        raise _BadMessage("no complete message")
    if not line.isascii():
        raise _BadMessage("not ASCII")
    bare = _JSON_STRING.sub(b'""', line)
    if not bare.lstrip().startswith(b"{") or bare.count(b"{") != 1 or b"[" in bare:
        raise _BadMessage("not a flat object")
    try:
        message = json.loads(line)
    except ValueError:
        raise _BadMessage("not JSON") from None
    if not isinstance(message, dict) or not all(isinstance(v, (str, bool)) for v in message.values()):
        raise _BadMessage("not a flat object")
    return message


def _hex(value: Any, length: int) -> str:
    """``value`` if it is ``length`` lower-case hex digits (a nonce or a proof), else _BadMessage."""
    if not (isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)):
        raise _BadMessage("malformed nonce or proof")
    return value


if __name__ == "__main__":
    from nbboard import standby  # the importable module, not this __main__ copy

    sys.exit(standby.run(sys.argv[1:]))
