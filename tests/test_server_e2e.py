"""`mlflow server --app-name descope-auth`, end to end, in both server modes (issue 4)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from e2e_helpers import (
    TIMEOUT,
    Cast,
    assert_json_401,
    basic_auth,
    bearer,
    browser,
    cookie_header,
    cookies_by_name,
    deleted_cookies,
    expired_session,
    search_experiments,
    unverified_claims,
)
from e2e_servers import RunningServer
from mlflow_descope_auth.cookies import CHUNK_SIZE
from mlflow_descope_auth.testing import DescopeEmulator
from test_hostile2_e2e import send

PROJECT_ID = "P2PluginEndToEnd01"
EVIL = "https://evil.example"
EMULATOR_OPTIONS = {"project_id": PROJECT_ID}
SERVER_ENV = {"DESCOPE_DEFAULT_PERMISSION": "NO_PERMISSIONS"}


def session_for(emu: DescopeEmulator, person: Any) -> str:
    return str(emu.mint_session(person.login_id))


# --- no credential -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/2.0/mlflow/experiments/search", "/ajax-api/2.0/mlflow/experiments/search", "/v1/traces"],
)
def test_api_call_without_credential_is_401_json(server: RunningServer, path: str) -> None:
    response = requests.post(
        server.url(path), json={}, headers=browser(), timeout=TIMEOUT, allow_redirects=False
    )
    assert_json_401(response)


def test_browser_navigation_without_credential_redirects_to_login(server: RunningServer) -> None:
    response = requests.get(
        server.url("/"), headers=browser(), timeout=TIMEOUT, allow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=%2F"


def test_browser_navigation_with_rejected_cookie_clears_it(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = browser(cookie_header(DS=expired_session(emu, cast.editor.login_id)))
    response = requests.get(
        server.url("/"), params={"x": "1"}, headers=headers, timeout=TIMEOUT, allow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=%2F%3Fx%3D1"
    assert "DS" in deleted_cookies(response)


# --- accepted credentials ------------------------------------------------------------


def credential_headers(kind: str, emu: DescopeEmulator, cast: Cast) -> dict[str, str]:
    session = session_for(emu, cast.editor)
    if kind == "session-cookie":
        return cookie_header(DS=session)
    if kind == "bearer-jwt":
        return bearer(session)
    if kind == "bearer-access-key":
        return bearer(cast.access_key)
    return basic_auth("anyone", cast.access_key if kind == "basic-access-key" else session)


@pytest.mark.parametrize(
    "kind", ["session-cookie", "bearer-jwt", "bearer-access-key", "basic-access-key", "basic-jwt"]
)
def test_each_kind_of_credential_is_accepted(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, kind: str
) -> None:
    response = search_experiments(server, credential_headers(kind, emu, cast))
    assert response.status_code == 200, response.text
    assert "experiments" in response.json() or response.json() == {}


def test_access_key_is_exchanged_once_not_per_request(
    server: RunningServer, emu: DescopeEmulator
) -> None:
    key = emu.create_access_key(f"once-{server.mode}", roles=["mlflow-viewer"])
    before = emu.calls("exchange")
    for _ in range(4):
        assert search_experiments(server, bearer(key)).status_code == 200
    assert search_experiments(server, basic_auth("ci", key)).status_code == 200
    assert emu.calls("exchange") - before == 1


def test_invalid_bearer_is_401_even_with_a_valid_cookie(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = {**bearer("not.a.token"), **cookie_header(DS=session_for(emu, cast.editor))}
    assert_json_401(search_experiments(server, headers))


def test_gateway_invalid_x_mlflow_authorization_never_falls_back(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = {**bearer(session_for(emu, cast.admin)), "X-MLflow-Authorization": "Bearer junk"}
    response = requests.post(
        server.url("/gateway/chat/mlflow/invocations"), json={}, headers=headers, timeout=TIMEOUT
    )
    assert_json_401(response)


def test_gateway_provider_key_never_reaches_descope(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    before = emu.calls("exchange")
    provider = bearer("sk-proj-provider-key-for-upstream")
    response = requests.post(
        server.url("/gateway/chat/mlflow/invocations"), json={}, headers=provider, timeout=TIMEOUT
    )
    assert_json_401(response)
    assert "X-MLflow-Authorization" in response.json()["message"]
    # With the MLflow credential where the gateway expects it, the call passes the gate
    # (MLflow itself then answers: there is no such endpoint; under gunicorn the path is
    # not a route at all, which only MANAGE may reach).
    headers = {**provider, "X-MLflow-Authorization": f"Bearer {session_for(emu, cast.admin)}"}
    response = requests.post(
        server.url("/gateway/chat/mlflow/invocations"), json={}, headers=headers, timeout=TIMEOUT
    )
    assert response.status_code not in (401, 403), response.text
    assert emu.calls("exchange") == before


# --- refresh -----------------------------------------------------------------------


def test_expired_session_with_refresh_cookie_is_refreshed(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = cookie_header(
        DS=expired_session(emu, cast.editor.login_id), DSR=emu.mint_refresh(cast.editor.login_id)
    )
    response = search_experiments(server, headers)
    assert response.status_code == 200, response.text
    cookies = cookies_by_name(response)
    value, attributes = cookies["DS"]
    exp = unverified_claims(value)["exp"]
    assert "httponly" in attributes
    assert attributes["samesite"] == "Lax"
    assert attributes["path"] == "/"
    assert 0 < int(attributes["max-age"]) <= exp - time.time() + 1
    assert deleted_cookies(response) == []


def test_session_cookie_dropped_by_the_browser_is_restored_from_refresh(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    response = search_experiments(server, cookie_header(DSR=emu.mint_refresh(cast.viewer.login_id)))
    assert response.status_code == 200, response.text
    assert "DS" in cookies_by_name(response)


def test_parallel_requests_with_one_expired_pair_all_succeed(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = cookie_header(
        DS=expired_session(emu, cast.editor.login_id), DSR=emu.mint_refresh(cast.editor.login_id)
    )
    before = emu.calls("refresh")
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: search_experiments(server, headers), range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert all(deleted_cookies(r) == [] for r in responses)
    assert emu.calls("refresh") - before == 1


def test_refused_refresh_is_401_for_api_calls(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = cookie_header(DS=expired_session(emu, cast.editor.login_id), DSR="not-a-refresh")
    assert_json_401(search_experiments(server, headers))


# --- login, session, logout ------------------------------------------------------------


def same_origin(server: RunningServer) -> dict[str, str]:
    return {"Origin": server.base_url}


def post_session(
    server: RunningServer, payload: dict[str, Any], **headers: str
) -> requests.Response:
    return requests.post(
        server.url("/auth/session"),
        json=payload,
        headers={**same_origin(server), **headers},
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def test_login_page_renders_the_web_component_safely(
    server: RunningServer, emu: DescopeEmulator
) -> None:
    response = requests.get(
        server.url("/auth/login"), params={"next": "/x"}, headers=browser(), timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert f'project-id="{emu.project_id}"' in response.text
    assert 'flow-id="sign-up-or-in"' in response.text
    assert f'src="{emu.base_url}/web-component/index.js"' in response.text
    # MLflow's own security headers set X-Frame-Options (SAMEORIGIN by default);
    # frame-ancestors 'none' is what forbids framing the login page.
    assert response.headers["X-Frame-Options"] in ("DENY", "SAMEORIGIN")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    script = requests.get(server.url("/auth/static/login.js"), timeout=TIMEOUT)
    assert script.status_code == 200
    assert "innerHTML" not in script.text
    assert "document.cookie" not in script.text


def test_session_endpoint_sets_both_cookies_from_verified_tokens(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    tokens = emu.login(cast.editor.login_id)
    response = post_session(
        server, {"sessionJwt": tokens["sessionJwt"], "refreshJwt": tokens["refreshJwt"]}
    )
    assert response.status_code == 200, response.text
    cookies = cookies_by_name(response)
    for name in ("DS", "DSR"):
        value, attributes = cookies[name]
        assert "httponly" in attributes
        assert attributes["samesite"] == "Lax"
        assert int(attributes["max-age"]) <= unverified_claims(value)["exp"] - time.time() + 1
    assert response.json()["redirect"] == "/"


@pytest.mark.parametrize(
    ("requested", "landing"),
    [
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%09/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok?x=1", "/ok?x=1"),
    ],
)
def test_login_lands_on_next_only_when_it_is_local(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, requested: str, landing: str
) -> None:
    tokens = emu.login(cast.viewer.login_id)
    response = post_session(server, {"sessionJwt": tokens["sessionJwt"], "next": requested})
    assert response.status_code == 200, response.text
    assert response.json()["redirect"] == landing


@pytest.mark.parametrize(
    "headers",
    [{"Origin": EVIL}, {"Origin": "null"}, {"Origin": "", "Sec-Fetch-Site": "cross-site"}],
)
def test_session_endpoint_refuses_cross_site_posts(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, headers: dict[str, str]
) -> None:
    tokens = emu.login(cast.viewer.login_id)
    request_headers = {k: v for k, v in headers.items() if v}
    response = requests.post(
        server.url("/auth/session"),
        json={"sessionJwt": tokens["sessionJwt"]},
        headers=request_headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers


def test_session_endpoint_refuses_a_refresh_token_as_session(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    response = post_session(server, {"sessionJwt": emu.mint_refresh(cast.viewer.login_id)})
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_logout_page_asks_for_confirmation(server: RunningServer) -> None:
    response = requests.get(server.url("/auth/logout"), headers=browser(), timeout=TIMEOUT)
    assert response.status_code == 200
    assert '<form method="post" action="/auth/logout">' in response.text


def test_logout_revokes_the_refresh_token_and_clears_cookies(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    tokens = emu.login(cast.editor.login_id)
    refresh = tokens["refreshJwt"]
    before = emu.calls("logout")
    response = requests.post(
        server.url("/auth/logout"),
        headers={**same_origin(server), **cookie_header(DS=tokens["sessionJwt"], DSR=refresh)},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    assert {"DS", "DSR"} <= set(deleted_cookies(response))
    assert emu.calls("logout") - before == 1

    replay = cookie_header(DS=expired_session(emu, cast.editor.login_id), DSR=refresh)
    assert_json_401(search_experiments(server, replay))


def test_auth_user_describes_the_signed_in_user(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    response = requests.get(
        server.url("/auth/user"), headers=bearer(session_for(emu, cast.editor)), timeout=TIMEOUT
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == cast.editor.user_id
    assert body["username"] == cast.editor.user_id
    assert body["level"] == "EDIT"
    assert "mlflow-editor" in body["roles"]
    assert set(body) >= {"email", "name", "permissions", "tenants"}
    assert_json_401(requests.get(server.url("/auth/user"), timeout=TIMEOUT))


# --- cross-site requests -------------------------------------------------------------------

GRAPHQL_QUERY = {"query": 'query { test(inputString: "hi") { output } }'}


@pytest.mark.parametrize(
    ("path", "payload"),
    [("/api/2.0/mlflow/experiments/create", {"name": "csrf"}), ("/graphql", GRAPHQL_QUERY)],
)
def test_cookie_authenticated_cross_site_post_is_refused(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, path: str, payload: dict[str, Any]
) -> None:
    headers = {"Origin": EVIL, **cookie_header(DS=session_for(emu, cast.admin))}
    response = requests.post(server.url(path), json=payload, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"


LOCAL_PAGE = "http://localhost:9"


@pytest.mark.parametrize("path", ["/api/2.0/mlflow/experiments/create", "/graphql"])
def test_local_page_cannot_pass_the_cross_site_check_with_x_forwarded_host(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, path: str
) -> None:
    # MLflow's CORS grants any localhost origin a credentialed preflight with
    # any header, so a page on another local port can send X-Forwarded-Host
    # naming itself; the browser still marks the request cross-site.
    preflight = requests.options(
        server.url(path),
        headers={
            "Origin": LOCAL_PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-forwarded-host",
        },
        timeout=TIMEOUT,
    )
    assert preflight.headers.get("Access-Control-Allow-Credentials") == "true"
    headers = {
        "Origin": LOCAL_PAGE,
        "Sec-Fetch-Site": "cross-site",
        "X-Forwarded-Host": LOCAL_PAGE.split("//", 1)[1],
        **cookie_header(DS=session_for(emu, cast.admin)),
    }
    payload = GRAPHQL_QUERY if path == "/graphql" else {"name": f"csrf-{uuid.uuid4().hex}"}
    response = requests.post(server.url(path), json=payload, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_method_not_in_upper_case_gets_400_in_both_modes(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, method: str
) -> None:
    # Sent as given (requests would upper-case the method).
    reply = send(
        server,
        method,
        server.prefix + "/api/2.0/mlflow/experiments/search?max_results=1",
        [f"Authorization: Bearer {session_for(emu, cast.admin)}"],
    )
    assert reply.status == 400, reply.body


@pytest.mark.parametrize(
    ("fetch_site", "expected"), [("cross-site", 403), ("same-origin", 200), ("none", 200)]
)
def test_cookie_get_of_a_route_above_read_must_come_from_this_site(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, fetch_site: str, expected: int
) -> None:
    # SameSite=Lax cookies ride along on a top-level cross-site navigation, and
    # some GET routes above READ start work (the assistant's stream, the
    # gateway proxy); listing webhooks (MANAGE) stands in for them.
    headers = {"Sec-Fetch-Site": fetch_site, **cookie_header(DS=session_for(emu, cast.admin))}
    response = requests.get(
        server.url("/ajax-api/2.0/mlflow/webhooks"), headers=headers, timeout=TIMEOUT
    )
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["message"] == "cross-site request refused"


def test_cookie_get_of_a_read_route_from_another_site_is_served(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", **cookie_header(DS=session_for(emu, cast.viewer))}
    response = requests.get(
        server.url("/ajax-api/2.0/mlflow/experiments/get-by-name"),
        params={"experiment_name": "Default"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text


def test_session_endpoint_refuses_a_local_page_with_x_forwarded_host(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    tokens = emu.login(cast.viewer.login_id)
    headers = {
        "Origin": LOCAL_PAGE,
        "Sec-Fetch-Site": "cross-site",
        "X-Forwarded-Host": LOCAL_PAGE.split("//", 1)[1],
    }
    response = post_session(server, {"sessionJwt": tokens["sessionJwt"]}, **headers)
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers


def test_bearer_cross_site_post_is_not_blocked_by_the_plugin(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = {"Origin": EVIL, **bearer(session_for(emu, cast.admin))}
    response = requests.post(
        server.url("/graphql"), json=GRAPHQL_QUERY, headers=headers, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    # On api/ paths MLflow's own cross-origin block may answer; never the plugin's JSON 403.
    api = requests.post(
        server.url("/api/2.0/mlflow/experiments/search"), json={}, headers=headers, timeout=TIMEOUT
    )
    if api.status_code == 403:
        assert not api.headers.get("Content-Type", "").startswith("application/json")


# --- public paths ----------------------------------------------------------------------------


def static_file_paths() -> list[str]:
    import mlflow.server

    build = Path(mlflow.server.__file__).parent / "js" / "build"
    manifest = json.loads((build / "asset-manifest.json").read_text())
    main_js = manifest["files"]["main.js"].lstrip("/").removeprefix("static-files/")
    return [f"/static-files/{main_js}", "/static-files/favicon.ico"]


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/version",
        "/api/3.0/mlflow/server-info",
        "/ajax-api/3.0/mlflow/server-info",
        "/auth/login",
        *static_file_paths(),
    ],
)
def test_public_paths_need_no_credential_and_echo_no_configuration(
    server: RunningServer, emu: DescopeEmulator, path: str
) -> None:
    response = requests.get(server.url(path), timeout=TIMEOUT, allow_redirects=False)
    assert response.status_code == 200, response.text[:200]
    if path != "/auth/login":
        assert emu.project_id not in response.text
        assert emu.base_url not in response.text
        assert "DESCOPE" not in response.text


# --- levels ---------------------------------------------------------------------------------


def test_level_too_low_is_403_naming_route_and_levels(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    name = f"denied-{uuid.uuid4().hex[:8]}"
    response = requests.post(
        server.url("/api/2.0/mlflow/experiments/create"),
        json={"name": name},
        headers=bearer(session_for(emu, cast.viewer)),
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert body["message"].endswith(f"needs EDIT; {cast.viewer.user_id} has READ")
    allowed = requests.post(
        server.url("/api/2.0/mlflow/experiments/create"),
        json={"name": name},
        headers=bearer(session_for(emu, cast.editor)),
        timeout=TIMEOUT,
    )
    assert allowed.status_code == 200, allowed.text


def test_user_without_permissions_cannot_read(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    response = search_experiments(server, bearer(session_for(emu, cast.nobody)))
    assert response.status_code == 403
    assert "has NO_PERMISSIONS" in response.json()["message"]


def test_unknown_route_needs_manage(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    path = server.url("/api/2.0/mlflow/no-such-endpoint")
    editor = requests.get(path, headers=bearer(session_for(emu, cast.editor)), timeout=TIMEOUT)
    assert editor.status_code == 403
    assert "needs MANAGE" in editor.json()["message"]
    admin = requests.get(path, headers=bearer(session_for(emu, cast.admin)), timeout=TIMEOUT)
    assert admin.status_code == 404


# --- identity inside MLflow (§7) -------------------------------------------------------------


@pytest.mark.parametrize("api", ["api", "ajax-api"])
def test_users_current_reports_the_token_identity(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, api: str
) -> None:
    headers = cookie_header(DS=session_for(emu, cast.editor))
    current = requests.get(
        server.url(f"/{api}/2.0/mlflow/users/current"), headers=headers, timeout=TIMEOUT
    )
    assert current.status_code == 200
    assert current.json() == {
        "user": {"id": cast.editor.user_id, "username": cast.editor.user_id, "is_admin": False},
        "is_basic_auth": False,
    }
    permissions = requests.get(
        server.url(f"/{api}/3.0/mlflow/users/current/permissions"), headers=headers, timeout=TIMEOUT
    )
    assert permissions.status_code == 200
    body = permissions.json()
    assert body["is_admin"] is False
    experiment_rows = [r for r in body["permissions"] if r["resource_type"] == "experiment"]
    assert experiment_rows == [
        {
            "resource_type": "experiment",
            "resource_pattern": "*",
            "permission": "EDIT",
            "workspace": "default",
        }
    ]


def test_users_current_serves_users_without_permissions_and_admins(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    nobody = bearer(session_for(emu, cast.nobody))
    response = requests.get(
        server.url("/api/3.0/mlflow/users/current/permissions"), headers=nobody, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert {row["permission"] for row in response.json()["permissions"]} == {"NO_PERMISSIONS"}
    admin = bearer(session_for(emu, cast.admin))
    current = requests.get(
        server.url("/api/2.0/mlflow/users/current"), headers=admin, timeout=TIMEOUT
    )
    assert current.json()["user"]["is_admin"] is True


def create_experiment(server: RunningServer, headers: dict[str, str]) -> str:
    response = requests.post(
        server.url("/api/2.0/mlflow/experiments/create"),
        json={"name": f"exp-{uuid.uuid4().hex[:10]}"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["experiment_id"])


def create_run(
    server: RunningServer, headers: dict[str, str], experiment_id: str
) -> dict[str, Any]:
    response = requests.post(
        server.url("/api/2.0/mlflow/runs/create"),
        json={
            "experiment_id": experiment_id,
            "user_id": "mallory",
            "tags": [{"key": "mlflow.user", "value": "mallory"}, {"key": "team", "value": "ml"}],
        },
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["run"])


def test_created_run_records_the_authenticated_user(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    headers = bearer(session_for(emu, cast.editor))
    run = create_run(server, headers, create_experiment(server, headers))
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    assert run["info"]["user_id"] == cast.editor.user_id
    assert tags["mlflow.user"] == cast.editor.user_id
    assert tags["team"] == "ml"


@pytest.mark.parametrize(
    ("endpoint", "payload"),
    [
        ("runs/set-tag", {"key": "mlflow.user", "value": "mallory"}),
        ("runs/delete-tag", {"key": "mlflow.user"}),
        ("runs/log-batch", {"tags": [{"key": "mlflow.user", "value": "mallory"}]}),
    ],
)
def test_only_manage_may_retag_mlflow_user(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, endpoint: str, payload: dict[str, Any]
) -> None:
    editor = bearer(session_for(emu, cast.editor))
    run_id = create_run(server, editor, create_experiment(server, editor))["info"]["run_id"]
    url = server.url(f"/api/2.0/mlflow/{endpoint}")
    refused = requests.post(
        url, json={"run_id": run_id, **payload}, headers=editor, timeout=TIMEOUT
    )
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    admin = bearer(session_for(emu, cast.admin))
    accepted = requests.post(
        url, json={"run_id": run_id, **payload}, headers=admin, timeout=TIMEOUT
    )
    assert accepted.status_code == 200, accepted.text


def test_native_fastapi_route_sees_the_username(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    if server.mode != "uvicorn":
        pytest.skip("the MCP server registry is a native FastAPI route: uvicorn only")
    response = requests.post(
        server.url("/api/3.0/mlflow/mcp-servers"),
        json={"name": f"com.example/mcp-{uuid.uuid4().hex[:8]}"},
        headers=bearer(session_for(emu, cast.admin)),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json()["created_by"] == cast.admin.user_id


# --- artifacts --------------------------------------------------------------------------------


def test_large_artifact_round_trips_through_the_gate(
    server: RunningServer, emu: DescopeEmulator, cast: Cast, tmp_path: Path
) -> None:
    payload = os.urandom(24 * 1024 * 1024)
    headers = bearer(session_for(emu, cast.editor))
    url = server.url(f"/api/2.0/mlflow-artifacts/artifacts/big-{uuid.uuid4().hex[:8]}.bin")
    upload = requests.put(url, data=payload, headers=headers, timeout=120)
    assert upload.status_code == 200, upload.text
    digest = hashlib.sha256()
    received = 0
    with requests.get(url, headers=headers, stream=True, timeout=120) as download:
        assert download.status_code == 200
        for chunk in download.iter_content(chunk_size=1 << 20):
            digest.update(chunk)
            received += len(chunk)
    assert received == len(payload)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()


# --- cookie details ------------------------------------------------------------------------------


def test_cookies_are_secure_behind_a_tls_terminating_proxy(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    tokens = emu.login(cast.viewer.login_id)
    response = requests.post(
        server.url("/auth/session"),
        json={"sessionJwt": tokens["sessionJwt"], "refreshJwt": tokens["refreshJwt"]},
        headers={
            "Origin": server.base_url.replace("http://", "https://"),
            "X-Forwarded-Proto": "https",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert all("secure" in attributes for _v, attributes in cookies_by_name(response).values())
    plain = post_session(server, {"sessionJwt": tokens["sessionJwt"]})
    assert "secure" not in cookies_by_name(plain)["DS"][1]


def test_token_too_large_for_one_cookie_is_chunked_and_reassembled(
    server: RunningServer, emu: DescopeEmulator, cast: Cast
) -> None:
    bulky = emu.mint_session(cast.editor.login_id, extra_claims={"padding": "p" * 4000})
    assert len(bulky) > 4096
    response = post_session(server, {"sessionJwt": bulky})
    assert response.status_code == 200, response.text
    cookies = cookies_by_name(response)
    chunks = {name: value for name, (value, _attrs) in cookies.items() if name.startswith("DS.")}
    expected = [f"DS.{i}" for i in range(-(-len(bulky) // CHUNK_SIZE))]
    assert sorted(chunks) == expected
    assert "DS" not in cookies
    assert "".join(chunks[name] for name in expected) == bulky
    assert search_experiments(server, cookie_header(**chunks)).status_code == 200
