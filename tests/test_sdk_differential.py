"""Differential test: for valid tokens, `get_descope_client()` answers what
Descope's official Python SDK answers (pointed at the same local emulator);
where the SDK is lax, we refuse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from mlflow_descope_auth import Config, get_descope_client, set_config
from mlflow_descope_auth.client import DescopeClient
from mlflow_descope_auth.config import reset_config
from mlflow_descope_auth.exceptions import InvalidTokenError

if TYPE_CHECKING:
    from mlflow_descope_auth.testing import DescopeEmulator

pytest.importorskip("mlflow_descope_auth.testing", reason="the emulator branch is not merged")
descope = pytest.importorskip("descope")

COMPARED = ("roles", "permissions", "tenants", "userId", "projectId")


@pytest.fixture
def ours(descope_emulator: DescopeEmulator) -> Iterator[DescopeClient]:
    reset_config()
    set_config(
        Config(
            DESCOPE_PROJECT_ID=descope_emulator.project_id,
            DESCOPE_BASE_URL=descope_emulator.base_url,
        )
    )
    yield get_descope_client()
    reset_config()


@pytest.fixture
def sdk(descope_emulator: DescopeEmulator) -> Any:
    return descope.DescopeClient(
        project_id=descope_emulator.project_id, base_url=descope_emulator.base_url
    )


def population(emulator: DescopeEmulator) -> list[str]:
    """Valid session tokens of varied shapes."""
    emulator.create_user("editor", roles=["mlflow-editor"], permissions=["mlflow:read"])
    emulator.create_user(
        "admin",
        email="admin@example.com",
        roles=["admin"],
        tenants={
            "T1": {"roles": ["mlflow-viewer"], "permissions": ["mlflow:read"]},
            "T2": {},
        },
    )
    emulator.create_user("nobody")
    project = emulator.project_id
    return [
        emulator.mint_session("editor"),
        emulator.mint_session("admin"),
        emulator.mint_session("nobody"),
        emulator.mint_session("editor", dsub="U2delegated"),
        emulator.mint_session("editor", issuer=project),
        emulator.mint_session("admin", extra_claims={"dct": "T1", "aud": project}),
        emulator.mint_session("editor", extra_claims={"roles": "mlflow-editor"}),
        emulator.mint_session("nobody", drop_claims=("roles", "permissions", "tenants")),
    ]


def test_validate_session_matches_the_sdk(
    descope_emulator: DescopeEmulator, ours: DescopeClient, sdk: Any
) -> None:
    for token in population(descope_emulator):
        mine = ours.validate_session(token)
        theirs = sdk.validate_session(token)

        for field in COMPARED:
            assert mine[field] == theirs[field], field
        assert mine["sessionToken"] == theirs["sessionToken"]
        assert set(mine) == set(theirs)


def test_permission_helpers_match_the_sdk(
    descope_emulator: DescopeEmulator, ours: DescopeClient, sdk: Any
) -> None:
    for token in population(descope_emulator):
        mine, theirs = ours.validate_session(token), sdk.validate_session(token)
        for wanted in (["mlflow:read"], ["mlflow-editor"], ["admin"], [], ["x", "admin"]):
            assert ours.validate_permissions(mine, wanted) == sdk.validate_permissions(
                theirs, wanted
            )
            assert ours.validate_roles(mine, wanted) == sdk.validate_roles(theirs, wanted)
            for tenant in ("T1", "T2", "T3"):
                assert ours.validate_tenant_roles(mine, tenant, wanted) == (
                    sdk.validate_tenant_roles(theirs, tenant, wanted)
                )
                assert ours.validate_tenant_permissions(mine, tenant, wanted) == (
                    sdk.validate_tenant_permissions(theirs, tenant, wanted)
                )


def test_refresh_and_exchange_match_the_sdk(
    descope_emulator: DescopeEmulator, ours: DescopeClient, sdk: Any
) -> None:
    descope_emulator.create_user("editor", roles=["mlflow-editor"])
    refresh = descope_emulator.mint_refresh("editor")
    key = descope_emulator.create_access_key("ci", roles=["mlflow-viewer"])

    mine, theirs = ours.refresh_session(refresh), sdk.refresh_session(refresh)
    for field in COMPARED:
        assert mine[field] == theirs[field], field
    assert mine["refreshSessionToken"]["jwt"] == theirs["refreshSessionToken"]["jwt"]
    assert mine["cookieData"].keys() == theirs["cookieData"].keys()

    mine, theirs = ours.exchange_access_key(key), sdk.exchange_access_key(key)
    for field in ("roles", "permissions", "tenants", "keyId", "projectId"):
        assert mine[field] == theirs[field], field


def test_where_the_sdk_is_lax_we_refuse(
    descope_emulator: DescopeEmulator, ours: DescopeClient, sdk: Any
) -> None:
    descope_emulator.create_user("editor", roles=["mlflow-editor"])
    lax = [
        descope_emulator.mint_refresh("editor"),
        descope_emulator.mint_session("editor", drop_claims=("exp",)),
        descope_emulator.mint_session("editor", issuer="https://api.descope.com/P2SomeoneElse"),
    ]
    for token in lax:
        assert sdk.validate_session(token)["userId"]
        with pytest.raises(InvalidTokenError):
            ours.validate_session(token)
