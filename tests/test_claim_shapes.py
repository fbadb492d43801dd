"""Property test: whatever JSON the `roles`, `permissions` and `tenants`
claims hold, a signed token verifies, nothing crashes, a string is never
iterated per character, and the level matches a plain Python model of §5."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_descope_auth import _core

if TYPE_CHECKING:
    from mlflow_descope_auth.testing import DescopeEmulator

pytest.importorskip("mlflow_descope_auth.testing", reason="the emulator branch is not merged")

# Single letters as admin roles: iterating "admin" per character would match.
ADMIN_ROLES = ["a", "d", "admin"]
ROLE_LEVELS = {"mlflow-manager": 3, "mlflow-editor": 2, "mlflow-viewer": 1}
PERMISSION_LEVELS = {"mlflow:manage": 3, "mlflow:edit": 2, "mlflow:write": 2, "mlflow:read": 1}
LEVELS = ["NO_PERMISSIONS", "READ", "EDIT", "MANAGE"]

names = st.sampled_from(
    ["admin", "a", "mlflow-editor", "mlflow-viewer", "mlflow:read", "mlflow:manage", "T1", "x"]
)
scalars = st.none() | st.booleans() | st.integers(-5, 5) | names
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)


def listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def model_tenants(value: Any) -> dict[str, dict[str, list[str]]]:
    if isinstance(value, dict):
        return {
            tenant: {
                "roles": listed(entry.get("roles")) if isinstance(entry, dict) else [],
                "permissions": listed(entry.get("permissions")) if isinstance(entry, dict) else [],
            }
            for tenant, entry in value.items()
        }
    return {tenant: {"roles": [], "permissions": []} for tenant in listed(value)}


def model_level(roles: list[str], permissions: list[str], default: str) -> str:
    found = [3 for role in roles if role in ADMIN_ROLES]
    found += [ROLE_LEVELS[role] for role in roles if role in ROLE_LEVELS]
    found += [PERMISSION_LEVELS[p] for p in permissions if p in PERMISSION_LEVELS]
    return LEVELS[max(found)] if found else default


@pytest.fixture(scope="module")
def cores(descope_emulator_session: DescopeEmulator) -> tuple[_core.Core, _core.Core]:
    emulator = descope_emulator_session
    emulator.create_user("shapes")
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "admin_roles": ADMIN_ROLES,
        "default_permission": "NO_PERMISSIONS",
    }
    project = _core.Core(emulator.project_id, **options)
    tenant = _core.Core(emulator.project_id, tenant="T1", **options)
    return project, tenant


@settings(max_examples=80, deadline=None)
@given(roles=json_values, permissions=json_values, tenants=json_values)
def test_any_claim_shape_maps_like_the_model(
    descope_emulator_session: DescopeEmulator,
    cores: tuple[_core.Core, _core.Core],
    roles: Any,
    permissions: Any,
    tenants: Any,
) -> None:
    claims = {"roles": roles, "permissions": permissions, "tenants": tenants}
    token = descope_emulator_session.mint_session("shapes", extra_claims=claims)
    project, tenant = cores

    session = project.validate_session(token)
    assert session.roles == listed(roles)
    assert session.permissions == listed(permissions)
    assert session.tenants == model_tenants(tenants)
    assert session.level == model_level(listed(roles), listed(permissions), "NO_PERMISSIONS")

    in_tenant = model_tenants(tenants).get("T1")
    expected = (
        "NO_PERMISSIONS"
        if in_tenant is None
        else model_level(in_tenant["roles"], in_tenant["permissions"], "NO_PERMISSIONS")
    )
    assert tenant.validate_session(token).level == expected
