"""Tunnel secrets: made here, kept in 0600 files, shown to nobody but their owner."""

from __future__ import annotations

import secrets

from .auth import TOKEN_PARAM

#: 32 bytes of randomness: 256 bits, well past the 128 the threat model needs.
SECRET_BYTES = 32
MASK = "********"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def mask(public_url: str, auth: bool = True) -> str:
    """The form of a tunnel URL that ``list`` and logs may show."""
    if not auth:
        return public_url
    return public_url.rstrip("/") + f"/?{TOKEN_PARAM}={MASK}"
