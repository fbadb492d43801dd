"""The compiled core without any Descope: constructor checks, refusals that
need no key set, bounded failure when Descope is unreachable, the exception
classes, and reprs that hold no secret."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest

from mlflow_descope_auth import _core
from mlflow_descope_auth.exceptions import (
    AuthenticationError,
    ConfigurationError,
    DescopeAuthError,
    DescopeRateLimitedError,
    DescopeUnavailableError,
    InvalidTokenError,
)

PROJECT = "P2TestProject0001"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def core() -> _core.Core:
    return _core.Core(
        PROJECT, base_url=f"http://127.0.0.1:{closed_port()}", http_timeout_seconds=1.0
    )


def b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def token(header: object, payload: object, signature: str = "c2ln") -> str:
    return f"{b64(header)}.{b64(payload)}.{signature}"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"default_permission": "ADMIN"}, "default_permission"),
        ({"leeway_seconds": -1}, "leeway_seconds"),
        ({"http_timeout_seconds": 0.0}, "http_timeout_seconds"),
        ({"http_timeout_seconds": float("nan")}, "http_timeout_seconds"),
        ({"base_url": "descope.com"}, "base_url"),
        ({"max_token_bytes": 10}, "max_token_bytes"),
        ({"username_claim": ""}, "username_claim"),
    ],
)
def test_invalid_core_settings_raise_configuration_error(
    kwargs: dict[str, object], named: str
) -> None:
    arguments: dict[str, object] = {"base_url": "https://api.descope.com", **kwargs}
    with pytest.raises(ConfigurationError, match=f"^{named}"):
        _core.Core(PROJECT, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "malformed token"),
        ("a.b", "malformed token"),
        ("a.b.c.d", "malformed token"),
        ("%%%.e30.c2ln", "malformed header"),
        (token({"alg": "none", "kid": "k"}, {}), "unsigned tokens are not accepted (alg)"),
        (token({"alg": "HS256", "kid": "k"}, {}), "symmetric algorithms are not accepted (alg)"),
        (token({"kid": "k"}, {}), "missing algorithm (alg)"),
        (token({"alg": "RS256"}, {}), "missing key id (kid)"),
        ("x" * 20000, "token too large"),
    ],
)
def test_malformed_tokens_are_refused_without_calling_descope(
    core: _core.Core, bad: str, reason: str
) -> None:
    with pytest.raises(InvalidTokenError) as raised:
        core.validate_session(bad, blocking=False)

    assert reason in str(raised.value)
    assert raised.value.status_code == 401
    assert core.stats()["key_fetches"] == 0


def test_one_megabyte_token_is_refused_quickly(core: _core.Core) -> None:
    huge = ".".join(["a" * (1 << 20)] * 3)
    started = time.monotonic()

    with pytest.raises(InvalidTokenError, match="token too large"):
        core.validate_session(huge)

    assert time.monotonic() - started < 0.5


def test_unreachable_descope_is_unavailable_in_bounded_time(core: _core.Core) -> None:
    well_formed = token({"alg": "RS256", "kid": "k"}, {"sub": "U"})
    started = time.monotonic()

    with pytest.raises(DescopeUnavailableError) as raised:
        core.validate_session(well_formed)

    assert time.monotonic() - started < 2.0
    assert raised.value.status_code == 503
    assert raised.value.retry_after >= 1
    assert well_formed not in str(raised.value)


def test_non_blocking_call_that_needs_descope_would_block(core: _core.Core) -> None:
    well_formed = token({"alg": "RS256", "kid": "k"}, {"sub": "U"})

    with pytest.raises(_core.WouldBlock):
        core.validate_session(well_formed, blocking=False)
    with pytest.raises(_core.WouldBlock):
        core.authenticate("K2someaccesskey", blocking=False)

    assert core.stats()["key_fetches"] == 0


def test_implausible_access_keys_are_refused_locally(core: _core.Core) -> None:
    for bad in ["has space", "x" * 2000, "tab\tkey", "ключ"]:
        with pytest.raises(InvalidTokenError, match="malformed credential"):
            core.authenticate(bad)
    # Anything with a dot is a (broken) JWT, never an access key.
    for dotted in ["x.y.z=", "...", "a.b"]:
        with pytest.raises(InvalidTokenError, match="malformed"):
            core.authenticate(dotted)
    assert core.stats()["access_key_exchanges"] == 0


def test_refresh_garbage_never_reaches_descope(core: _core.Core) -> None:
    with pytest.raises(InvalidTokenError):
        core.refresh("not-a-token")
    assert core.stats()["refresh_calls"] == 0


def test_exception_hierarchy_and_attributes() -> None:
    assert issubclass(InvalidTokenError, AuthenticationError)
    assert issubclass(AuthenticationError, DescopeAuthError)
    assert issubclass(DescopeRateLimitedError, DescopeUnavailableError)
    assert issubclass(ConfigurationError, ValueError)
    limited = DescopeRateLimitedError("slow down", retry_after=7)
    assert (limited.status_code, limited.retry_after, limited.error_message) == (
        429,
        7,
        "slow down",
    )
    assert repr(limited) == "DescopeRateLimitedError('slow down')"


def test_core_repr_names_only_the_project(core: _core.Core) -> None:
    assert repr(core) == f"Core(project_id={PROJECT!r})"
