"""Fidelity of the Descope emulator, judged by Descope's own Python SDK.

Every test points `descope.DescopeClient` at the emulator, as a user's
integration test would. The fixtures come from the package's pytest plugin
(registered through the `pytest11` entry point, no conftest involved).
"""

from __future__ import annotations

import time

import jwt
import pytest
from descope import AuthException, DescopeClient, RateLimitException

from mlflow_descope_auth.testing import DescopeEmulator


def sdk_client(emu: DescopeEmulator) -> DescopeClient:
    return DescopeClient(project_id=emu.project_id, base_url=emu.base_url)


@pytest.fixture
def alice(descope_emulator: DescopeEmulator) -> str:
    descope_emulator.create_user(
        "alice",
        email="alice@example.com",
        name="Alice",
        roles=["mlflow-editor"],
        permissions=["mlflow:read"],
        tenants={"T1": {"roles": ["mlflow-viewer"], "permissions": []}},
        custom_claims={"team": "ml"},
    )
    return "alice"


def test_validate_session_accepts_emulator_tokens(descope_emulator, alice):
    tokens = descope_emulator.login(alice)

    result = sdk_client(descope_emulator).validate_session(tokens["sessionJwt"])

    user_id = descope_emulator.get_user(alice).user_id
    assert result["userId"] == user_id
    assert result["projectId"] == descope_emulator.project_id
    assert result["roles"] == ["mlflow-editor"]
    assert result["permissions"] == ["mlflow:read"]
    assert result["tenants"] == {"T1": {"roles": ["mlflow-viewer"], "permissions": []}}
    assert result["sessionToken"]["team"] == "ml"
    assert result["sessionToken"]["drn"] == "DS"


@pytest.mark.parametrize("issuer_style", ["url", "project"])
def test_sdk_reads_the_project_from_both_issuer_forms(issuer_style):
    with DescopeEmulator(issuer_style=issuer_style) as emu:
        emu.create_user("bob")
        session = emu.mint_session("bob")

        result = sdk_client(emu).validate_session(session)

    expected_iss = (
        emu.project_id if issuer_style == "project" else f"https://api.descope.com/{emu.project_id}"
    )
    assert result["sessionToken"]["iss"] == expected_iss
    assert result["projectId"] == emu.project_id


def test_validate_session_refuses_a_token_signed_by_another_key(descope_emulator, alice):
    with DescopeEmulator(project_id=descope_emulator.project_id) as impostor:
        impostor.create_user("alice")
        forged = impostor.sign(
            header={"kid": descope_emulator.current_kid},
            payload=impostor.session_claims("alice"),
        )

    # The SDK lets PyJWT's own exception escape here instead of an AuthException.
    with pytest.raises((AuthException, jwt.InvalidSignatureError)):
        sdk_client(descope_emulator).validate_session(forged)


@pytest.mark.descope_emulator(rotate_refresh_tokens=False)
def test_refresh_without_rotation_keeps_the_refresh_token(descope_emulator, alice):
    tokens = descope_emulator.login(alice)
    client = sdk_client(descope_emulator)

    first = client.refresh_session(tokens["refreshJwt"])
    second = client.refresh_session(tokens["refreshJwt"])

    assert first["refreshSessionToken"]["jwt"] == tokens["refreshJwt"]
    assert second["sessionToken"]["sub"] == descope_emulator.get_user(alice).user_id
    assert descope_emulator.calls("refresh") == 2


@pytest.mark.descope_emulator(rotate_refresh_tokens=True)
def test_refresh_with_rotation_replaces_the_token_and_refuses_the_old_one(descope_emulator, alice):
    old = descope_emulator.login(alice)["refreshJwt"]
    client = sdk_client(descope_emulator)

    result = client.refresh_session(old)
    new = result["refreshSessionToken"]["jwt"]

    assert new != old
    assert result["refreshSessionToken"]["drn"] == "DSR"
    with pytest.raises(AuthException) as refused:
        client.refresh_session(old)
    assert refused.value.status_code == 401
    assert "E061302" in refused.value.error_message
    assert client.refresh_session(new)["sessionToken"]["drn"] == "DS"


@pytest.mark.descope_emulator(rotate_refresh_tokens=True, refresh_via_cookie=True)
def test_rotated_token_in_the_dsr_cookie_reaches_the_sdk(descope_emulator, alice):
    old = descope_emulator.login(alice)["refreshJwt"]
    client = sdk_client(descope_emulator)

    new = client.refresh_session(old)["refreshSessionToken"]["jwt"]

    assert new != old
    assert client.refresh_session(new)["sessionToken"]["drn"] == "DS"
    with pytest.raises(AuthException):
        client.refresh_session(old)


@pytest.mark.descope_emulator(refresh_in_body=False)
def test_sdk_keeps_the_refresh_token_when_the_body_omits_it(descope_emulator, alice):
    old = descope_emulator.login(alice)["refreshJwt"]

    result = sdk_client(descope_emulator).refresh_session(old)

    assert result["refreshSessionToken"]["jwt"] == old


@pytest.mark.parametrize("rotate", [False, True])
def test_validate_and_refresh_session_refreshes_an_expired_session(rotate):
    with DescopeEmulator(rotate_refresh_tokens=rotate) as emu:
        emu.create_user("carol", roles=["mlflow-viewer"])
        refresh = emu.login("carol")["refreshJwt"]
        expired = emu.mint_session("carol", ttl=-120)
        client = sdk_client(emu)

        result = client.validate_and_refresh_session(expired, refresh)

        assert result["sessionToken"]["exp"] > time.time()
        assert result["roles"] == ["mlflow-viewer"]
        assert emu.calls("refresh") == 1
        assert (result["refreshSessionToken"]["jwt"] != refresh) is rotate


def test_validate_and_refresh_session_does_not_call_descope_for_a_live_session(
    descope_emulator, alice
):
    tokens = descope_emulator.login(alice)

    sdk_client(descope_emulator).validate_and_refresh_session(
        tokens["sessionJwt"], tokens["refreshJwt"]
    )

    assert descope_emulator.calls("refresh") == 0


def test_exchange_access_key_returns_a_session_for_the_key(descope_emulator):
    key = descope_emulator.create_access_key(
        "ci-bot", roles=["mlflow-editor"], tenants={"T9": {"roles": ["x"], "permissions": []}}
    )

    result = sdk_client(descope_emulator).exchange_access_key(key)

    key_id = key.split(":", 1)[0]
    assert result["keyId"] == key_id
    assert result["sessionToken"]["sub"] == key_id
    assert result["sessionToken"]["drn"] == "DS"
    assert result["roles"] == ["mlflow-editor"]
    assert result["tenants"] == {"T9": {"roles": ["x"], "permissions": []}}


@pytest.mark.parametrize("spoil", ["revoked", "expired", "wrong secret", "unknown"])
def test_exchange_refuses_a_bad_access_key(descope_emulator, spoil):
    key = descope_emulator.create_access_key(
        "ci-bot", expires_in=-1 if spoil == "expired" else None
    )
    if spoil == "revoked":
        descope_emulator.revoke_access_key(key)
    elif spoil == "wrong secret":
        key = key.split(":", 1)[0] + ":not-the-secret"
    elif spoil == "unknown":
        key = "K2NoSuchKey000000000000000000:secret"

    with pytest.raises(AuthException) as refused:
        sdk_client(descope_emulator).exchange_access_key(key)

    assert refused.value.status_code == 401


def test_logout_revokes_the_refresh_token(descope_emulator, alice):
    tokens = descope_emulator.login(alice)
    client = sdk_client(descope_emulator)

    client.logout(tokens["refreshJwt"])

    with pytest.raises(AuthException) as refused:
        client.refresh_session(tokens["refreshJwt"])
    assert refused.value.status_code == 401
    assert descope_emulator.calls("logout") == 1


def test_logout_all_revokes_every_session_of_the_user(descope_emulator, alice):
    descope_emulator.create_user("dave")
    first = descope_emulator.login(alice)["refreshJwt"]
    second = descope_emulator.login(alice)["refreshJwt"]
    other_user = descope_emulator.login("dave")["refreshJwt"]
    client = sdk_client(descope_emulator)

    client.logout_all(first)

    for token in (first, second):
        with pytest.raises(AuthException):
            client.refresh_session(token)
    assert client.refresh_session(other_user)["sessionToken"]["drn"] == "DS"


def test_me_returns_the_user(descope_emulator, alice):
    tokens = descope_emulator.login(alice)

    me = sdk_client(descope_emulator).me(tokens["refreshJwt"])

    assert me["userId"] == descope_emulator.get_user(alice).user_id
    assert me["loginIds"] == ["alice"]
    assert me["email"] == "alice@example.com"
    assert me["name"] == "Alice"


def test_select_tenant_sets_dct(descope_emulator, alice):
    tokens = descope_emulator.login(alice)

    result = sdk_client(descope_emulator).select_tenant("T1", tokens["refreshJwt"])

    assert result["sessionToken"]["dct"] == "T1"
    assert result["refreshSessionToken"]["dct"] == "T1"


def test_rate_limit_surfaces_as_the_sdk_rate_limit_exception(descope_emulator):
    key = descope_emulator.create_access_key("ci-bot")
    descope_emulator.set_fault("exchange", status=429, retry_after=7)

    with pytest.raises(RateLimitException) as limited:
        sdk_client(descope_emulator).exchange_access_key(key)

    assert limited.value.rate_limit_parameters == {"Retry-After": 7}
    assert limited.value.status_code == "E130429"


def test_sdk_validates_tokens_of_a_rotated_key(descope_emulator, alice):
    client = sdk_client(descope_emulator)
    old_session = descope_emulator.mint_session(alice)
    client.validate_session(old_session)

    descope_emulator.rotate_keys(keep_old=True)
    new_session = descope_emulator.mint_session(alice)

    assert client.validate_session(new_session)["userId"]
    assert client.validate_session(old_session)["userId"]
    assert descope_emulator.calls("keys") == 2


def test_sdk_refuses_tokens_of_a_dropped_key(descope_emulator, alice):
    old_session = descope_emulator.mint_session(alice)

    descope_emulator.rotate_keys(keep_old=False)

    with pytest.raises(AuthException):
        sdk_client(descope_emulator).validate_session(old_session)
