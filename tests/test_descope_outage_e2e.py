"""Descope unreachable: at start, later, and rate limiting us (contract §3, §4)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from mlflow_descope_auth.testing import DescopeEmulator

from e2e_helpers import (
    TIMEOUT,
    bearer,
    cookie_header,
    expired_session,
    make_cast,
    search_experiments,
)
from e2e_servers import SERVER_MODES, ServerPool, descope_env

HTTP_TIMEOUT = 2


@pytest.fixture
def emu() -> Iterator[DescopeEmulator]:
    with DescopeEmulator(project_id="P2PluginOutage0001") as emulator:
        yield emulator


def outage_env(emu: DescopeEmulator) -> dict[str, str]:
    return descope_env(emu, DESCOPE_HTTP_TIMEOUT_SECONDS=str(HTTP_TIMEOUT))


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_key_set_unreachable_at_start_gives_503_within_the_timeout(
    mlflow_server: ServerPool, emu: DescopeEmulator, mode: str
) -> None:
    cast = make_cast(emu)
    emu.set_fault("keys", hang=HTTP_TIMEOUT * 5)
    server = mlflow_server.start(outage_env(emu), mode=mode)

    started = time.monotonic()
    response = search_experiments(server, bearer(emu.mint_session(cast.editor.login_id)))
    elapsed = time.monotonic() - started

    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert elapsed < HTTP_TIMEOUT * 2 + 2
    assert "Traceback" not in response.text


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_cached_keys_keep_working_when_descope_goes_away(
    mlflow_server: ServerPool, emu: DescopeEmulator, mode: str
) -> None:
    cast = make_cast(emu)
    server = mlflow_server.start(outage_env(emu), mode=mode)
    assert (
        search_experiments(server, bearer(emu.mint_session(cast.editor.login_id))).status_code
        == 200
    )

    emu.set_fault("keys", close=True)
    fresh = emu.mint_session(cast.viewer.login_id)
    assert search_experiments(server, bearer(fresh)).status_code == 200

    emu.set_fault("refresh", status=500)
    headers = cookie_header(
        DS=expired_session(emu, cast.editor.login_id), DSR=emu.mint_refresh(cast.editor.login_id)
    )
    refused = search_experiments(server, headers)
    assert refused.status_code == 503, refused.text
    assert "Retry-After" in refused.headers


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_descope_rate_limit_becomes_429_with_retry_after(
    mlflow_server: ServerPool, emu: DescopeEmulator, mode: str
) -> None:
    key = emu.create_access_key("limited-bot", roles=["mlflow-viewer"])
    server = mlflow_server.start(outage_env(emu), mode=mode)
    emu.set_fault("exchange", status=429, retry_after=7)
    response = requests.post(
        server.url("/api/2.0/mlflow/experiments/search"),
        json={},
        headers=bearer(key),
        timeout=TIMEOUT,
    )
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "7"
