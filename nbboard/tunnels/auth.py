"""Who may pass the gate: the secret's three forms, the login redirect, and the cookie.

No I/O here, so every rule can be read and tested on its own. The gate
(nbboard.tunnels.gate) asks :meth:`Auth.check` about each request head and
answers with what it returns.

A visitor proves it holds the tunnel's secret in one of three ways:

- ``?nbboard_token=SECRET`` in the link nbboard printed: answered with a
  redirect to the same path without the token, setting the cookie;
- the cookie, which is derived from the secret and a random per-tunnel nonce
  (so the secret itself crosses the wire once, and no two tunnels share a
  cookie even if they shared a secret), and expires with the tunnel;
  over https it is named ``__Host-nbboard_auth``, which browsers accept only
  from this very host (Secure, Path=/, no Domain);
- ``Authorization: Bearer SECRET``, for scripts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

TOKEN_PARAM = "nbboard_token"
COOKIE = "nbboard_auth"
#: The cookie's name over https: a sibling host (another ``*.loca.lt`` tunnel) cannot set a ``__Host-`` cookie.
HOST_COOKIE = "__Host-" + COOKIE
#: Cookies named like the gate's that one request may offer before the rest are ignored. A sibling tunnel on a
#: domain that is not a public suffix (loca.lt) can toss its own ``nbboard_auth`` cookies in front of the owner's
#: (a more specific Path is sent first); the owner's real one is among the first few unless the sibling floods the
#: jar, and a flood that pushes it out is the provider's problem (see the README's security model).
MAX_COOKIES = 16
#: Query fields the check reads. TensorBoard's requests carry a handful; a target of 32 000 tiny fields (a 64 KiB
#: head, no secret needed) used to cost 24 ms of the gate's event loop to parse: past this many, none is read, so a
#: token among them is not seen and the request needs a cookie or a bearer token like any other.
MAX_QUERY_FIELDS = 128
_SECRET_CHARS = re.compile(r"^[A-Za-z0-9_\-]{16,256}$")
#: Characters a redirect path keeps as they are; everything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True)
class Verdict:
    """What to do with one request.

    ``kind`` is "ok" (forward it), "login" (redirect to ``location``, setting
    the cookie), "deny" (no credentials: 401) or "wrong" (bad credentials: 403).
    """

    kind: str
    location: str = ""
    why: str = ""


OK = Verdict("ok")


class Auth:
    """The credentials of one tunnel. ``secret=None`` (``--no-auth``) lets everything through."""

    def __init__(self, secret: str | None, *, expires_at: float = 0.0, public_url: str = "") -> None:
        if secret is not None and not _SECRET_CHARS.match(secret):
            raise ValueError("gate secret must be 16-256 URL-safe characters")
        self.secret = secret
        self.expires_at = expires_at
        self.public_url = public_url
        nonce = secrets.token_bytes(16)
        self.cookie = (
            hmac.new(secret.encode(), b"nbboard-cookie-v2\0" + nonce, hashlib.sha256).hexdigest() if secret else ""
        )

    def expired(self, now: float | None = None) -> bool:
        return bool(self.expires_at) and (time.time() if now is None else now) >= self.expires_at

    def check(self, target: str, headers: Sequence[tuple[str, str]]) -> Verdict:
        """The verdict for a request to ``target`` (origin-form) with ``headers``."""
        if self.secret is None:
            return OK
        if self.expired():
            return Verdict("wrong", why="this tunnel has expired")
        path, _, query = target.partition("?")
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:  # too many fields: counted before anything is parsed
            pairs = []
        offered = [v for k, v in pairs if k == TOKEN_PARAM]
        if offered:
            if len(offered) == 1 and _same(offered[0], self.secret):
                return Verdict("login", location=safe_location(path, [(k, v) for k, v in pairs if k != TOKEN_PARAM]))
            return Verdict("wrong", why="wrong token")
        auth = _header(headers, "authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and _same(value.strip(), self.secret):
                return OK
            return Verdict("wrong", why="wrong credentials")
        offered = _cookies(headers)
        if offered:
            # Any valid one will do: a tossed cookie (see MAX_COOKIES) must not lock the owner out.
            ok = False
            for value in offered:
                ok |= _same(value, self.cookie)  # no early exit: every offered value costs the same
            return OK if ok else Verdict("wrong", why="wrong or expired cookie")
        return Verdict("deny", why="no credentials")

    def set_cookie(self, forwarded_proto: str | None = None, now: float | None = None) -> str:
        """The Set-Cookie value for a login: HttpOnly, expiring with the tunnel, Secure over https.

        Over https the cookie is named ``__Host-nbboard_auth`` (Secure, Path=/ and no Domain, as
        that prefix requires). The public URL decides https (ngrok's and localtunnel's are https; the gate itself only
        sees plain http from the provider's client). ``SameSite=None; Secure`` lets the board
        work inside a notebook's iframe; browsers accept it only over https.
        """
        secure = self.public_url.lower().startswith("https://") or (forwarded_proto or "").lower() == "https"
        # __Host-: the browser refuses to let any other host (a sibling *.loca.lt tunnel) set or shadow it.
        attrs = [f"{HOST_COOKIE if secure else COOKIE}={self.cookie}", "Path=/", "HttpOnly"]
        if self.expires_at:
            left = int(self.expires_at - (time.time() if now is None else now))
            attrs.append(f"Max-Age={max(left, 1)}")
        attrs += ["Secure", "SameSite=None"] if secure else ["SameSite=Lax"]
        return "; ".join(attrs)

    def strip(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """``headers`` without the gate's own credentials, which TensorBoard must never see."""
        if self.secret is None:
            return list(headers)
        out = []
        for name, value in headers:
            low = name.lower()
            if low == "authorization":
                continue
            if low == "cookie":
                kept = [p.strip() for p in value.split(";") if p.strip() and p.strip().partition("=")[0] not in _NAMES]
                if not kept:
                    continue
                value = "; ".join(kept)
            out.append((name, value))
        return out


def safe_location(path: str, query: Sequence[tuple[str, str]] = ()) -> str:
    """A redirect target on this origin: one leading slash, no backslash, nothing a browser would unescape
    into another host or a header.

    Browsers read ``\\`` as ``/`` and drop tabs and newlines inside URLs, so
    ``/\\evil.example`` or ``/<TAB>/evil.example`` would become ``//evil.example``: another
    origin. Every character outside a conservative set is percent-encoded, dot
    segments are resolved (``%2e`` included, as browsers do) and leading slashes
    collapse to one, so the result is always a path on this host.
    """
    path = urllib.parse.quote(path.replace("\\", "/"), safe=_PATH_SAFE)
    segments: list[str] = []
    for segment in path.split("/"):
        dots = segment.lower().replace("%2e", ".")
        if dots == "..":
            if segments:
                segments.pop()
        elif dots != ".":
            segments.append(segment)
    path = "/" + "/".join(segments).lstrip("/")
    return path + ("?" + urllib.parse.urlencode(list(query)) if query else "")


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), expected.encode())


_NAMES = (COOKIE, HOST_COOKIE)


def _cookies(headers: Sequence[tuple[str, str]]) -> list[str]:
    """The values to try: every ``__Host-`` one (no other host can set those), then the plain ones, each kind
    bounded by MAX_COOKIES, in the order the browser sent them."""
    hosts: list[str] = []
    plain: list[str] = []
    for name, value in headers:
        if name.lower() != "cookie":
            continue
        for part in value.split(";"):
            key, _, val = part.strip().partition("=")
            if key == HOST_COOKIE:
                hosts.append(val)
            elif key == COOKIE:
                plain.append(val)
    return hosts[:MAX_COOKIES] + plain[:MAX_COOKIES]


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None
