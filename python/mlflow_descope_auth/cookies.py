"""The session cookies: reading them from a request and planning `Set-Cookie` values.

The session token rides in `DS` and the refresh token in `DSR`, both set only by
the server (HttpOnly), `SameSite=Lax`, on the path `<static prefix>/`. A token
too long for one cookie (browsers drop cookies over 4096 bytes) is split across
numbered chunks `DS.0`, `DS.1`, ... and joined again on read. Nothing here
knows about a web framework: values go in and header strings come out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SESSION_COOKIE = "DS"
REFRESH_COOKIE = "DSR"

# Bytes of token per cookie; the name and attributes of one cookie stay well
# under the 4096-byte limit browsers apply to the whole `Set-Cookie` line.
CHUNK_SIZE = 3800
# Chunks read per token at most: 8 * 3800 bytes is far beyond any token the
# core accepts, so a request cannot make us join an unbounded list.
MAX_CHUNKS = 8

_COOKIE_VALUE = re.compile(r"[A-Za-z0-9._~+/=-]+")
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


@dataclass(frozen=True)
class CookiePolicy:
    """Where and how the session cookies are set for one request."""

    path: str
    secure: bool


def cookie_path(static_prefix: str) -> str:
    """`<prefix>/`: the path every session cookie is set on and cleared from."""
    return static_prefix.rstrip("/") + "/"


def secure_for(mode: str, scheme: str, forwarded_proto: str | None) -> bool:
    """Whether cookies get `Secure`: `true`/`false`, or `auto` = the request came over https.

    `auto` honours `X-Forwarded-Proto` (its first value) from a TLS-terminating
    proxy. A client that sends the header itself only makes its own cookies
    stricter.
    """
    if mode == "true":
        return True
    if mode == "false":
        return False
    if forwarded_proto:
        return forwarded_proto.split(",")[0].strip().lower() == "https"
    return scheme.lower() in ("https", "wss")


def parse_cookie_header(header: str) -> dict[str, str]:
    """Cookie name -> value from a `Cookie` header; the first of duplicate names wins.

    Browsers send the cookie with the most specific path first, which is ours
    when a stale copy lingers on a shorter path.
    """
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies[name] = value
    return cookies


def chunk_name(name: str, index: int) -> str:
    return f"{name}.{index}"


def read_token(cookies: Mapping[str, str], name: str) -> str | None:
    """The token stored under `name`, whole or reassembled from its chunks."""
    whole = cookies.get(name)
    if whole:
        return whole
    parts = []
    for index in range(MAX_CHUNKS):
        part = cookies.get(chunk_name(name, index))
        if not part:
            break
        parts.append(part)
    return "".join(parts) or None


def present_names(cookies: Mapping[str, str], name: str) -> list[str]:
    """The cookies of token `name` (whole and chunks) that the browser sent."""
    candidates = [name, *(chunk_name(name, i) for i in range(MAX_CHUNKS))]
    return [candidate for candidate in candidates if candidate in cookies]


def max_age_until(expires_at: int, now: float | None = None) -> int:
    """Seconds from now until `expires_at` (unix seconds), never negative."""
    current = time.time() if now is None else now
    return max(0, int(expires_at - current))


def set_token(
    name: str,
    token: str,
    *,
    max_age: int,
    policy: CookiePolicy,
    present: Iterable[str] = (),
) -> list[str]:
    """`Set-Cookie` values storing `token` under `name`, clearing stale chunks.

    `present` lists the cookies of this token the browser sent, so a token
    that shrank back into one cookie (or grew into chunks) leaves no stale part
    behind to be joined on the next request.
    """
    if not _COOKIE_VALUE.fullmatch(token):
        raise ValueError(f"{name} value has characters a cookie cannot carry")
    if len(token) <= CHUNK_SIZE:
        written = {name: token}
    else:
        pieces = [token[i : i + CHUNK_SIZE] for i in range(0, len(token), CHUNK_SIZE)]
        if len(pieces) > MAX_CHUNKS:
            raise ValueError(f"{name} is too large for {MAX_CHUNKS} cookies")
        written = {chunk_name(name, i): piece for i, piece in enumerate(pieces)}
    headers = [_set_cookie(key, value, max_age, policy) for key, value in written.items()]
    headers += [clear_cookie(stale, policy) for stale in present if stale not in written]
    return headers


def clear_token(name: str, *, policy: CookiePolicy, present: Iterable[str] = ()) -> list[str]:
    """`Set-Cookie` values removing token `name`: the whole cookie and every chunk sent."""
    names = dict.fromkeys([name, *present])
    return [clear_cookie(each, policy) for each in names]


def clear_cookie(name: str, policy: CookiePolicy) -> str:
    return _set_cookie(name, "", 0, policy) + f"; Expires={_EXPIRED}"


def _set_cookie(name: str, value: str, max_age: int, policy: CookiePolicy) -> str:
    attributes = [f"{name}={value}", f"Path={policy.path}", f"Max-Age={max_age}"]
    attributes += ["HttpOnly", "SameSite=Lax"]
    if policy.secure:
        attributes.append("Secure")
    return "; ".join(attributes)
