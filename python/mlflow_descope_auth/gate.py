"""The request gate: one framework-neutral decision per request.

An adapter (the ASGI middleware or the Flask hook, both in `middleware.py`)
turns its request into a `RequestInfo` and asks `Gate.evaluate` for an
`Outcome`: either "allow, as this identity, and set these cookies", or a
finished response (302, 401, 403, 429 or 503) to send instead. Contract §3
(credentials) and §4 (responses) live here; verifying tokens, calling Descope
and deciding levels happen in the Rust core.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from mlflow_descope_auth import cookies
from mlflow_descope_auth._core import WouldBlock
from mlflow_descope_auth.cookies import REFRESH_COOKIE, SESSION_COOKIE, CookiePolicy
from mlflow_descope_auth.exceptions import (
    AuthenticationError,
    DescopeRateLimitedError,
    DescopeUnavailableError,
)
from mlflow_descope_auth.identity import Identity

if TYPE_CHECKING:
    from mlflow_descope_auth._core import Core, RouteTable

logger = logging.getLogger(__name__)

#: (requirement, route name) as `RouteTable.lookup` returns it: looked up once
#: per request, passed along as is (no object built for it).
Route = tuple[str, str]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Route requirements above reading: a cookie request for one of these must come
# from this site whatever its method (a few GET routes start work, e.g. the
# assistant's stream and the gateway proxy).
ABOVE_READ = frozenset({"EDIT", "MANAGE"})
# Paths (below the static prefix) that only programs call: never answered with
# a redirect to the login page, always with JSON.
API_ROOTS = ("api/", "ajax-api/", "graphql", "gateway/", "v1/")
GATEWAY_ROOT = "gateway/"
MLFLOW_AUTHORIZATION = "x-mlflow-authorization"
DEFAULT_RETRY_AFTER = 5


class CredentialFormatError(Exception):
    """An `Authorization` header this product cannot read (scheme, encoding, shape)."""


@dataclass(frozen=True)
class RequestInfo:
    """What the gate needs to know about one request, from either framework."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    scheme: str
    cookies: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        method: str,
        path: str,
        query_string: str,
        headers: Iterable[tuple[str, str]],
        scheme: str,
    ) -> RequestInfo:
        """Normalise header names to lower case and parse the cookies once.

        The method is kept as sent: `Gate.evaluate` refuses one that is not
        upper case rather than guess which route the server will give it.
        Repeated headers are joined as HTTP allows (`, `; `; ` for `Cookie`).
        The path is kept as the server routes it (docs/routes.md): Starlette
        sees `//api/...` as it is while Werkzeug collapses the leading
        slashes, and the route table tells the two apart. Collapsing here
        would let `//<native route>` be judged by a native route that Starlette
        never gives it, instead of the Flask rule that serves it.
        """
        joined: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            if key in joined:
                separator = "; " if key == "cookie" else ", "
                joined[key] = f"{joined[key]}{separator}{value}"
            else:
                joined[key] = value
        return cls(
            method=method,
            path=path if path.startswith("/") else "/" + path,
            query_string=query_string,
            headers=joined,
            scheme=scheme,
            cookies=cookies.parse_cookie_header(joined.get("cookie", "")),
        )


@dataclass(frozen=True)
class Outcome:
    """The gate's answer: allowed (`status` is None) or a response to send instead."""

    status: int | None = None
    identity: Identity | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    set_cookies: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.status is None


@dataclass(frozen=True)
class GateSettings:
    """The parts of the configuration the gate reads on every request."""

    static_prefix: str = ""
    cookie_secure: str = "auto"
    trusted_origins: frozenset[str] = frozenset()
    session_cookie: str = SESSION_COOKIE
    refresh_cookie: str = REFRESH_COOKIE

    @property
    def token_cookies(self) -> tuple[str, str]:
        return (self.session_cookie, self.refresh_cookie)


@dataclass(frozen=True)
class Credential:
    """A credential from a header; the value is a secret and never printed."""

    value: str = field(repr=False)
    source: str


class Gate:
    """Evaluates requests against the core's verification and route decisions."""

    def __init__(self, core: Core, routes: RouteTable, settings: GateSettings) -> None:
        self._core = core
        self._routes = routes
        self._settings = settings

    @property
    def settings(self) -> GateSettings:
        return self._settings

    def evaluate(self, info: RequestInfo, *, blocking: bool = True) -> Outcome:
        """Decide one request.

        With `blocking=False` nothing here waits on Descope: when an answer
        needs the network (key set, access-key exchange, refresh), `WouldBlock`
        propagates and the caller repeats the call with `blocking=True` off the
        event loop.
        """
        if info.method != info.method.upper():
            # Starlette matches methods case-sensitively and Werkzeug
            # upper-cases them, so `get` may reach a different route than the
            # table would pick; gunicorn refuses such a request line already.
            return bad_request("HTTP method must be upper case")
        if is_cors_preflight(info):
            return Outcome()
        route = self._routes.lookup(info.method, info.path)
        if route[0] == "PUBLIC":
            return Outcome()
        try:
            return self._admit(info, route, blocking=blocking)
        except DescopeRateLimitedError as exc:
            return unavailable(429, exc.retry_after)
        except DescopeUnavailableError as exc:
            logger.warning(
                "Descope unavailable while checking %s %s: %s", info.method, info.path, exc
            )
            return unavailable(503, exc.retry_after)

    def _admit(self, info: RequestInfo, route: Route, *, blocking: bool) -> Outcome:
        try:
            credential = header_credential(info, self._settings.static_prefix)
        except CredentialFormatError as exc:
            return self._unauthenticated(info, str(exc))
        if credential is not None:
            return self._admit_header(info, route, credential, blocking=blocking)

        session_token = cookies.read_token(info.cookies, self._settings.session_cookie)
        refresh_token = cookies.read_token(info.cookies, self._settings.refresh_cookie)
        if session_token is None and refresh_token is None:
            reason = "authentication required"
            if "authorization" in info.headers:
                reason += "; on /gateway/* send the MLflow credential in X-MLflow-Authorization"
            return self._unauthenticated(info, reason)
        if needs_same_site(info.method, route[0]) and is_cross_site(
            info, self._settings.trusted_origins
        ):
            return forbidden("cross-site request refused")
        return self._admit_cookies(info, route, session_token, refresh_token, blocking=blocking)

    def _admit_header(
        self, info: RequestInfo, route: Route, credential: Credential, *, blocking: bool
    ) -> Outcome:
        try:
            session = self._core.authenticate(credential.value, blocking=blocking)
        except AuthenticationError as exc:
            logger.debug("%s credential refused: %s", credential.source, exc)
            return self._unauthenticated(info, str(exc))
        return self._authorize(route, Identity(session, credential.source), ())

    def _admit_cookies(
        self,
        info: RequestInfo,
        route: Route,
        session_token: str | None,
        refresh_token: str | None,
        *,
        blocking: bool,
    ) -> Outcome:
        if session_token is not None:
            try:
                session = self._core.validate_session(session_token, blocking=blocking)
            except AuthenticationError as exc:
                logger.debug("session cookie refused: %s", exc)
                if refresh_token is None:
                    return self._unauthenticated(info, str(exc), clear_cookies=True)
            else:
                return self._authorize(route, Identity(session, "cookie"), ())
        if refresh_token is None:
            return self._unauthenticated(info, "authentication required", clear_cookies=True)
        if not blocking:
            raise WouldBlock("refreshing the session needs Descope")
        return self._refresh(info, route, refresh_token)

    def _refresh(self, info: RequestInfo, route: Route, refresh_token: str) -> Outcome:
        try:
            result = self._core.refresh(refresh_token)
        except AuthenticationError as exc:
            logger.debug("refresh cookie refused: %s", exc)
            return self._unauthenticated(info, str(exc), clear_cookies=True)
        policy = cookie_policy(self._settings, info)
        set_cookies = cookies.set_token(
            self._settings.session_cookie,
            result.session_jwt,
            max_age=cookies.max_age_until(result.session.expires_at),
            policy=policy,
            present=cookies.present_names(info.cookies, self._settings.session_cookie),
        )
        if result.refresh_jwt is not None:
            # The core always reports the rotated token's `exp`; without it,
            # the session's own is the safe (shorter) lifetime.
            expires_at = result.refresh_expires_at or result.session.expires_at
            set_cookies += cookies.set_token(
                self._settings.refresh_cookie,
                result.refresh_jwt,
                max_age=cookies.max_age_until(expires_at),
                policy=policy,
                present=cookies.present_names(info.cookies, self._settings.refresh_cookie),
            )
        return self._authorize(route, Identity(result.session, "refresh"), tuple(set_cookies))

    @staticmethod
    def _authorize(route: Route, identity: Identity, set_cookies: tuple[str, ...]) -> Outcome:
        """Allow or refuse by the requirement `evaluate` looked up (the core's
        `Core.authorize` would look the route up a second time)."""
        requirement, name = route
        if not identity.session.meets(requirement):
            message = f"{name} needs {requirement}; "
            message += f"{identity.username} has {identity.session.level}"
            return forbidden(message, set_cookies)
        return Outcome(identity=identity, set_cookies=set_cookies)

    def _unauthenticated(
        self, info: RequestInfo, reason: str, *, clear_cookies: bool = False
    ) -> Outcome:
        """302 to the login page for a browser page load, else 401 JSON.

        Rejected cookies are cleared only on the redirect: there the browser
        would otherwise loop, while a 401 to a background request may race a
        concurrent response that has just set fresh cookies.
        """
        if not is_browser_navigation(info, self._settings.static_prefix):
            return unauthenticated(reason)
        clears: list[str] = []
        if clear_cookies:
            policy = cookie_policy(self._settings, info)
            for name in self._settings.token_cookies:
                present = cookies.present_names(info.cookies, name)
                if present:
                    clears += cookies.clear_token(name, policy=policy, present=present)
        location = login_location(self._settings.static_prefix, info.path, info.query_string)
        headers = (("Location", location), ("Cache-Control", "no-store"))
        return Outcome(status=302, headers=headers, set_cookies=tuple(clears))


def cookie_policy(settings: GateSettings, info: RequestInfo) -> CookiePolicy:
    """Path and `Secure` flag for the session cookies set on the response to `info`."""
    secure = cookies.secure_for(
        settings.cookie_secure, info.scheme, info.headers.get("x-forwarded-proto")
    )
    return CookiePolicy(path=cookies.cookie_path(settings.static_prefix), secure=secure)


def header_credential(info: RequestInfo, static_prefix: str) -> Credential | None:
    """The credential from the headers, in contract §3 order, or None when there is none.

    On `/gateway/*` a present `X-MLflow-Authorization` is the only credential
    looked at: `Authorization` there belongs to the LLM provider.
    """
    on_gateway = relative_path(info.path, static_prefix).startswith(GATEWAY_ROOT)
    if on_gateway:
        value = info.headers.get(MLFLOW_AUTHORIZATION)
        if value is not None:
            return parse_authorization(value, source="x-mlflow-authorization")
    value = info.headers.get("authorization")
    if value is None:
        return None
    credential = parse_authorization(value)
    if on_gateway and credential.source == "bearer" and is_provider_key(credential.value):
        # An LLM provider's key, on its way upstream: not ours, and never sent
        # to Descope as if it were an access key. Cookies may still sign in.
        logger.debug("gateway Authorization carries a provider key; not an MLflow credential")
        return None
    return credential


# Prefixes of LLM provider API keys (OpenAI and Anthropic `sk-`, Google `AIza`,
# Groq, xAI, Hugging Face, Perplexity, Replicate, NVIDIA). Descope access keys
# never start so; a miss only means the key is refused by Descope, as before.
PROVIDER_KEY_PREFIXES = ("sk-", "AIza", "gsk_", "xai-", "hf_", "pplx-", "r8_", "nvapi-")


def is_provider_key(token: str) -> bool:
    """True for a bearer value shaped like an LLM provider's API key (never a JWT)."""
    return "." not in token and token.startswith(PROVIDER_KEY_PREFIXES)


def parse_authorization(value: str, *, source: str | None = None) -> Credential:
    """The token in `Bearer <token>` or the password in `Basic base64(user:password)`."""
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        if len(rest.split()) != 1:
            raise CredentialFormatError("malformed Bearer credential")
        return Credential(rest, source or "bearer")
    if scheme == "basic":
        return Credential(_basic_password(rest), source or "basic")
    raise CredentialFormatError("unsupported authorization scheme; use Bearer or Basic")


def _basic_password(encoded: str) -> str:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CredentialFormatError("malformed Basic credential") from None
    _user, colon, password = decoded.partition(":")
    if not colon or not password:
        raise CredentialFormatError("Basic credential has no password")
    return password


def relative_path(path: str, static_prefix: str) -> str:
    """`path` below the static prefix, without its leading slash (leading slashes collapsed)."""
    path = "/" + path.lstrip("/")
    prefix = static_prefix.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return path.lstrip("/")


def is_cors_preflight(info: RequestInfo) -> bool:
    return info.method == "OPTIONS" and "access-control-request-method" in info.headers


def is_browser_navigation(info: RequestInfo, static_prefix: str) -> bool:
    """A page load by a browser (answered with a redirect), as opposed to an API call.

    MLflow serves its artifact routes without the static prefix, so both the
    prefixed and the bare form of an API path count as API.
    """
    if info.method not in ("GET", "HEAD"):
        return False
    if "text/html" not in info.headers.get("accept", "").lower():
        return False
    below_prefix = relative_path(info.path, static_prefix)
    bare = info.path.lstrip("/")
    return not (below_prefix.startswith(API_ROOTS) or bare.startswith(API_ROOTS))


def own_origins(info: RequestInfo) -> set[str]:
    """The origins this request's own page could have: its scheme(s) and host(s)."""
    schemes = {info.scheme.lower()}
    forwarded_proto = info.headers.get("x-forwarded-proto")
    if forwarded_proto:
        schemes.add(forwarded_proto.split(",")[0].strip().lower())
    hosts = {info.headers.get("host", "").lower()}
    forwarded_host = info.headers.get("x-forwarded-host")
    if forwarded_host:
        hosts.add(forwarded_host.split(",")[0].strip().lower())
    return {f"{scheme}://{host}" for scheme in schemes for host in hosts if host}


def needs_same_site(method: str, requirement: str) -> bool:
    """Whether a cookie-authenticated request must not come from another site
    (contract §4): every unsafe method, and any method on a route above READ.
    SameSite=Lax cookies ride along on a top-level cross-site GET."""
    return method in UNSAFE_METHODS or requirement in ABOVE_READ


def is_cross_site(info: RequestInfo, trusted_origins: frozenset[str] = frozenset()) -> bool:
    """Whether a browser sent this request from another site (contract §4 CSRF rule).

    A browser's `Sec-Fetch-Site: cross-site` or `same-site` is final: only an
    operator-trusted `Origin` passes it. That header is the browser's own
    judgement, which no page can forge, while the `X-Forwarded-*` headers that
    `own_origins` reads are not: MLflow's CORS grants a credentialed preflight
    with any request header to every localhost origin (and to the operator's
    patterns), so such a page could send `X-Forwarded-Host: <its own host>`
    and pass an `Origin` comparison. Otherwise `Origin` decides when present
    (`null` included). Neither header means a non-browser client.
    """
    origin = info.headers.get("origin")
    normalized = origin.strip().rstrip("/").lower() if origin is not None else None
    fetch_site = info.headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return normalized is None or normalized not in trusted_origins
    if normalized is not None:
        return normalized not in own_origins(info) and normalized not in trusted_origins
    return False


def login_location(static_prefix: str, path: str, query_string: str) -> str:
    """`<prefix>/auth/login?next=<path and query>`, the target quoted whole."""
    target = f"{path}?{query_string}" if query_string else path
    return f"{static_prefix.rstrip('/')}/auth/login?next={quote(target, safe='')}"


def safe_next(candidate: str | None, default: str) -> str:
    """`candidate` when it is a same-origin relative path, else `default` (contract §6).

    Accepted: one leading `/`, no `//` and no `\\` in the path, no control
    characters and no scheme, checked on the value as given and once
    percent-decoded (a browser may decode `%09` or `%5C` before resolving).
    """
    if not candidate:
        return default
    for form in (candidate, unquote(candidate)):
        if not _is_local_path(form):
            return default
    return candidate


def _is_local_path(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//"):
        return False
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return False
    path = value.split("?", 1)[0].split("#", 1)[0]
    if "//" in path:
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def json_body(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def unauthenticated(message: str) -> Outcome:
    body = json_body({"error_code": "UNAUTHENTICATED", "message": message})
    headers = (
        ("Content-Type", "application/json"),
        ("WWW-Authenticate", 'Bearer realm="mlflow"'),
        ("Cache-Control", "no-store"),
    )
    return Outcome(status=401, headers=headers, body=body)


def bad_request(message: str) -> Outcome:
    body = json_body({"error_code": "BAD_REQUEST", "message": message})
    headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
    return Outcome(status=400, headers=headers, body=body)


def forbidden(message: str, set_cookies: tuple[str, ...] = ()) -> Outcome:
    body = json_body({"error_code": "PERMISSION_DENIED", "message": message})
    headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
    return Outcome(status=403, headers=headers, body=body, set_cookies=set_cookies)


def unavailable(status: int, retry_after: float | None) -> Outcome:
    if status == 429:
        error_code, message = "REQUEST_LIMIT_EXCEEDED", "Descope is rate limiting this server"
    else:
        error_code, message = "TEMPORARILY_UNAVAILABLE", "Descope is unavailable"
    seconds = max(1, int(retry_after)) if retry_after else DEFAULT_RETRY_AFTER
    body = json_body({"error_code": error_code, "message": f"{message}; retry later"})
    headers = (
        ("Content-Type", "application/json"),
        ("Retry-After", str(seconds)),
        ("Cache-Control", "no-store"),
    )
    return Outcome(status=status, headers=headers, body=body)
