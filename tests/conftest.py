"""Shared fixtures: a compiled core pointed at the local Descope emulator,
and users with typical grants.

The emulator fixtures (`descope_emulator`, `descope_emulator_session`) come
from the package's pytest plugin (`mlflow_descope_auth.testing`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pytest

from mlflow_descope_auth import _core

if TYPE_CHECKING:
    from mlflow_descope_auth.testing import DescopeEmulator

CoreFactory = Callable[..., _core.Core]


@pytest.fixture
def make_core(descope_emulator: DescopeEmulator) -> CoreFactory:
    """Builds cores for the test's emulator; keyword arguments override."""

    def build(**overrides: Any) -> _core.Core:
        options: dict[str, Any] = {
            "base_url": descope_emulator.base_url,
            "http_timeout_seconds": 1.0,
            **overrides,
        }
        return _core.Core(descope_emulator.project_id, **options)

    return build


@pytest.fixture
def core(make_core: CoreFactory) -> _core.Core:
    return make_core()


@pytest.fixture
def alice(descope_emulator: DescopeEmulator) -> str:
    """An editor with an email and name, a viewer in tenant T1 and nothing in T2."""
    descope_emulator.create_user(
        "alice",
        email="alice@example.com",
        name="Alice",
        roles=["mlflow-editor"],
        permissions=["mlflow:read"],
        tenants={"T1": {"roles": ["mlflow-viewer"], "permissions": []}, "T2": {}},
        custom_claims={"team": "ml"},
    )
    return "alice"
