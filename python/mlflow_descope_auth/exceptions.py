"""Exceptions of mlflow-descope-auth, split by who is at fault.

=========================  ======  ==============================================
class                      status  meaning
=========================  ======  ==============================================
DescopeAuthError           --      base; ``status_code``, ``error_type``,
                                   ``error_message`` like the Descope SDK's
                                   ``AuthException``
AuthenticationError        401     bad credential (the four below)
InvalidTokenError          401     malformed, forged, foreign or wrong-kind token
TokenExpiredError          401     ``exp`` has passed (beyond the leeway)
AccessKeyRefusedError      401     Descope refused the access key
RefreshRefusedError        401     Descope refused the refresh token
PermissionDeniedError      403     valid credential, level too low
DescopeUnavailableError    503     Descope unreachable, timed out or 5xx;
                                   ``retry_after`` seconds
DescopeRateLimitedError    429     Descope answered 429; ``retry_after`` from
                                   its ``Retry-After``
ConfigurationError         --      a setting is invalid (a ``ValueError``)
=========================  ======  ==============================================

Messages name the reason and the claim or setting at fault; they never
contain a token, cookie, key or email. The compiled core raises these
classes (it imports this module once).
"""

from __future__ import annotations

__all__ = [
    "AccessKeyRefusedError",
    "AuthenticationError",
    "ConfigurationError",
    "DescopeAuthError",
    "DescopeRateLimitedError",
    "DescopeUnavailableError",
    "InvalidTokenError",
    "PermissionDeniedError",
    "RefreshRefusedError",
    "TokenExpiredError",
]


class DescopeAuthError(Exception):
    """Base of every authentication and authorization failure."""

    status_code: int = 500
    error_type: str = "error"

    def __init__(
        self,
        error_message: str = "",
        *,
        status_code: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(error_message)
        self.error_message = error_message
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type

    def __str__(self) -> str:
        return self.error_message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error_message!r})"


class AuthenticationError(DescopeAuthError):
    """The credential is missing, malformed, forged, expired or refused (401)."""

    status_code = 401
    error_type = "invalid token"


class InvalidTokenError(AuthenticationError):
    """The token is malformed, forged, for another project or of the wrong kind."""


class TokenExpiredError(AuthenticationError):
    """The token's ``exp`` has passed, beyond the configured leeway."""

    error_type = "expired token"


class AccessKeyRefusedError(AuthenticationError):
    """Descope refused the access key (or it is remembered as refused)."""

    error_type = "invalid access key"


class RefreshRefusedError(AuthenticationError):
    """Descope refused the refresh token (revoked, rotated away or expired)."""

    error_type = "invalid refresh token"


class PermissionDeniedError(DescopeAuthError):
    """The credential is valid but its level is too low (403)."""

    status_code = 403
    error_type = "permission denied"


class DescopeUnavailableError(DescopeAuthError):
    """Descope could not be reached, timed out or answered 5xx (503)."""

    status_code = 503
    error_type = "server error"

    def __init__(
        self,
        error_message: str = "",
        *,
        retry_after: int = 5,
        status_code: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(error_message, status_code=status_code, error_type=error_type)
        self.retry_after = retry_after


class DescopeRateLimitedError(DescopeUnavailableError):
    """Descope answered 429; ``retry_after`` comes from its ``Retry-After``."""

    status_code = 429
    error_type = "API rate limit exceeded"


class ConfigurationError(ValueError):
    """A setting is invalid; the message names it and the allowed values."""
