"""Refresh, logout, me and tenant select against the local Descope emulator:
rotation (body and cookie), one call per refresh token per process, and
Descope failing in each way, always within the timeout."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from mlflow_descope_auth import _core
from mlflow_descope_auth.exceptions import (
    DescopeRateLimitedError,
    DescopeUnavailableError,
    InvalidTokenError,
    RefreshRefusedError,
    TokenExpiredError,
)

if TYPE_CHECKING:
    from mlflow_descope_auth.testing import DescopeEmulator

pytest.importorskip("mlflow_descope_auth.testing", reason="the emulator branch is not merged")


def test_refresh_returns_a_verified_session(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    refresh = descope_emulator.login(alice)["refreshJwt"]

    result = core.refresh(refresh)

    assert result.session.level == "EDIT"
    assert result.session.user_id == descope_emulator.get_user(alice).user_id
    assert result.refresh_jwt is None
    assert result.refresh_expires_at is not None
    assert core.validate_session(result.session_jwt).user_id == result.session.user_id
    assert descope_emulator.calls("refresh") == 1


@pytest.mark.descope_emulator(rotate_refresh_tokens=True)
def test_rotated_refresh_token_from_the_body(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    old = descope_emulator.login(alice)["refreshJwt"]

    first = core.refresh(old)
    again = core.refresh(old)

    assert first.refresh_jwt is not None
    assert first.refresh_jwt != old
    assert core.validate_refresh(first.refresh_jwt).user_id == first.session.user_id
    assert (again.session_jwt, again.refresh_jwt) == (first.session_jwt, first.refresh_jwt)
    assert descope_emulator.calls("refresh") == 1


@pytest.mark.descope_emulator(
    rotate_refresh_tokens=True, refresh_in_body=False, refresh_via_cookie=True
)
def test_rotated_refresh_token_from_set_cookie(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    old = descope_emulator.mint_refresh(alice)

    result = core.refresh(old)

    assert result.refresh_jwt is not None
    assert result.refresh_jwt != old
    assert core.validate_refresh(result.refresh_jwt)


@pytest.mark.descope_emulator(rotate_refresh_tokens=True)
def test_concurrent_refreshes_share_one_call(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    old = descope_emulator.mint_refresh(alice)
    core.load_keys()
    results: list[Any] = []

    def refresh() -> None:
        results.append(core.refresh(old))

    # The Rust unit tests hold Descope's answer back to force an overlap;
    # here the threads race a real call, and the memo keeps them at one.
    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 8
    assert len({result.session_jwt for result in results}) == 1
    assert descope_emulator.calls("refresh") == 1


def test_refresh_refused_by_descope(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    refresh = descope_emulator.mint_refresh(alice)
    descope_emulator.revoke_refresh(refresh)

    with pytest.raises(RefreshRefusedError) as raised:
        core.refresh(refresh)

    assert raised.value.status_code == 401
    assert refresh not in str(raised.value)


def test_expired_or_garbage_refresh_never_reaches_descope(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    with pytest.raises(TokenExpiredError):
        core.refresh(descope_emulator.mint_refresh(alice, ttl=-60))
    with pytest.raises(InvalidTokenError):
        core.refresh(descope_emulator.mint_session(alice))
    with pytest.raises(InvalidTokenError):
        core.refresh("garbage")

    assert descope_emulator.calls("refresh") == 0


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ({"status": 500}, DescopeUnavailableError, None),
        ({"status": 503}, DescopeUnavailableError, None),
        ({"status": 429, "retry_after": 9}, DescopeRateLimitedError, 9),
        ({"hang": 5.0}, DescopeUnavailableError, None),
        ({"close": True}, DescopeUnavailableError, None),
    ],
)
def test_refresh_failures_are_bounded_and_classified(
    core: _core.Core,
    descope_emulator: DescopeEmulator,
    alice: str,
    fault: dict[str, Any],
    error: type[Exception],
    retry_after: int | None,
) -> None:
    refresh = descope_emulator.mint_refresh(alice)
    core.load_keys()
    descope_emulator.set_fault("refresh", **fault)
    started = time.monotonic()

    with pytest.raises(error) as raised:
        core.refresh(refresh)

    assert time.monotonic() - started < 2.5
    if retry_after is not None:
        assert getattr(raised.value, "retry_after", None) == retry_after


def test_logout_revokes_and_forgets_the_remembered_refresh(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    refresh = descope_emulator.mint_refresh(alice)
    core.refresh(refresh)

    core.logout(refresh)

    with pytest.raises(RefreshRefusedError):
        core.refresh(refresh)
    assert descope_emulator.calls("logout") == 1
    assert descope_emulator.calls("refresh") == 2


@pytest.mark.descope_emulator(rotate_refresh_tokens=True)
@pytest.mark.parametrize("logout", ["logout", "logout_all"])
def test_logout_of_the_newest_token_forgets_the_tokens_it_was_rotated_from(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str, logout: str
) -> None:
    oldest = descope_emulator.login(alice)["refreshJwt"]
    middle = core.refresh(oldest).refresh_jwt
    assert middle is not None
    newest = core.refresh(middle).refresh_jwt
    assert newest is not None

    getattr(core, logout)(newest)

    # Without the chain being forgotten, memory would hand out new sessions
    # for the rotated-away tokens without asking Descope.
    for rotated_away in (oldest, middle):
        with pytest.raises(RefreshRefusedError):
            core.refresh(rotated_away)
    assert descope_emulator.calls("refresh") == 4


def test_logout_all_and_me(core: _core.Core, descope_emulator: DescopeEmulator, alice: str) -> None:
    refresh = descope_emulator.mint_refresh(alice)

    me = core.me(refresh)
    assert me["userId"] == descope_emulator.get_user(alice).user_id

    core.logout_all(refresh)
    assert descope_emulator.calls("logoutall") == 1


def test_select_tenant_sets_dct(
    make_core: Any, descope_emulator: DescopeEmulator, alice: str
) -> None:
    core = make_core(tenant="T1")
    refresh = descope_emulator.mint_refresh(alice)

    result = core.select_tenant("T1", refresh)

    assert result.session.current_tenant == "T1"
    assert result.session.level == "READ"
    response = result.sdk_response(refresh)
    assert response["sessionToken"]["dct"] == "T1"
