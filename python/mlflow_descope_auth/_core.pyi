"""Type stub for the compiled core (Rust, PyO3).

Levels are the strings "NO_PERMISSIONS", "READ", "EDIT", "MANAGE"; route
levels add "PUBLIC". Errors arrive as the classes of
`mlflow_descope_auth.exceptions`.
"""

from collections.abc import Sequence
from typing import Any, final

__version__: str
__all__ = ["AccessKeyResult", "Core", "RefreshResult", "Session", "WouldBlock", "__version__"]

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
    def stats(self) -> dict[str, int]:
        """key_fetches, keys, keys_skipped, key_epoch, session_cache_entries,
        session_cache_bytes, session_cache_hits, session_cache_misses,
        access_key_exchanges, refresh_calls."""
