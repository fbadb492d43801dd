"""Type stub for the compiled core (Rust, PyO3).

Levels are the strings "NO_PERMISSIONS", "READ", "EDIT", "MANAGE"; route
levels are "PUBLIC" (no credential), "AUTHENTICATED" (any valid identity,
even one with NO_PERMISSIONS), "READ", "EDIT" and "MANAGE". Errors arrive as
the classes of `mlflow_descope_auth.exceptions`.
"""

from collections.abc import Sequence
from typing import Any, final

__version__: str
__all__ = [
    "AccessKeyResult",
    "Core",
    "Decision",
    "RefreshResult",
    "RouteTable",
    "Session",
    "WouldBlock",
    "__version__",
]

class WouldBlock(Exception):
    """Raised with `blocking=False` when answering needs a call to Descope."""

@final
class Session:
    """The identity of one verified session token. Never holds the raw token."""

    @property
    def user_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def roles(self) -> list[str]: ...
    @property
    def permissions(self) -> list[str]: ...
    @property
    def tenants(self) -> dict[str, dict[str, list[str]]]: ...
    @property
    def current_tenant(self) -> str | None: ...
    @property
    def level(self) -> str: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def project_id(self) -> str: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def issued_at(self) -> int | None: ...
    @property
    def is_access_key(self) -> bool: ...
    def meets(self, requirement: str) -> bool:
        """Whether `level` meets a route requirement ("PUBLIC", "AUTHENTICATED",
        "READ", "EDIT", "MANAGE", as `RouteTable.lookup` returns it); ValueError
        for any other name."""
    def claims(self) -> dict[str, Any]:
        """Every claim of the token, as a new dict."""
    def sdk_response(self, session_token: str | None = None) -> dict[str, Any]:
        """The Descope SDK's `validate_session` result; `session_token` fills
        its `jwt` fields (the session does not keep the token)."""

@final
class RefreshResult:
    """What a refresh (or tenant select) returned, already verified."""

    @property
    def session_jwt(self) -> str: ...
    @property
    def refresh_jwt(self) -> str | None:
        """The new refresh token when Descope rotated it, else None."""
    @property
    def session(self) -> Session: ...
    @property
    def refresh_expires_at(self) -> int | None: ...
    def sdk_response(self, refresh_token: str) -> dict[str, Any]: ...

@final
class AccessKeyResult:
    @property
    def key_id(self) -> str: ...
    @property
    def session_jwt(self) -> str: ...
    @property
    def expiration(self) -> int: ...
    @property
    def session(self) -> Session: ...
    def sdk_response(self) -> dict[str, Any]: ...

@final
class Decision:
    @property
    def allowed(self) -> bool: ...
    @property
    def required(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def route(self) -> str: ...

@final
class RouteTable:
    """Which level a (method, path) needs; see docs/routes.md."""

    def __new__(
        cls,
        routes: Sequence[tuple[str, str, str, str]],
        *,
        static_prefix: str = "",
        first_match: Sequence[tuple[str, str, str, str]] = ...,
    ) -> RouteTable:
        """Entries are (method, pattern, level, name): method an HTTP method or
        "*", pattern relative to `static_prefix` with Flask `<x>`, `<string:x>`,
        `<path:x>` or FastAPI `{x}`, `{x:str}`, `{x:path}` placeholders (`""`
        is the bare prefix), level one of PUBLIC, AUTHENTICATED, READ, EDIT,
        MANAGE. `first_match` entries (FastAPI's native routes) are tried
        first, in order, the first that fits winning; `routes` (Flask rules)
        are matched the way Werkzeug does, and exact ties take the strictest
        level. Raises ValueError naming a bad entry or prefix."""
    def lookup(self, method: str, path: str) -> tuple[str, str]:
        """(level, route name) for the decoded path the server routes on; HEAD
        counts as GET; unknown routes and paths outside the static prefix are
        ("MANAGE", "<unknown>")."""
    def __len__(self) -> int: ...

@final
class Core:
    def __new__(
        cls,
        project_id: str,
        *,
        base_url: str,
        leeway_seconds: int = 5,
        http_timeout_seconds: float = 5.0,
        admin_roles: Sequence[str] = ...,  # ("admin", "mlflow-admin")
        default_permission: str = "READ",
        username_claim: str = "sub",
        tenant: str | None = None,
        max_token_bytes: int = 16384,
        key_refetch_cooldown_seconds: float = 30.0,
        session_cache_entries: int = 65536,
        session_cache_bytes: int = 67108864,
        access_key_refusal_seconds: float = 30.0,
    ) -> Core: ...
    @property
    def project_id(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    def load_keys(self) -> int: ...
    def validate_session(
        self,
        token: str,
        *,
        audience: str | Sequence[str] | None = None,
        blocking: bool = True,
    ) -> Session:
        """Without `audience`, a token that names an `aud` must name the
        project (as Descope's SDK does); with it, `aud` must name one of them."""
    def validate_refresh(self, token: str, *, blocking: bool = True) -> Session: ...
    def authenticate(self, credential: str, *, blocking: bool = True) -> Session: ...
    def refresh(self, refresh_token: str) -> RefreshResult: ...
    def logout(self, refresh_token: str) -> None: ...
    def logout_all(self, refresh_token: str) -> None: ...
    def me(self, refresh_token: str) -> dict[str, Any]: ...
    def exchange_access_key(
        self,
        access_key: str,
        *,
        audience: str | Sequence[str] | None = None,
        login_options: dict[str, Any] | None = None,
    ) -> AccessKeyResult:
        """Always asks Descope (no cache); `authenticate` is the cached path."""
    def select_tenant(self, tenant_id: str, refresh_token: str) -> RefreshResult: ...
    def set_routes(self, table: RouteTable) -> None:
        """Installs the table `authorize` decides with."""
    def authorize(self, session: Session, method: str, path: str) -> Decision:
        """Whether `session` may make this request; with no table installed
        every route needs MANAGE."""
    def stats(self) -> dict[str, int]:
        """key_fetches, keys, keys_skipped, key_epoch, session_cache_entries,
        session_cache_bytes, session_cache_hits, session_cache_misses,
        access_key_exchanges, refresh_calls."""
