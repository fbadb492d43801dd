"""The gate and the login flow under MLflow's `--static-prefix` (contract §6)."""

from __future__ import annotations

import requests

from e2e_helpers import (
    TIMEOUT,
    Cast,
    assert_json_401,
    browser,
    cookie_header,
    cookies_by_name,
)
from e2e_servers import RunningServer
from mlflow_descope_auth.testing import DescopeEmulator

PREFIX = "/mlflow"
EMULATOR_OPTIONS = {"project_id": "P2PluginPrefix0001"}
STATIC_PREFIX = PREFIX


def test_page_load_redirects_to_the_prefixed_login(server: RunningServer) -> None:
    response = requests.get(
        server.url("/"), headers=browser(), timeout=TIMEOUT, allow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/mlflow/auth/login?next=%2Fmlflow%2F"
    login = requests.get(server.base_url + response.headers["Location"], timeout=TIMEOUT)
    assert login.status_code == 200
    assert "/mlflow/auth/static/login.js" in login.text


def test_sign_in_sets_cookies_on_the_prefix_path_and_they_authenticate(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    tokens = emu.login(cast.editor.login_id)
    response = requests.post(
        server.url("/auth/session"),
        json={"sessionJwt": tokens["sessionJwt"], "refreshJwt": tokens["refreshJwt"]},
        headers={"Origin": server.base_url},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json()["redirect"] == "/mlflow/"
    cookies = cookies_by_name(response)
    assert cookies["DS"][1]["path"] == "/mlflow/"
    assert cookies["DSR"][1]["path"] == "/mlflow/"

    search = requests.post(
        server.url("/ajax-api/2.0/mlflow/experiments/search"),
        json={"max_results": 1},
        headers=cookie_header(DS=cookies["DS"][0]),
        timeout=TIMEOUT,
    )
    assert search.status_code == 200, search.text


def test_prefixed_api_without_credential_is_401_and_health_is_public(server: RunningServer) -> None:
    assert_json_401(
        requests.post(server.url("/api/2.0/mlflow/experiments/search"), json={}, timeout=TIMEOUT)
    )
    assert requests.get(server.url("/health"), timeout=TIMEOUT).status_code == 200
