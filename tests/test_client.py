"""The SDK-compatible client: permission helpers (all-of semantics, odd
shapes), argument checks, and the shared client following set_config."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from mlflow_descope_auth import Config, get_descope_client, set_config
from mlflow_descope_auth.client import DescopeClient
from mlflow_descope_auth.config import reset_config
from mlflow_descope_auth.exceptions import InvalidTokenError

PROJECT = "P2TestProject0001"


@pytest.fixture
def client() -> DescopeClient:
    return DescopeClient(Config(DESCOPE_PROJECT_ID=PROJECT, DESCOPE_BASE_URL="http://127.0.0.1:9"))


RESPONSE: dict[str, Any] = {
    "roles": ["mlflow-editor", "viewer"],
    "permissions": ["mlflow:read", "mlflow:edit"],
    "tenants": {
        "T1": {"roles": ["admin"], "permissions": ["mlflow:manage"]},
        "T2": {},
    },
}


def test_validate_permissions_and_roles_need_all_of_them(client: DescopeClient) -> None:
    assert client.validate_permissions(RESPONSE, ["mlflow:read"])
    assert client.validate_permissions(RESPONSE, ["mlflow:read", "mlflow:edit"])
    assert not client.validate_permissions(RESPONSE, ["mlflow:read", "mlflow:manage"])
    assert client.validate_roles(RESPONSE, ["viewer"])
    assert not client.validate_roles(RESPONSE, ["viewer", "admin"])
    assert client.validate_roles(RESPONSE, [])
    assert not client.validate_roles({}, [])


def test_tenant_variants_read_the_tenant_entry(client: DescopeClient) -> None:
    assert client.validate_tenant_roles(RESPONSE, "T1", ["admin"])
    assert client.validate_tenant_permissions(RESPONSE, "T1", ["mlflow:manage"])
    assert not client.validate_tenant_roles(RESPONSE, "T2", ["admin"])
    assert client.validate_tenant_roles(RESPONSE, "T2", [])
    assert not client.validate_tenant_roles(RESPONSE, "T3", [])
    assert client.get_matched_tenant_roles(RESPONSE, "T1", ["admin", "x"]) == ["admin"]
    assert client.get_matched_permissions(RESPONSE, ["mlflow:edit", "y"]) == ["mlflow:edit"]


def test_a_lone_string_is_one_item_and_never_iterated(client: DescopeClient) -> None:
    odd = {"roles": "admin", "permissions": None, "tenants": ["T1"]}
    assert client.validate_roles(odd, ["admin"])
    assert not client.validate_roles(odd, ["a"])
    assert not client.validate_permissions(odd, ["mlflow:read"])
    assert client.validate_tenant_roles(odd, "T1", [])
    assert client.validate_roles(odd, "admin")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.validate_session(""),
        lambda c: c.refresh_session(""),
        lambda c: c.validate_and_refresh_session("", "r"),
        lambda c: c.logout(""),
        lambda c: c.logout_all(""),
        lambda c: c.me(""),
        lambda c: c.exchange_access_key(""),
        lambda c: c.select_tenant("T1", ""),
    ],
)
def test_empty_arguments_are_refused(client: DescopeClient, call: Any) -> None:
    with pytest.raises(InvalidTokenError):
        call(client)


def test_shared_client_is_rebuilt_when_the_config_changes() -> None:
    reset_config()
    try:
        set_config(Config(DESCOPE_PROJECT_ID=PROJECT, DESCOPE_BASE_URL="http://127.0.0.1:9"))
        first = get_descope_client()
        assert get_descope_client() is first
        assert first.core.project_id == PROJECT

        set_config(Config(DESCOPE_PROJECT_ID="P2Other", DESCOPE_BASE_URL="http://127.0.0.1:9"))
        second = get_descope_client()
        assert second is not first
        assert second.core is not first.core
        assert second.core.project_id == "P2Other"
    finally:
        reset_config()


def test_package_import_is_cheap() -> None:
    probe = (
        "import sys, mlflow_descope_auth; "
        "print(sorted(m for m in ('mlflow', 'flask', 'starlette', 'dotenv') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
