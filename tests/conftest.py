"""Shared fixtures: a compiled core pointed at the local Descope emulator,
and users with typical grants.

The emulator fixtures (`descope_emulator`, `descope_emulator_session`) come
from the package's pytest plugin (`mlflow_descope_auth.testing`). Servers for
the end-to-end tests are real `mlflow server` processes (`e2e_servers.py`).

An end-to-end module shares one emulator (`emu`), its demo people (`cast`)
and one server per mode (`server`); it tunes them with module attributes:
`EMULATOR_OPTIONS` (keyword arguments of `DescopeEmulator`), `SERVER_ENV`
(extra server environment) and `STATIC_PREFIX`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from e2e_helpers import Cast, make_cast
from e2e_servers import SERVER_MODES, RunningServer, ServerPool, descope_env, start_server
from mlflow_descope_auth import _core
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


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[ServerPool]:
    """Factory: `mlflow_server.start(env, mode=..., workers=..., static_prefix=...)`."""
    pool = ServerPool(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def mlflow_server_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The same factory, for servers a whole module shares."""
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def emu(request: pytest.FixtureRequest) -> Iterator[DescopeEmulator]:
    """The module's emulator, built from its `EMULATOR_OPTIONS`."""
    with DescopeEmulator(**getattr(request.module, "EMULATOR_OPTIONS", {})) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def cast(emu: DescopeEmulator) -> Cast:
    return make_cast(emu)


@pytest.fixture(scope="module", params=SERVER_MODES)
def server(
    request: pytest.FixtureRequest, emu: DescopeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server per mode trusting `emu`, with the module's `SERVER_ENV` and `STATIC_PREFIX`."""
    running = start_server(
        tmp_path_factory.mktemp(request.param),
        descope_env(emu, **getattr(request.module, "SERVER_ENV", {})),
        mode=request.param,
        static_prefix=getattr(request.module, "STATIC_PREFIX", ""),
    )
    yield running
    running.stop()
