"""Descope unreachable: at start, later, and rate limiting us (contract §3, §4)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from e2e_helpers import (
    Cast,
    bearer,
    cookie_header,
    expired_session,
    make_cast,
    search_experiments,
)
from e2e_servers import SERVER_MODES, RunningServer, ServerPool, descope_env, start_server
from mlflow_descope_auth.testing import DescopeEmulator

HTTP_TIMEOUT = 2


def outage_env(emu: DescopeEmulator) -> dict[str, str]:
    return descope_env(emu, DESCOPE_HTTP_TIMEOUT_SECONDS=str(HTTP_TIMEOUT))


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_key_set_unreachable_at_start_gives_503_within_the_timeout(
    mlflow_server: ServerPool, mode: str
) -> None:
    with DescopeEmulator(project_id="P2PluginOutage0001") as emu:
        cast = make_cast(emu)
        emu.set_fault("keys", hang=HTTP_TIMEOUT * 5)
        server = mlflow_server.start(outage_env(emu), mode=mode)

        started = time.monotonic()
        response = search_experiments(server, bearer(emu.mint_session(cast.editor.login_id)))
        elapsed = time.monotonic() - started

        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "Traceback" not in response.text
        assert elapsed < HTTP_TIMEOUT * 2 + 2


# --- Descope going away after start: one server per mode --------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[DescopeEmulator]:
    with DescopeEmulator(project_id="P2PluginOutage0002") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def cast(emu: DescopeEmulator) -> Cast:
    return make_cast(emu)


@pytest.fixture(scope="module", params=SERVER_MODES)
def server(
    request: pytest.FixtureRequest, emu: DescopeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp(request.param), outage_env(emu), mode=request.param
    )
    yield running
    running.stop()


@pytest.fixture
def healthy_descope(emu: DescopeEmulator) -> Iterator[DescopeEmulator]:
    emu.clear_faults()
    yield emu
    emu.clear_faults()


def test_cached_keys_keep_working_when_descope_goes_away(
    server: RunningServer, healthy_descope: DescopeEmulator, cast: Cast
) -> None:
    emu = healthy_descope
    first = search_experiments(server, bearer(emu.mint_session(cast.editor.login_id)))
    assert first.status_code == 200

    emu.set_fault("keys", close=True)
    fresh = emu.mint_session(cast.viewer.login_id)
    assert search_experiments(server, bearer(fresh)).status_code == 200


def test_refresh_while_descope_fails_is_503_with_retry_after(
    server: RunningServer, healthy_descope: DescopeEmulator, cast: Cast
) -> None:
    emu = healthy_descope
    emu.set_fault("refresh", status=500)
    headers = cookie_header(
        DS=expired_session(emu, cast.editor.login_id), DSR=emu.mint_refresh(cast.editor.login_id)
    )
    refused = search_experiments(server, headers)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in refused.headers


def test_descope_rate_limit_becomes_429_with_retry_after(
    server: RunningServer, healthy_descope: DescopeEmulator
) -> None:
    emu = healthy_descope
    key = emu.create_access_key(f"limited-bot-{server.mode}", roles=["mlflow-viewer"])
    emu.set_fault("exchange", status=429, retry_after=7)
    response = search_experiments(server, bearer(key))
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
