"""The hand-off between a start and a standby: the handshake, its messages, the standby's door.

A standby listens on a loopback port that every local user can reach, so
nothing a caller sends is trusted before it proves it holds the key (a 0600
file of the owner's): the start proves it, the standby proves it back (HMAC
over fresh nonces, both ways), then the start sends the board's arguments,
environment and working directory. Messages are single lines of flat ASCII
JSON of bounded length, checked for shape before they are parsed. The start
confirms once it has recorded the board; a board nobody confirms stops itself.

:mod:`nbboard.standby` runs the standby's life around this; the two sides
of the protocol are kept together here so that they change together.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
#: What the start sends once it has recorded the board.
CONFIRMATION = b"recorded"


@dataclass
class Handoff:
    """A standby that accepted a board's arguments; the starter records it, then confirms."""

    record: StandbyRecord
    sock: socket.socket

    def confirm(self) -> None:
        """The board is recorded: the standby may keep running it."""
        with contextlib.suppress(OSError):
            self.sock.sendall(CONFIRMATION + b"\n")
        self.close()

    def close(self) -> None:
        """Without a confirmation first, the board stops itself."""
        with contextlib.suppress(OSError):
            self.sock.close()


def connect(port: int, key: str, payload: str) -> socket.socket | None:
    """The starter's side: prove the key both ways, send ``payload``; the socket to confirm on, or None."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=HANDOFF_TIMEOUT)
    except OSError:
        return None
    try:
        with _deadline(sock):  # whatever listens there may trickle its answers, as a caller of the door may
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


class Door:
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
        job = None
        try:
            with _deadline(conn):
                job = _serve_handshake(conn, self.key, self._claim)
        except Exception as e:  # noqa: BLE001 - anyone can call: nothing a caller sends may reach the log as a traceback
            _refusals.note(type(e).__name__)
        finally:
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


@contextlib.contextmanager
def _deadline(conn: socket.socket) -> Iterator[None]:
    """The whole hand-off on ``conn`` ends within 2 × HANDOFF_TIMEOUT, on either side: the socket's timeout
    bounds each read only, and a peer trickling a byte at a time would hold it for a thousand of them."""
    import threading

    cutoff = threading.Timer(2 * HANDOFF_TIMEOUT, _hang_up, args=(conn,))
    cutoff.daemon = True
    cutoff.start()
    try:
        yield
    finally:
        cutoff.cancel()


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


def await_confirmation(conn: socket.socket) -> None:
    """Stop this board if its starter does not confirm it recorded it (it died, or gave up)."""
    import signal
    import threading

    def wait() -> None:
        try:
            conn.settimeout(CONFIRM_TIMEOUT)
            confirmed = conn.makefile("rb").readline(64).strip() == CONFIRMATION
        except OSError:
            confirmed = False
        finally:
            conn.close()
        if not confirmed:
            print("nbboard: the start that took this standby did not record it; stopping", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, daemon=True, name="nbboard-confirm").start()


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
