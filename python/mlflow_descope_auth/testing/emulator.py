"""A local stand-in for Descope's HTTP API, for tests and offline demos.

Serves on loopback only: the key set, refresh (optionally rotating the
refresh token), logout, logout-all, me, access-key exchange and tenant
select, plus the emulator's own endpoints behind the stand-in web
component. Tokens are real RS256 JWTs with Descope's claim layout. See
docs/emulator.md for the contract.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import importlib.resources
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Callable, NamedTuple, Optional, Union

import jwt

from mlflow_descope_auth.testing.faults import Fault, FaultBody, FaultTable
from mlflow_descope_auth.testing.server import LoopbackServer, Reply, Request, loopback_address
from mlflow_descope_auth.testing.tokens import (
    KeyRing,
    SigningKey,
    TokenRefused,
    encode_jwt,
    new_id,
    verify_jwt,
)

logger = logging.getLogger(__name__)

ENDPOINTS = (
    "keys",
    "refresh",
    "logout",
    "logoutall",
    "me",
    "exchange",
    "tenant_select",
    "web_component",
    "users",
    "flow_login",
    "health",
)

_EXACT_ROUTES: dict[str, tuple[str, str]] = {
    "/v1/auth/refresh": ("POST", "refresh"),
    "/v1/auth/logout": ("POST", "logout"),
    "/v1/auth/logoutall": ("POST", "logoutall"),
    "/v1/auth/me": ("GET", "me"),
    "/v1/auth/accesskey/exchange": ("POST", "exchange"),
    "/v1/auth/tenant/select": ("POST", "tenant_select"),
    "/web-component/index.js": ("GET", "web_component"),
    "/emulator/users": ("GET", "users"),
    "/emulator/health": ("GET", "health"),
}
_KEYS_PATH = re.compile(r"/v2/keys/([^/]+)")
_FLOW_LOGIN_PATH = re.compile(r"/emulator/flow/([^/]+)/login")
_METHODS = {
    **{name: method for method, name in _EXACT_ROUTES.values()},
    "keys": "GET",
    "flow_login": "POST",
}

# Claims the emulator sets itself; a user's custom claims cannot replace them
# (mint_session's extra_claims can, for hostile-token tests).
_RESERVED_CLAIMS = frozenset(
    {"sub", "iss", "aud", "iat", "exp", "nbf", "drn", "amr", "roles", "permissions"}
    | {"tenants", "dct", "dsub", "jti", "email", "name"}
)

DEFAULT_SESSION_TTL = 600
DEFAULT_REFRESH_TTL = 30 * 24 * 3600
DEFAULT_MAX_HANG = 30.0
_STOP_JOIN_SECONDS = 5.0


class ErrorKind(NamedTuple):
    status: int
    code: str
    description: str


# Descope-shaped errors; the codes are the emulator's own, stable choices.
ERRORS: dict[str, ErrorKind] = {
    "bad_request": ErrorKind(400, "E011001", "Malformed request"),
    "missing_argument": ErrorKind(400, "E011002", "Missing required argument"),
    "unknown_project": ErrorKind(400, "E011003", "Unknown project"),
    "unauthorized": ErrorKind(401, "E061101", "Missing or malformed Authorization header"),
    "project_mismatch": ErrorKind(401, "E061102", "Project does not match"),
    "refresh_invalid": ErrorKind(401, "E061301", "Invalid refresh token"),
    "refresh_revoked": ErrorKind(401, "E061302", "Refresh token revoked"),
    "user_not_found": ErrorKind(401, "E062108", "User not found"),
    "unknown_login_id": ErrorKind(400, "E062108", "User not found"),
    "access_key_invalid": ErrorKind(401, "E062201", "Invalid access key"),
    "access_key_expired": ErrorKind(401, "E062202", "Access key expired"),
    "access_key_revoked": ErrorKind(401, "E062203", "Access key revoked"),
    "tenant_not_member": ErrorKind(403, "E063101", "User is not a member of the tenant"),
    "not_found": ErrorKind(404, "E010404", "Not found"),
    "method_not_allowed": ErrorKind(405, "E010405", "Method not allowed"),
}
RATE_LIMIT_CODE = "E130429"

DEFAULT_FLOW_ERROR = {
    "errorCode": "E062109",
    "errorDescription": "Sign-in failed",
    "errorMessage": "The emulator's failing sign-in button was pressed",
}

DEMO_USERS: tuple[dict[str, Any], ...] = (
    {"login_id": "viewer", "name": "Vera Viewer", "roles": ("mlflow-viewer",)},
    {"login_id": "editor", "name": "Eddie Editor", "roles": ("mlflow-editor",)},
    {"login_id": "admin", "name": "Ada Admin", "roles": ("admin",)},
    {"login_id": "nobody", "name": "Noor Nobody", "roles": ()},
)

UserRef = Union[str, "User"]


@dataclass(frozen=True)
class User:
    """A user of the emulated project."""

    login_id: str
    user_id: str
    email: Optional[str] = None
    name: Optional[str] = None
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    tenants: Optional[Mapping[str, Any]] = None
    custom_claims: Mapping[str, Any] = field(default_factory=dict)
    created_at: int = 0


@dataclass
class _RefreshRecord:
    user_id: str
    expires_at: int
    tenant: Optional[str]
    state: str = "valid"  # "valid", "revoked" (logout) or "rotated" (replaced)


@dataclass
class _AccessKey:
    key_id: str
    name: str
    secret_sha256: bytes = field(repr=False)
    roles: tuple[str, ...]
    permissions: tuple[str, ...]
    tenants: Optional[Mapping[str, Any]]
    expires_at: Optional[int]
    revoked: bool = False


class _Refusal(Exception):
    """An error answer: which kind, and a message naming the reason (never a secret)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def error_body(code: str, description: str, message: str) -> dict[str, str]:
    return {"errorCode": code, "errorDescription": description, "errorMessage": message}


def _now() -> int:
    return int(time.time())


def _strings(value: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be a list of strings, not a single string")
    return tuple(value)


def _grant_claims(
    roles: Sequence[str], permissions: Sequence[str], tenants: Optional[Mapping[str, Any]]
) -> dict[str, Any]:
    claims: dict[str, Any] = {"roles": list(roles), "permissions": list(permissions)}
    if tenants is not None:
        claims["tenants"] = copy.deepcopy(dict(tenants))
    return claims


def _web_component_source() -> bytes:
    resource = importlib.resources.files("mlflow_descope_auth.testing") / "web_component.js"
    return resource.read_bytes()


class DescopeEmulator:
    """A Descope project on loopback. Use as a context manager, or `start()`/`stop()`.

    Thread-safe: the Python API may be called while requests are served.
    """

    def __init__(
        self,
        project_id: Optional[str] = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rotate_refresh_tokens: bool = False,
        refresh_in_body: bool = True,
        refresh_via_cookie: bool = False,
        session_ttl: int = DEFAULT_SESSION_TTL,
        refresh_ttl: int = DEFAULT_REFRESH_TTL,
        issuer_style: str = "url",
        max_hang: float = DEFAULT_MAX_HANG,
    ) -> None:
        if issuer_style not in ("url", "project"):
            raise ValueError("issuer_style must be 'url' or 'project'")
        project_id = project_id if project_id is not None else new_id("P2", 26)
        if not project_id or re.search(r"[\s:/]", project_id):
            raise ValueError("project_id must be non-empty, without spaces, ':' or '/'")

        self._project_id = project_id
        self._address = loopback_address(host)
        self._requested_port = port
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.refresh_in_body = refresh_in_body
        self.refresh_via_cookie = refresh_via_cookie
        self.session_ttl = session_ttl
        self.refresh_ttl = refresh_ttl
        self.issuer_style = issuer_style
        self._max_hang = max_hang

        self._lock = threading.RLock()
        self._keys = KeyRing()
        self._faults = FaultTable()
        self._counters: Counter[str] = Counter()
        self._users: dict[str, User] = {}
        self._users_by_id: dict[str, User] = {}
        self._seen: set[str] = set()
        self._refresh_tokens: dict[str, _RefreshRecord] = {}
        self._access_keys: dict[str, _AccessKey] = {}
        self._flow_error: dict[str, str] = dict(DEFAULT_FLOW_ERROR)
        self._server: Optional[LoopbackServer] = None
        self._thread: Optional[threading.Thread] = None
        self._base_url: Optional[str] = None
        self._stopped = False

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> DescopeEmulator:
        """Bind the loopback port and serve in a background thread."""
        with self._lock:
            if self._server is not None or self._stopped:
                raise RuntimeError("a DescopeEmulator can be started once")
            server = LoopbackServer(self._address, self._requested_port, self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="descope-emulator",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            host = f"[{self._address}]" if ":" in self._address else self._address
            self._base_url = f"http://{host}:{server.server_port}"
        logger.info("Descope emulator for project %s at %s", self._project_id, self._base_url)
        return self

    def stop(self) -> None:
        """Stop serving: release hangs, close the socket and every connection, join threads."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread, self._stopped = None, None, True
        if server is None or thread is None:
            return
        self._faults.release_all()
        server.shutdown()
        server.server_close()
        server.close_connections(_STOP_JOIN_SECONDS)
        thread.join(_STOP_JOIN_SECONDS)
        logger.info("Descope emulator at %s stopped", self._base_url)

    def __enter__(self) -> DescopeEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the emulator has not been started")
        return self._base_url

    @property
    def bound_address(self) -> tuple[str, int]:
        """The (host, port) of the listening socket, as the OS reports it."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running")
        host, port = server.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def project_id(self) -> str:
        return self._project_id

    @property
    def issuer(self) -> str:
        """The `iss` claim the emulator puts in tokens (see `issuer_style`)."""
        if self.issuer_style == "project":
            return self._project_id
        return f"{descope_api_url(self._project_id)}/{self._project_id}"

    @property
    def web_component_url(self) -> str:
        return f"{self.base_url}/web-component/index.js"

    @property
    def max_hang(self) -> float:
        return self._max_hang

    def environment(self) -> dict[str, str]:
        """The plugin's environment variables pointing at this emulator."""
        return {
            "DESCOPE_PROJECT_ID": self._project_id,
            "DESCOPE_BASE_URL": self.base_url,
            "DESCOPE_WEB_COMPONENT_URL": self.web_component_url,
        }

    # ---- users -----------------------------------------------------------

    def create_user(
        self,
        login_id: str,
        *,
        user_id: Optional[str] = None,
        email: Optional[str] = None,
        name: Optional[str] = None,
        roles: Iterable[str] = (),
        permissions: Iterable[str] = (),
        tenants: Optional[Mapping[str, Any]] = None,
        custom_claims: Optional[Mapping[str, Any]] = None,
    ) -> User:
        user = User(
            login_id=login_id,
            user_id=user_id if user_id is not None else new_id("U2"),
            email=email,
            name=name,
            roles=_strings(roles, "roles"),
            permissions=_strings(permissions, "permissions"),
            tenants=copy.deepcopy(dict(tenants)) if tenants is not None else None,
            custom_claims=copy.deepcopy(dict(custom_claims or {})),
            created_at=_now(),
        )
        with self._lock:
            if login_id in self._users or user.user_id in self._users_by_id:
                raise ValueError("a user with this login id or user id already exists")
            self._users[login_id] = user
            self._users_by_id[user.user_id] = user
        return user

    def update_user(self, user: UserRef, **changes: Any) -> User:
        """Change a user's grants or details; the next refresh reflects them."""
        for name in ("roles", "permissions"):
            if name in changes:
                changes[name] = _strings(changes[name], name)
        if "login_id" in changes or "user_id" in changes:
            raise ValueError("login_id and user_id cannot change")
        for name in ("tenants", "custom_claims"):
            if changes.get(name) is not None:
                changes[name] = copy.deepcopy(dict(changes[name]))
        with self._lock:
            updated = replace(self.get_user(user), **changes)
            self._users[updated.login_id] = updated
            self._users_by_id[updated.user_id] = updated
        return updated

    def delete_user(self, user: UserRef) -> None:
        """Remove a user; their refresh tokens stop working."""
        with self._lock:
            found = self.get_user(user)
            del self._users[found.login_id]
            del self._users_by_id[found.user_id]

    def get_user(self, user: UserRef) -> User:
        """A user by login id, user id, or a (possibly stale) `User`; KeyError if unknown."""
        key = user.user_id if isinstance(user, User) else user
        with self._lock:
            found = self._users.get(key) or self._users_by_id.get(key)
        if found is None:
            raise KeyError("no such user in the emulator")
        return found

    def users(self) -> list[User]:
        with self._lock:
            return list(self._users.values())

    def add_demo_users(self) -> list[User]:
        """viewer (mlflow-viewer), editor (mlflow-editor), admin (admin), nobody (no grants)."""
        created = []
        for spec in DEMO_USERS:
            login_id = spec["login_id"]
            with self._lock:
                existing = self._users.get(login_id)
            if existing is not None:
                created.append(existing)
                continue
            email = f"{login_id}@example.com"
            created.append(self.create_user(email=email, **spec))
        return created

    # ---- tokens ----------------------------------------------------------

    def login(self, user: UserRef, *, tenant: Optional[str] = None) -> dict[str, Any]:
        """Sign a user in as a flow would: Descope's token response, refreshJwt included."""
        found = self.get_user(user)
        if tenant is not None and not _is_member(found, tenant):
            raise ValueError("the user is not a member of this tenant")
        refresh_jwt, expires_at = self._issue_refresh(found, tenant=tenant, ttl=None)
        session_jwt = self._sign_default(self._session_payload(found, tenant=tenant))
        with self._lock:
            first_seen = found.user_id not in self._seen
            self._seen.add(found.user_id)
        return self._token_response(found, session_jwt, refresh_jwt, expires_at, first_seen)

    def session_claims(
        self,
        user: UserRef,
        *,
        ttl: Optional[int] = None,
        exp: Optional[int] = None,
        iat: Optional[int] = None,
        nbf: Optional[int] = None,
        issuer: Optional[str] = None,
        extra_claims: Optional[Mapping[str, Any]] = None,
        drop_claims: Iterable[str] = (),
        dsub: Optional[str] = None,
    ) -> dict[str, Any]:
        """The payload `mint_session` would sign, for building hostile tokens with `sign`."""
        found = self.get_user(user)
        payload = self._session_payload(found, tenant=None, ttl=ttl)
        if iat is not None:
            payload["iat"] = iat
        if exp is not None:
            payload["exp"] = exp
        if nbf is not None:
            payload["nbf"] = nbf
        if issuer is not None:
            payload["iss"] = issuer
        if dsub is not None:
            payload["dsub"] = dsub
        payload.update(copy.deepcopy(dict(extra_claims or {})))
        for claim in drop_claims:
            payload.pop(claim, None)
        return payload

    def mint_session(
        self,
        user: UserRef,
        *,
        ttl: Optional[int] = None,
        exp: Optional[int] = None,
        iat: Optional[int] = None,
        nbf: Optional[int] = None,
        issuer: Optional[str] = None,
        kid: Optional[str] = None,
        alg: Optional[str] = None,
        extra_claims: Optional[Mapping[str, Any]] = None,
        drop_claims: Iterable[str] = (),
        dsub: Optional[str] = None,
    ) -> str:
        """A session JWT (drn "DS") for a user; every knob exists to build bad ones too."""
        payload = self.session_claims(
            user,
            ttl=ttl,
            exp=exp,
            iat=iat,
            nbf=nbf,
            issuer=issuer,
            extra_claims=extra_claims,
            drop_claims=drop_claims,
            dsub=dsub,
        )
        signing_key = self._keys.get(kid) or self._keys.current
        header = {"alg": alg or signing_key.alg, "kid": kid or signing_key.kid, "typ": "JWT"}
        return encode_jwt(header, payload, key=signing_key)

    def mint_refresh(
        self, user: UserRef, *, ttl: Optional[int] = None, tenant: Optional[str] = None
    ) -> str:
        """A refresh JWT (drn "DSR"), registered as valid; a negative ttl makes it expired."""
        token, _ = self._issue_refresh(self.get_user(user), tenant=tenant, ttl=ttl)
        return token

    def revoke_refresh(self, token: str) -> None:
        """Revoke one refresh token, as logout would."""
        jti = _unverified_jti(token)
        with self._lock:
            record = self._refresh_tokens.get(jti)
            if record is None:
                raise KeyError("the emulator did not issue this refresh token")
            record.state = "revoked"

    def sign(
        self,
        header: Optional[Mapping[str, Any]] = None,
        payload: Optional[Mapping[str, Any]] = None,
        *,
        key: Optional[str] = None,
        secret: Optional[bytes] = None,
    ) -> str:
        """Sign anything. Header defaults: alg RS256, the signing key's kid, typ JWT.

        A header value of None removes that field. `key` picks a published
        key by kid; `alg: none` makes an unsigned token; `secret` HMAC-signs.
        """
        signing_key = self._keys.current if key is None else self._keys.get(key)
        if signing_key is None:
            raise KeyError("no published key has this kid")
        merged: dict[str, Any] = {"alg": signing_key.alg, "kid": signing_key.kid, "typ": "JWT"}
        merged.update(header or {})
        merged = {name: value for name, value in merged.items() if value is not None}
        return encode_jwt(merged, dict(payload or {}), key=signing_key, secret=secret)

    # ---- keys ------------------------------------------------------------

    def rotate_keys(self, keep_old: bool = True) -> str:
        """Start signing with a new key; the old ones stay published only when keep_old."""
        return self._keys.rotate(keep_old=keep_old).kid

    @property
    def current_kid(self) -> str:
        return self._keys.current.kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The key set as `/v2/keys/<project>` serves it."""
        return self._keys.jwks()

    def public_key_pem(self, kid: Optional[str] = None) -> bytes:
        signing_key = self._keys.current if kid is None else self._keys.get(kid)
        if signing_key is None:
            raise KeyError("no published key has this kid")
        return signing_key.public_pem()

    # ---- access keys -----------------------------------------------------

    def create_access_key(
        self,
        name: str,
        *,
        roles: Iterable[str] = (),
        permissions: Iterable[str] = (),
        tenants: Optional[Mapping[str, Any]] = None,
        expires_in: Optional[int] = None,
        key_id: Optional[str] = None,
    ) -> str:
        """A new access key; returns the cleartext `<key id>:<secret>` (shown only once)."""
        secret = secrets.token_urlsafe(32)
        record = _AccessKey(
            key_id=key_id if key_id is not None else new_id("K2"),
            name=name,
            secret_sha256=hashlib.sha256(secret.encode("ascii")).digest(),
            roles=_strings(roles, "roles"),
            permissions=_strings(permissions, "permissions"),
            tenants=copy.deepcopy(dict(tenants)) if tenants is not None else None,
            expires_at=_now() + expires_in if expires_in is not None else None,
        )
        if ":" in record.key_id:
            raise ValueError("key_id must not contain ':'")
        with self._lock:
            if record.key_id in self._access_keys:
                raise ValueError("an access key with this id already exists")
            self._access_keys[record.key_id] = record
        return f"{record.key_id}:{secret}"

    def revoke_access_key(self, key: str) -> None:
        """Revoke by cleartext key or by key id."""
        key_id = key.partition(":")[0]
        with self._lock:
            record = self._access_keys.get(key_id)
            if record is None:
                raise KeyError("no such access key")
            record.revoked = True

    # ---- faults and counters ---------------------------------------------

    def set_fault(
        self,
        endpoint: str,
        *,
        status: Optional[int] = None,
        retry_after: Optional[int] = None,
        hang: Optional[float] = None,
        close: bool = False,
        times: Optional[int] = None,
        body: Optional[FaultBody] = None,
        content_type: Optional[str] = None,
    ) -> None:
        """Make `endpoint` misbehave (for its next `times` calls, or until cleared).

        Effects apply in order: hang (at most `max_hang` seconds, released
        early by `clear_faults()`/`stop()`), then drop the connection if
        `close`, else answer `status` (503 after a hang, 200 when only a
        `body` is given) with `body` or a Descope-shaped error.
        """
        _check_endpoint(endpoint)
        if status is None and hang is None and not close and body is None:
            raise ValueError("a fault needs a status, hang, close or body")
        if status is not None and not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        if hang is not None and hang < 0:
            raise ValueError("hang must be >= 0 seconds")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        fault = Fault(status, retry_after, hang, close, body, content_type)
        self._faults.set(endpoint, fault, times)

    def clear_faults(self) -> None:
        """Remove every fault; requests hanging now are answered (503) at once."""
        self._faults.clear()

    def calls(self, endpoint: str) -> int:
        """How many requests reached `endpoint` (faulted ones included, preflights not)."""
        _check_endpoint(endpoint)
        with self._lock:
            return self._counters[endpoint]

    def reset_counters(self) -> None:
        with self._lock:
            self._counters.clear()

    def set_flow_error(
        self,
        *,
        error_code: str = DEFAULT_FLOW_ERROR["errorCode"],
        description: str = DEFAULT_FLOW_ERROR["errorDescription"],
        message: str = DEFAULT_FLOW_ERROR["errorMessage"],
    ) -> None:
        """The `error` event detail the stand-in component's failing button sends."""
        with self._lock:
            self._flow_error = error_body(error_code, description, message)

    # ---- the server's side (server.Application) --------------------------

    def endpoint_for(self, method: str, path: str) -> Optional[str]:
        if path in _EXACT_ROUTES:
            return _EXACT_ROUTES[path][1]
        if _KEYS_PATH.fullmatch(path):
            return "keys"
        if _FLOW_LOGIN_PATH.fullmatch(path):
            return "flow_login"
        return None

    def record_call(self, endpoint: str) -> tuple[Optional[Fault], threading.Event]:
        with self._lock:
            self._counters[endpoint] += 1
        return self._faults.take(endpoint)

    def error_reply(self, status: int) -> Reply:
        """A Descope-shaped error for a bare status (faults, unreadable requests)."""
        if status == 429:
            body = error_body(RATE_LIMIT_CODE, "Rate limit exceeded", "Too many requests")
        elif status == 400:
            kind = ERRORS["bad_request"]
            body = error_body(kind.code, kind.description, "the request could not be read")
        else:
            body = error_body(f"E010{status:03d}", "Emulated failure", f"HTTP {status}")
        return Reply.json(status, body)

    def handle(self, endpoint: Optional[str], request: Request) -> Reply:
        if endpoint is None:
            return self._refusal_reply(_Refusal("not_found", "no such endpoint"))
        if request.method != _METHODS[endpoint]:
            return self._refusal_reply(_Refusal("method_not_allowed", request.method))
        handler = self._handlers()[endpoint]
        try:
            return handler(request)
        except _Refusal as refusal:
            logger.debug("emulator refused %s: %s", endpoint, refusal.message)
            return self._refusal_reply(refusal)

    def _handlers(self) -> dict[str, Callable[[Request], Reply]]:
        return {
            "keys": self._on_keys,
            "refresh": self._on_refresh,
            "logout": self._on_logout,
            "logoutall": self._on_logout_all,
            "me": self._on_me,
            "exchange": self._on_exchange,
            "tenant_select": self._on_tenant_select,
            "web_component": self._on_web_component,
            "users": self._on_users,
            "flow_login": self._on_flow_login,
            "health": self._on_health,
        }

    # ---- endpoints -------------------------------------------------------

    def _on_keys(self, request: Request) -> Reply:
        match = _KEYS_PATH.fullmatch(request.path)
        if match is None or match.group(1) != self._project_id:
            raise _Refusal("unknown_project", "no key set for this project")
        return Reply.json(200, self._keys.jwks())

    def _on_refresh(self, request: Request) -> Reply:
        presented, claims = self._verified_refresh(request)
        with self._lock:
            record, user = self._live_refresh(claims)
            return self._refreshed(user, presented, record, tenant=record.tenant, always_new=False)

    def _on_tenant_select(self, request: Request) -> Reply:
        presented, claims = self._verified_refresh(request)
        tenant = _json_object(request).get("tenant")
        if not isinstance(tenant, str) or not tenant:
            raise _Refusal("missing_argument", "tenant is required")
        with self._lock:
            record, user = self._live_refresh(claims)
            self._require_member(user, tenant)
            return self._refreshed(user, presented, record, tenant=tenant, always_new=True)

    def _on_logout(self, request: Request) -> Reply:
        _, claims = self._verified_refresh(request)
        with self._lock:
            record, _ = self._live_refresh(claims)
            record.state = "revoked"
        return Reply.json(200, {})

    def _on_logout_all(self, request: Request) -> Reply:
        _, claims = self._verified_refresh(request)
        with self._lock:
            _, user = self._live_refresh(claims)
            for record in self._refresh_tokens.values():
                if record.user_id == user.user_id and record.state == "valid":
                    record.state = "revoked"
        return Reply.json(200, {})

    def _on_me(self, request: Request) -> Reply:
        _, claims = self._verified_refresh(request)
        with self._lock:
            _, user = self._live_refresh(claims)
        return Reply.json(200, _user_object(user))

    def _on_exchange(self, request: Request) -> Reply:
        key_id, _, secret = self._bearer_token(request).partition(":")
        secret = secret.partition(":")[0]  # an auth management key may follow
        _json_object(request)
        with self._lock:
            record = self._access_keys.get(key_id)
        supplied = hashlib.sha256(secret.encode("utf-8")).digest()
        if record is None or not hmac.compare_digest(supplied, record.secret_sha256):
            raise _Refusal("access_key_invalid", "unknown access key")
        if record.revoked:
            raise _Refusal("access_key_revoked", "access key revoked")
        now = _now()
        if record.expires_at is not None and record.expires_at <= now:
            raise _Refusal("access_key_expired", "access key expired")

        expires_at = now + self.session_ttl
        if record.expires_at is not None:
            expires_at = min(expires_at, record.expires_at)
        payload: dict[str, Any] = {
            "drn": "DS",
            "exp": expires_at,
            "iat": now,
            "iss": self.issuer,
            "sub": record.key_id,
            **_grant_claims(record.roles, record.permissions, record.tenants),
        }
        session_jwt = self._sign_default(payload)
        body = {"keyId": record.key_id, "sessionJwt": session_jwt, "expiration": expires_at}
        return Reply.json(200, body)

    def _on_web_component(self, request: Request) -> Reply:
        return Reply(200, _web_component_source(), "text/javascript; charset=utf-8")

    def _on_users(self, request: Request) -> Reply:
        if request.query.get("project", [""])[0] != self._project_id:
            raise _Refusal("unknown_project", "no such project")
        with self._lock:
            listed = [
                {"loginId": user.login_id, "name": user.name or "", "roles": list(user.roles)}
                for user in self._users.values()
            ]
            flow_error = dict(self._flow_error)
        return Reply.json(200, {"users": listed, "flowError": flow_error})

    def _on_flow_login(self, request: Request) -> Reply:
        self._bearer_token(request)
        body = _json_object(request)
        login_id = body.get("loginId")
        tenant = body.get("tenant") or None
        if not isinstance(login_id, str) or not isinstance(tenant, (str, type(None))):
            raise _Refusal("missing_argument", "loginId is required; tenant must be a string")
        try:
            user = self.get_user(login_id)
        except KeyError:
            raise _Refusal("unknown_login_id", "no user with this login id") from None
        if tenant is not None:
            self._require_member(user, tenant)
        return Reply.json(200, self.login(user, tenant=tenant))

    def _on_health(self, request: Request) -> Reply:
        return Reply.json(200, {"status": "ok", "projectId": self._project_id})

    # ---- helpers ---------------------------------------------------------

    def _bearer_token(self, request: Request) -> str:
        """The token after `Bearer <project>:`; refuses a missing header or another project."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _Refusal("unauthorized", "expected Authorization: Bearer <project>[:<token>]")
        project, _, token = credentials.strip().partition(":")
        if not hmac.compare_digest(project.encode("utf-8"), self._project_id.encode("utf-8")):
            raise _Refusal("project_mismatch", "the Authorization header names another project")
        return token

    def _verified_refresh(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The request's refresh JWT and its claims: signature, exp, drn and iss checked."""
        token = self._bearer_token(request).partition(":")[0]
        if not token:
            raise _Refusal("refresh_invalid", "no refresh token")
        try:
            claims = verify_jwt(token, self._keys)
        except TokenRefused as refused:
            raise _Refusal("refresh_invalid", str(refused)) from None
        if claims.get("drn") != "DSR":
            raise _Refusal("refresh_invalid", "not a refresh token (drn)")
        if not self._issuer_matches(claims.get("iss")):
            raise _Refusal("refresh_invalid", "issued for another project (iss)")
        return token, claims

    def _live_refresh(self, claims: Mapping[str, Any]) -> tuple[_RefreshRecord, User]:
        """The server-side record of a verified refresh token; call with the lock held."""
        jti = str(claims.get("jti", ""))
        record = self._refresh_tokens.get(jti)
        if record is None or record.user_id != claims.get("sub"):
            raise _Refusal("refresh_invalid", "unknown refresh token")
        if record.state == "rotated":
            raise _Refusal("refresh_revoked", "refresh token was replaced by rotation")
        if record.state != "valid":
            raise _Refusal("refresh_revoked", "refresh token revoked")
        user = self._users_by_id.get(record.user_id)
        if user is None:
            raise _Refusal("user_not_found", "the token's user no longer exists")
        return record, user

    def _refreshed(
        self,
        user: User,
        presented: str,
        record: _RefreshRecord,
        *,
        tenant: Optional[str],
        always_new: bool,
    ) -> Reply:
        """A refresh answer; rotates (or, for tenant select, re-issues) the refresh token."""
        token: Optional[str] = None
        expires_at = record.expires_at
        if self.rotate_refresh_tokens or always_new:
            token, expires_at = self._issue_refresh(user, tenant=tenant, ttl=None)
            if self.rotate_refresh_tokens:
                record.state = "rotated"
        session_jwt = self._sign_default(self._session_payload(user, tenant=tenant))

        headers: tuple[tuple[str, str], ...] = ()
        in_body: Optional[str] = None
        current = token if token is not None else presented
        if self.refresh_via_cookie:
            headers = _token_cookies(session_jwt, self.session_ttl, current, expires_at)
        elif self.refresh_in_body or token is not None:
            in_body = current
        body = self._token_response(user, session_jwt, in_body, expires_at, first_seen=False)
        return Reply.json(200, body, headers)

    def _issue_refresh(
        self, user: User, *, tenant: Optional[str], ttl: Optional[int]
    ) -> tuple[str, int]:
        now = _now()
        expires_at = now + (ttl if ttl is not None else self.refresh_ttl)
        jti = secrets.token_urlsafe(18)
        payload: dict[str, Any] = {
            "amr": ["email"],
            "drn": "DSR",
            "exp": expires_at,
            "iat": now,
            "iss": self.issuer,
            "jti": jti,
            "sub": user.user_id,
            **_grant_claims(user.roles, user.permissions, user.tenants),
        }
        if tenant is not None:
            payload["dct"] = tenant
        token = self._sign_default(payload)
        with self._lock:
            self._refresh_tokens[jti] = _RefreshRecord(user.user_id, expires_at, tenant)
        return token, expires_at

    def _session_payload(
        self, user: User, *, tenant: Optional[str], ttl: Optional[int] = None
    ) -> dict[str, Any]:
        now = _now()
        custom = {
            name: copy.deepcopy(value)
            for name, value in user.custom_claims.items()
            if name not in _RESERVED_CLAIMS
        }
        payload: dict[str, Any] = {
            "amr": ["email"],
            "drn": "DS",
            "exp": now + (ttl if ttl is not None else self.session_ttl),
            "iat": now,
            "iss": self.issuer,
            "sub": user.user_id,
            **_grant_claims(user.roles, user.permissions, user.tenants),
        }
        if tenant is not None:
            payload["dct"] = tenant
        if user.email:
            payload["email"] = user.email
        if user.name:
            payload["name"] = user.name
        return {**custom, **payload}

    def _sign_default(self, payload: Mapping[str, Any]) -> str:
        signing_key: SigningKey = self._keys.current
        header = {"alg": signing_key.alg, "kid": signing_key.kid, "typ": "JWT"}
        return encode_jwt(header, payload, key=signing_key)

    def _token_response(
        self,
        user: User,
        session_jwt: str,
        refresh_jwt: Optional[str],
        refresh_expires_at: int,
        first_seen: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"sessionJwt": session_jwt}
        if refresh_jwt is not None:
            body["refreshJwt"] = refresh_jwt
        body.update(
            {
                "cookieDomain": "",
                "cookiePath": "/",
                "cookieMaxAge": max(0, refresh_expires_at - _now()),
                "cookieExpiration": refresh_expires_at,
                "user": _user_object(user),
                "firstSeen": first_seen,
            }
        )
        return body

    def _require_member(self, user: User, tenant: str) -> None:
        if not _is_member(user, tenant):
            raise _Refusal("tenant_not_member", "the user is not a member of this tenant")

    def _issuer_matches(self, issuer: object) -> bool:
        if not isinstance(issuer, str):
            return False
        if issuer == self._project_id:
            return True
        return issuer.startswith("https://") and issuer.rsplit("/", 1)[-1] == self._project_id

    def _refusal_reply(self, refusal: _Refusal) -> Reply:
        kind = ERRORS[refusal.kind]
        return Reply.json(kind.status, error_body(kind.code, kind.description, refusal.message))


def descope_api_url(project_id: str) -> str:
    """Descope's API host for a project, by the SDKs' rule (32+ chars embed a region)."""
    if len(project_id) >= 32:
        return f"https://api.{project_id[1:5]}.descope.com"
    return "https://api.descope.com"


def _is_member(user: User, tenant: str) -> bool:
    return tenant in (user.tenants or {})


def _check_endpoint(endpoint: str) -> None:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}")


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        raise _Refusal("bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _Refusal("bad_request", "the body must be a JSON object")
    return body


def _unverified_jti(token: str) -> str:
    """The `jti` of a token, read without verifying it (only to find our own record)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise KeyError("not a JWT") from None
    return str(claims.get("jti", ""))


def _user_object(user: User) -> dict[str, Any]:
    """The user as Descope's `me` and token responses describe it."""
    tenants = user.tenants or {}
    return {
        "userId": user.user_id,
        "loginIds": [user.login_id],
        "email": user.email or "",
        "name": user.name or "",
        "phone": "",
        "verifiedEmail": bool(user.email),
        "verifiedPhone": False,
        "roleNames": list(user.roles),
        "userTenants": [
            {"tenantId": tenant_id, "tenantName": tenant_id, "roleNames": _tenant_roles(grants)}
            for tenant_id, grants in tenants.items()
        ],
        "status": "enabled",
        "customAttributes": {},
        "createdTime": user.created_at,
        "test": False,
        "externalIds": [user.login_id],
    }


def _tenant_roles(grants: object) -> list[str]:
    roles = grants.get("roles") if isinstance(grants, Mapping) else None
    return [role for role in roles if isinstance(role, str)] if isinstance(roles, list) else []


def _token_cookies(
    session_jwt: str, session_age: int, refresh_jwt: str, refresh_expires_at: int
) -> tuple[tuple[str, str], ...]:
    """Descope's "cookies" mode: both tokens as cookies (the emulator is plain HTTP: no Secure)."""
    refresh_age = max(0, refresh_expires_at - _now())
    attributes = "Path=/; HttpOnly; SameSite=Strict"
    return (
        ("Set-Cookie", f"DS={session_jwt}; Max-Age={session_age}; {attributes}"),
        ("Set-Cookie", f"DSR={refresh_jwt}; Max-Age={refresh_age}; {attributes}"),
    )
