"""``get_descope_client()``: the session API of Descope's Python SDK, served by
the compiled core.

The methods, their argument order, the result dicts (``sessionToken``,
``refreshSessionToken``, ``roles``, ``permissions``, ``tenants``,
``projectId``, ``userId``/``keyId``, ``cookieData``, ...) and the all-of
semantics of ``validate_permissions``/``validate_roles`` and their tenant
variants follow the ``descope`` package (2.16), so code written against it
keeps working. Failures raise this package's exceptions
(``mlflow_descope_auth.exceptions``), which carry ``status_code``,
``error_type`` and ``error_message`` like the SDK's ``AuthException``.

Where the SDK is lax, this client is strict:

- ``iss`` must be the project id, or a URL whose last path segment is the
  project id (the SDK never checks ``iss``);
- ``drn`` must not be ``DSR`` for a session (the SDK accepts a refresh token
  as a session), and must be ``DSR`` for a refresh token;
- ``exp`` is required (the SDK accepts a token without one);
- the header ``alg`` must equal the key's ``alg`` and never be ``none`` or
  HMAC; an unknown ``kid`` re-fetches the key set at most once per cooldown
  (the SDK re-fetches on every unknown ``kid``);
- a refresh token is verified locally before it is sent to Descope.

Other differences: ``logout`` and ``logout_all`` return ``None`` (the SDK
returns the HTTP response); ``validate_and_refresh_session`` refreshes only
when the session itself is refused (an ``AuthenticationError``), not when
Descope is unavailable (the SDK retries on any error); odd claim shapes are
passed through in the result dicts as the SDK does, but the permission
helpers read a lone string as a one-element list and never iterate it per
character.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Union

from mlflow_descope_auth._core import Core
from mlflow_descope_auth.config import Config, get_config
from mlflow_descope_auth.exceptions import AuthenticationError, InvalidTokenError

logger = logging.getLogger(__name__)

__all__ = ["DescopeClient", "get_descope_client"]

Audience = Union[str, Iterable[str], None]


def _audience(audience: Audience) -> str | list[str] | None:
    if audience is None or isinstance(audience, str):
        return audience
    return list(audience)


def _names(value: Any) -> list[str]:
    """A list claim read tolerantly: a lone string is one item, anything that
    is not a list is empty, non-string items are ignored."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _granted(jwt_response: dict[str, Any], tenant: str, kind: str) -> list[str] | None:
    """The grants of one kind at the top level (``tenant == ""``) or in one
    tenant; ``None`` when the tenant is not in the response."""
    if tenant == "":
        return _names(jwt_response.get(kind))
    tenants = jwt_response.get("tenants")
    if isinstance(tenants, list):
        return [] if tenant in tenants else None
    if not isinstance(tenants, dict) or tenant not in tenants:
        return None
    entry = tenants[tenant]
    return _names(entry.get(kind)) if isinstance(entry, dict) else []


def _wanted(items: str | Iterable[str]) -> list[str]:
    return [items] if isinstance(items, str) else list(items)


def _login_options(options: Any) -> dict[str, Any] | None:
    if options is None:
        return None
    members = options if isinstance(options, dict) else vars(options)
    return {name: value for name, value in members.items() if value is not None}


class DescopeClient:
    """The Descope SDK's session API over one ``Core``."""

    def __init__(self, config: Config | None = None, *, core: Core | None = None) -> None:
        self.config = config if config is not None else get_config()
        self.core = core if core is not None else self.config.build_core()

    @property
    def project_id(self) -> str:
        return self.core.project_id

    def validate_session(self, session_token: str, audience: Audience = None) -> dict[str, Any]:
        """Verifies a session token; returns the SDK's result dict."""
        if not session_token:
            raise InvalidTokenError("session token is required for validation")
        session = self.core.validate_session(session_token, audience=_audience(audience))
        return session.sdk_response(session_token)

    def refresh_session(self, refresh_token: str, audience: Audience = None) -> dict[str, Any]:
        """Refreshes a session at Descope; returns the SDK's result dict."""
        if not refresh_token:
            raise InvalidTokenError("refresh token is required to refresh a session")
        result = self.core.refresh(refresh_token)
        if audience is not None:
            self.core.validate_session(result.session_jwt, audience=_audience(audience))
        return result.sdk_response(refresh_token)

    def validate_and_refresh_session(
        self, session_token: str, refresh_token: str, audience: Audience = None
    ) -> dict[str, Any]:
        """Validates the session token, refreshing it when it does not verify."""
        if not session_token:
            raise InvalidTokenError("session token is missing")
        try:
            return self.validate_session(session_token, audience)
        except AuthenticationError as error:
            logger.debug("session did not verify (%s); refreshing", error.error_message)
            if not refresh_token:
                raise InvalidTokenError("refresh token is missing") from None
            return self.refresh_session(refresh_token, audience)

    def logout(self, refresh_token: str) -> None:
        """Revokes the refresh token at Descope."""
        if not refresh_token:
            raise InvalidTokenError("refresh token is required to log out")
        self.core.logout(refresh_token)

    def logout_all(self, refresh_token: str) -> None:
        """Revokes every session of the user at Descope."""
        if not refresh_token:
            raise InvalidTokenError("refresh token is required to log out")
        self.core.logout_all(refresh_token)

    def me(self, refresh_token: str) -> dict[str, Any]:
        """The user's details from Descope."""
        if not refresh_token:
            raise InvalidTokenError("refresh token is required")
        user = self.core.me(refresh_token)
        return user if isinstance(user, dict) else {}

    def exchange_access_key(
        self, access_key: str, audience: Audience = None, login_options: Any = None
    ) -> dict[str, Any]:
        """Exchanges an access key for a session; returns the SDK's result dict."""
        if not access_key:
            raise InvalidTokenError("access key cannot be empty")
        result = self.core.exchange_access_key(
            access_key, audience=_audience(audience), login_options=_login_options(login_options)
        )
        return result.sdk_response()

    def select_tenant(self, tenant_id: str, refresh_token: str) -> dict[str, Any]:
        """Selects a tenant (``dct``) for the session at Descope."""
        if not refresh_token:
            raise InvalidTokenError("refresh token is required to select a tenant")
        return self.core.select_tenant(tenant_id, refresh_token).sdk_response(refresh_token)

    def validate_permissions(self, jwt_response: dict[str, Any], permissions: list[str]) -> bool:
        """True when every permission is granted at the project level."""
        return self.validate_tenant_permissions(jwt_response, "", permissions)

    def validate_roles(self, jwt_response: dict[str, Any], roles: list[str]) -> bool:
        """True when every role is granted at the project level."""
        return self.validate_tenant_roles(jwt_response, "", roles)

    def validate_tenant_permissions(
        self, jwt_response: dict[str, Any], tenant: str, permissions: list[str]
    ) -> bool:
        """True when every permission is granted in ``tenant``."""
        return self._validate(jwt_response, tenant, "permissions", permissions)

    def validate_tenant_roles(
        self, jwt_response: dict[str, Any], tenant: str, roles: list[str]
    ) -> bool:
        """True when every role is granted in ``tenant``."""
        return self._validate(jwt_response, tenant, "roles", roles)

    def get_matched_permissions(
        self, jwt_response: dict[str, Any], permissions: list[str]
    ) -> list[str]:
        """The permissions among ``permissions`` granted at the project level."""
        return self.get_matched_tenant_permissions(jwt_response, "", permissions)

    def get_matched_roles(self, jwt_response: dict[str, Any], roles: list[str]) -> list[str]:
        """The roles among ``roles`` granted at the project level."""
        return self.get_matched_tenant_roles(jwt_response, "", roles)

    def get_matched_tenant_permissions(
        self, jwt_response: dict[str, Any], tenant: str, permissions: list[str]
    ) -> list[str]:
        """The permissions among ``permissions`` granted in ``tenant``."""
        return self._matched(jwt_response, tenant, "permissions", permissions)

    def get_matched_tenant_roles(
        self, jwt_response: dict[str, Any], tenant: str, roles: list[str]
    ) -> list[str]:
        """The roles among ``roles`` granted in ``tenant``."""
        return self._matched(jwt_response, tenant, "roles", roles)

    @staticmethod
    def _validate(
        jwt_response: dict[str, Any], tenant: str, kind: str, wanted: str | Iterable[str]
    ) -> bool:
        if not jwt_response:
            return False
        granted = _granted(jwt_response, tenant, kind)
        return granted is not None and all(item in granted for item in _wanted(wanted))

    @staticmethod
    def _matched(
        jwt_response: dict[str, Any], tenant: str, kind: str, wanted: str | Iterable[str]
    ) -> list[str]:
        granted = _granted(jwt_response, tenant, kind) if jwt_response else None
        return [item for item in _wanted(wanted) if granted is not None and item in granted]


_lock = threading.Lock()
_client: DescopeClient | None = None


def get_descope_client() -> DescopeClient:
    """The shared client for the installed configuration; rebuilt (with a new
    ``Core`` and so empty caches) when ``set_config`` installed another one."""
    global _client
    config = get_config()
    with _lock:
        if _client is None or _client.config is not config:
            _client = DescopeClient(config)
        return _client
