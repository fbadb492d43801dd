"""Refresh with rotating refresh tokens, against a real server in both modes (contract §4)."""

from __future__ import annotations

import concurrent.futures

from e2e_helpers import (
    Cast,
    cookie_header,
    cookies_by_name,
    deleted_cookies,
    expired_session,
    search_experiments,
)
from e2e_servers import RunningServer
from mlflow_descope_auth.testing import DescopeEmulator

EMULATOR_OPTIONS = {"project_id": "P2PluginRotation01", "rotate_refresh_tokens": True}


def test_rotated_refresh_token_is_stored_and_refreshes_again(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    login_id = cast.editor.login_id
    first_refresh = emu.mint_refresh(login_id)
    response = search_experiments(
        server, cookie_header(DS=expired_session(emu, login_id), DSR=first_refresh)
    )
    assert response.status_code == 200, response.text
    cookies = cookies_by_name(response)
    second_refresh, attributes = cookies["DSR"]
    assert second_refresh != first_refresh
    assert "httponly" in attributes
    assert "DS" in cookies
    assert deleted_cookies(response) == []

    later = search_experiments(
        server, cookie_header(DS=expired_session(emu, login_id), DSR=second_refresh)
    )
    assert later.status_code == 200, later.text
    assert cookies_by_name(later)["DSR"][0] not in (first_refresh, second_refresh)


def test_parallel_requests_with_one_expired_pair_share_one_refresh(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    login_id = cast.viewer.login_id
    headers = cookie_header(DS=expired_session(emu, login_id), DSR=emu.mint_refresh(login_id))
    before = emu.calls("refresh")
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: search_experiments(server, headers), range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert all(deleted_cookies(r) == [] for r in responses)
    assert len({cookies_by_name(r)["DSR"][0] for r in responses}) == 1
    assert emu.calls("refresh") - before == 1
