"""What a tunnel server may hand us, cleaned before it is printed, stored or shown as a link.

A tunnel server (a user may point ``--host`` anywhere, and the public ones
are run by others) chooses the public URL and the text of its errors. Raw,
either could carry terminal escape sequences (hiding the real URL in
``nbboard tunnel`` or ``nbboard list``) or a ``javascript:`` URL that the
board's Public link button would follow. No I/O here.
"""

from __future__ import annotations

import re
import unicodedata

# scheme://host[:port] and nothing else: a DNS name or IPv4 address (no userinfo, path, query or fragment).
_PUBLIC_URL = re.compile(
    r"^(https?)://((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(?::([0-9]{1,5}))?/?$"
)


def printable(text: str, limit: int = 200) -> str:
    """``text`` with every control or format character (ESC, BEL, CR, bidi overrides…) replaced by "?",
    cut to ``limit`` characters: safe to print to a terminal, a log or a notebook."""
    out = "".join("?" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") else c for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def public_url(text: object) -> str | None:
    """A well-formed ``http(s)://host[:port]`` (no trailing slash), or None for anything else."""
    if not isinstance(text, str) or len(text) > 300:
        return None
    match = _PUBLIC_URL.match(text)
    if match is None or len(match.group(2)) > 253 or (match.group(3) and not 0 < int(match.group(3)) < 65536):
        return None
    return text.rstrip("/")


def http_link(url: str) -> str:
    """``url`` if a browser may follow it as a link (http or https, printable), else ""."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or printable(url, len(url) + 1) != url:
        return ""
    return url
