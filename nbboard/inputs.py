"""What users type (ports, pids, seconds, option names), checked in one place with one kind of error.

The CLI and the magic call these when they parse a line; the API calls them
for Python callers. Each rejects with what was wrong and what to type instead.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable

from .errors import UsageError


def port(value: object, flag: str = "--port") -> int:
    """``value`` as a TCP port (1–65535)."""
    number = _integer(value, flag, "6006")
    if not 1 <= number <= 65535:
        raise UsageError(f"invalid {flag} {number}: expected a number from 1 to 65535", f"e.g. {flag} 6006")
    return number


def pid(value: object) -> int:
    """``value`` as a process id."""
    number = _integer(value, "--pid", "12345")
    if not 1 <= number < 2**31:
        raise UsageError(f"invalid --pid {number}: expected a positive number", "see the PID column of: nbboard list")
    return number


def integer(value: object, flag: str, lo: int, hi: int, example: str) -> int:
    number = _integer(value, flag, example)
    if not lo <= number <= hi:
        raise UsageError(f"invalid {flag} {number}: expected {lo} to {hi}", f"e.g. {flag} {example}")
    return number


def seconds(value: object, flag: str = "--timeout", example: str = "120") -> float:
    """``value`` as a finite, positive number of seconds."""
    if isinstance(value, bool):
        raise UsageError(f"invalid {flag} {value!r}: expected seconds > 0", f"e.g. {flag} {example}")
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise UsageError(f"invalid {flag} {value!r}: expected a finite number of seconds > 0", f"e.g. {flag} {example}")
    return number


def _integer(value: object, flag: str, example: str) -> int:
    if isinstance(value, bool):
        raise UsageError(f"invalid {flag} {value!r}: expected a number", f"e.g. {flag} {example}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise UsageError(f"invalid {flag} {value!r}: expected a number", f"e.g. {flag} {example}") from None


def closest(name: str, options: Iterable[str]) -> str | None:
    """The option ``name`` was probably meant to be (``--logidr`` → ``--logdir``), or None.

    One rule for the CLI and the magic: dashes and case are ignored, and the
    match must be close (difflib ratio ≥ 0.75), so that a TensorBoard flag
    nbboard passes through is not mistaken for a typo of one of nbboard's own.
    """

    def key(option: str) -> str:
        return option.lstrip("-").replace("-", "_").lower()

    by_key = {key(o): o for o in options}
    match = difflib.get_close_matches(key(name), list(by_key), n=1, cutoff=0.75)
    return by_key[match[0]] if match else None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: object, flag: str, example: str = "2h") -> float:
    """``value`` ("2h", "30m", "90s", "1d", or plain seconds) as a positive number of seconds."""
    match = _DURATION.match(str(value)) if not isinstance(value, bool) else None
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(
            f"invalid {flag} {value!r}: expected a duration such as 2h, 30m or 90s", f"e.g. {flag} {example}"
        )
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def idle_timeout(value: object) -> float:
    """``--idle-timeout`` in seconds: a duration of at least a second (a board must live long enough to be seen)."""
    seconds = duration(value, "--idle-timeout")
    if seconds < 1:
        raise UsageError(
            f"invalid --idle-timeout {value!r}: under a second, the board would stop as it starts",
            "e.g. --idle-timeout 2h",
        )
    return seconds
