"""The Descope emulator's own behaviour: tokens, endpoints, errors, faults, counters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from mlflow_descope_auth.testing import DescopeEmulator

ERROR_KEYS = {"errorCode", "errorDescription", "errorMessage"}


def unverified(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


def verified(emu: DescopeEmulator, token: str, alg: str = "RS256") -> dict:
    return jwt.decode(token, emu.public_key_pem(), algorithms=[alg], options={"verify_aud": False})


def post(emu: DescopeEmulator, path: str, token: str = "", body=None, project=None):
    bearer = project or emu.project_id
    if token:
        bearer += ":" + token
    return requests.post(
        emu.base_url + path,
        json={} if body is None else body,
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )


def assert_descope_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["errorCode"] == code


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def emu(descope_emulator: DescopeEmulator) -> DescopeEmulator:
    descope_emulator.create_user(
        "alice", email="alice@example.com", name="Alice", roles=["mlflow-editor"]
    )
    return descope_emulator


# ---- tokens and claims -------------------------------------------------------


def test_key_set_publishes_rs256_keys_in_descope_shape(emu):
    response = requests.get(f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10)

    assert response.status_code == 200
    [key] = response.json()["keys"]
    assert set(key) == {"kty", "n", "e", "alg", "kid", "use"}
    assert (key["kty"], key["alg"], key["use"], key["kid"]) == (
        "RSA",
        "RS256",
        "sig",
        emu.current_kid,
    )
    assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256  # 2048-bit modulus


def test_key_set_of_another_project_is_refused(emu):
    response = requests.get(f"{emu.base_url}/v2/keys/P2SomeoneElse", timeout=10)

    assert_descope_error(response, 400, "E011003")


def test_session_claims_follow_descope_layout(emu):
    emu.create_user(
        "bob",
        roles=["r1"],
        permissions=["p1"],
        tenants={"T1": {"roles": ["t"], "permissions": []}, "T2": {}},
        custom_claims={"team": "ml", "sub": "must-not-override"},
    )

    token = emu.mint_session("bob", ttl=300)

    claims = verified(emu, token)
    user_id = emu.get_user("bob").user_id
    assert claims["sub"] == user_id
    assert claims["iss"] == f"https://api.descope.com/{emu.project_id}"
    assert claims["drn"] == "DS"
    assert claims["amr"] == ["email"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["roles"] == ["r1"]
    assert claims["permissions"] == ["p1"]
    assert claims["tenants"] == {"T1": {"roles": ["t"], "permissions": []}, "T2": {}}
    assert claims["team"] == "ml"
    assert "email" not in claims
    assert "name" not in claims
    assert header_of(token) == {"alg": "RS256", "kid": emu.current_kid, "typ": "JWT"}


def test_email_and_name_are_claims_only_when_the_user_has_them(emu):
    claims = verified(emu, emu.mint_session("alice"))

    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice"
    assert "tenants" not in claims


def test_project_issuer_style_uses_the_bare_project_id():
    with DescopeEmulator(issuer_style="project") as emu:
        emu.create_user("x")
        assert verified(emu, emu.mint_session("x"))["iss"] == emu.project_id


def test_regional_project_ids_get_a_regional_issuer_url():
    project_id = "Puse1" + "A" * 27
    with DescopeEmulator(project_id) as emu:
        assert emu.issuer == f"https://api.use1.descope.com/{project_id}"


def test_mint_session_overrides_make_hostile_tokens(emu):
    token = emu.mint_session(
        "alice",
        exp=2_000_000_000,
        iat=1_000,
        nbf=1_500,
        issuer="https://evil.example/P2Other",
        extra_claims={"drn": "DSR", "roles": "admin"},
        drop_claims=("amr",),
        dsub="U2Other",
    )

    claims = verified(emu, token)
    assert (claims["exp"], claims["iat"], claims["nbf"]) == (2_000_000_000, 1_000, 1_500)
    assert claims["iss"] == "https://evil.example/P2Other"
    assert claims["drn"] == "DSR"
    assert claims["roles"] == "admin"
    assert claims["dsub"] == "U2Other"
    assert "amr" not in claims


def test_mint_session_can_drop_exp(emu):
    claims = unverified(emu.mint_session("alice", drop_claims=("exp",)))

    assert "exp" not in claims


def test_mint_session_kid_and_alg_are_header_values(emu):
    token = emu.mint_session("alice", kid="no-such-kid", alg="RS512")

    assert header_of(token) == {"alg": "RS512", "kid": "no-such-kid", "typ": "JWT"}
    assert verified(emu, token, alg="RS512")["sub"]


def test_sign_alg_none_gives_an_unsigned_token(emu):
    token = emu.sign(header={"alg": "none"}, payload={"sub": "U2x"})

    assert token.endswith(".")
    assert header_of(token)["alg"] == "none"


def test_sign_hs256_with_a_secret_is_the_key_confusion_token(emu):
    pem = emu.public_key_pem()

    token = emu.sign(header={"alg": "HS256"}, payload={"sub": "U2x"}, secret=pem)

    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "==") == expected


def test_sign_header_none_values_remove_fields(emu):
    token = emu.sign(header={"kid": None, "typ": None}, payload={"sub": "x"})

    assert header_of(token) == {"alg": "RS256"}


def test_sign_with_an_unknown_key_is_an_error(emu):
    with pytest.raises(KeyError):
        emu.sign(payload={}, key="nope")


def test_rotate_keys_keeps_or_drops_the_old_key(emu):
    first = emu.current_kid

    second = emu.rotate_keys(keep_old=True)
    assert [key["kid"] for key in emu.jwks()["keys"]] == [first, second]

    third = emu.rotate_keys(keep_old=False)
    assert [key["kid"] for key in emu.jwks()["keys"]] == [third]
    assert header_of(emu.mint_session("alice"))["kid"] == third


def test_login_returns_descope_token_response(emu):
    tokens = emu.login("alice")

    assert {"sessionJwt", "refreshJwt", "cookieDomain", "cookiePath", "cookieMaxAge"} <= set(tokens)
    assert tokens["cookiePath"] == "/"
    assert tokens["cookieExpiration"] == unverified(tokens["refreshJwt"])["exp"]
    assert 0 < tokens["cookieMaxAge"] <= 30 * 24 * 3600
    assert tokens["user"]["loginIds"] == ["alice"]
    assert tokens["user"]["userId"] == emu.get_user("alice").user_id
    assert tokens["firstSeen"] is True
    assert emu.login("alice")["firstSeen"] is False
    assert unverified(tokens["refreshJwt"])["drn"] == "DSR"


def test_roles_given_as_a_string_are_refused(emu):
    with pytest.raises(TypeError):
        emu.create_user("x", roles="admin")


def test_duplicate_login_ids_are_refused(emu):
    with pytest.raises(ValueError, match="already exists"):
        emu.create_user("alice")


# ---- refresh and friends over HTTP ------------------------------------------


def test_refresh_in_body_returns_the_same_token_without_rotation(emu):
    refresh = emu.login("alice")["refreshJwt"]

    body = post(emu, "/v1/auth/refresh", refresh).json()

    assert body["refreshJwt"] == refresh
    assert verified(emu, body["sessionJwt"])["drn"] == "DS"
    assert body["firstSeen"] is False


def test_refresh_without_body_mode_omits_the_token():
    with DescopeEmulator(refresh_in_body=False) as emu:
        emu.create_user("x")
        body = post(emu, "/v1/auth/refresh", emu.login("x")["refreshJwt"]).json()

    assert "refreshJwt" not in body
    assert "sessionJwt" in body


def test_refresh_via_cookie_sets_ds_and_dsr_cookies():
    with DescopeEmulator(refresh_via_cookie=True) as emu:
        emu.create_user("x")
        refresh = emu.login("x")["refreshJwt"]
        response = post(emu, "/v1/auth/refresh", refresh)

    assert "refreshJwt" not in response.json()
    assert response.cookies["DSR"] == refresh
    assert response.cookies["DS"] == response.json()["sessionJwt"]


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda emu: "not-a-jwt", "E061301"),
        (lambda emu: emu.mint_session("alice"), "E061301"),  # drn DS
        (lambda emu: emu.mint_refresh("alice", ttl=-60), "E061301"),  # expired
        (
            lambda emu: emu.sign(payload={**unverified(emu.mint_refresh("alice")), "jti": "x"}),
            "E061301",
        ),  # never issued
        (
            lambda emu: emu.sign(
                header={"alg": "none"}, payload=unverified(emu.mint_refresh("alice"))
            ),
            "E061301",
        ),
        (lambda emu: "", "E061301"),
    ],
    ids=["garbage", "session-token", "expired", "unregistered", "alg-none", "missing"],
)
def test_refresh_refuses_bad_tokens(emu, make_token, code):
    response = post(emu, "/v1/auth/refresh", make_token(emu))

    assert_descope_error(response, 401, code)


def test_refresh_refuses_another_project_in_the_authorization_header(emu):
    refresh = emu.login("alice")["refreshJwt"]

    response = post(emu, "/v1/auth/refresh", refresh, project="P2SomeoneElse")

    assert_descope_error(response, 401, "E061102")


def test_refresh_refuses_a_missing_authorization_header(emu):
    response = requests.post(emu.base_url + "/v1/auth/refresh", json={}, timeout=10)

    assert_descope_error(response, 401, "E061101")


def test_refresh_reflects_updated_roles(emu):
    refresh = emu.login("alice")["refreshJwt"]

    emu.update_user("alice", roles=["mlflow-viewer"])
    body = post(emu, "/v1/auth/refresh", refresh).json()

    assert verified(emu, body["sessionJwt"])["roles"] == ["mlflow-viewer"]


def test_refresh_of_a_deleted_user_is_refused(emu):
    refresh = emu.login("alice")["refreshJwt"]

    emu.delete_user("alice")

    assert_descope_error(post(emu, "/v1/auth/refresh", refresh), 401, "E062108")


def test_revoke_refresh_from_python(emu):
    refresh = emu.mint_refresh("alice")

    emu.revoke_refresh(refresh)

    assert_descope_error(post(emu, "/v1/auth/refresh", refresh), 401, "E061302")


def test_concurrent_refreshes_of_one_rotating_token_succeed_once():
    with DescopeEmulator(rotate_refresh_tokens=True) as emu:
        emu.create_user("x")
        refresh = emu.login("x")["refreshJwt"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: post(emu, "/v1/auth/refresh", refresh).status_code, range(8))
            )

    assert sorted(statuses) == [200] + [401] * 7


def test_tenant_select_refuses_a_tenant_the_user_is_not_in(emu):
    refresh = emu.login("alice")["refreshJwt"]

    response = post(emu, "/v1/auth/tenant/select", refresh, body={"tenant": "T404"})

    assert_descope_error(response, 403, "E063101")


def test_tenant_select_needs_a_tenant(emu):
    refresh = emu.login("alice")["refreshJwt"]

    response = post(emu, "/v1/auth/tenant/select", refresh, body={})

    assert_descope_error(response, 400, "E011002")


def test_tenant_selection_survives_later_refreshes():
    with DescopeEmulator() as emu:
        emu.create_user("x", tenants={"T1": {"roles": ["r"], "permissions": []}})
        refresh = emu.login("x")["refreshJwt"]
        selected = post(emu, "/v1/auth/tenant/select", refresh, body={"tenant": "T1"}).json()

        again = post(emu, "/v1/auth/refresh", selected["refreshJwt"]).json()

    assert unverified(again["sessionJwt"])["dct"] == "T1"


def test_me_over_http_returns_the_user_object(emu):
    refresh = emu.login("alice")["refreshJwt"]

    response = requests.get(
        emu.base_url + "/v1/auth/me",
        headers={"Authorization": f"Bearer {emu.project_id}:{refresh}"},
        timeout=10,
    )

    assert response.status_code == 200
    assert response.json()["userId"] == emu.get_user("alice").user_id


def test_logout_twice_is_refused_the_second_time(emu):
    refresh = emu.login("alice")["refreshJwt"]

    assert post(emu, "/v1/auth/logout", refresh).json() == {}

    assert_descope_error(post(emu, "/v1/auth/logout", refresh), 401, "E061302")


def test_exchange_response_shape(emu):
    key = emu.create_access_key("bot", roles=["mlflow-viewer"], key_id="K2Fixed")

    response = post(emu, "/v1/auth/accesskey/exchange", key, body={"loginOptions": {}})

    body = response.json()
    assert set(body) == {"keyId", "sessionJwt", "expiration"}
    assert body["keyId"] == "K2Fixed"
    claims = verified(emu, body["sessionJwt"])
    assert (claims["sub"], claims["drn"], claims["roles"]) == ("K2Fixed", "DS", ["mlflow-viewer"])
    assert body["expiration"] == claims["exp"]


def test_access_keys_do_not_look_like_jwts(emu):
    key = emu.create_access_key("bot")

    assert key.startswith("K2")
    assert key.count(":") == 1
    assert key.count(".") == 0


def test_exchange_errors_have_distinct_codes(emu):
    expired = emu.create_access_key("old", expires_in=-1)
    revoked = emu.create_access_key("gone")
    emu.revoke_access_key(revoked)

    path = "/v1/auth/accesskey/exchange"
    assert_descope_error(post(emu, path, "K2nope:secret"), 401, "E062201")
    assert_descope_error(post(emu, path, expired), 401, "E062202")
    assert_descope_error(post(emu, path, revoked), 401, "E062203")


def test_malformed_json_body_is_a_bad_request(emu):
    refresh = emu.login("alice")["refreshJwt"]

    response = requests.post(
        emu.base_url + "/v1/auth/tenant/select",
        data=b"{not json",
        headers={"Authorization": f"Bearer {emu.project_id}:{refresh}"},
        timeout=10,
    )

    assert_descope_error(response, 400, "E011001")


def test_unknown_path_and_wrong_method(emu):
    assert_descope_error(requests.get(emu.base_url + "/v1/nope", timeout=10), 404, "E010404")
    assert_descope_error(
        requests.get(emu.base_url + "/v1/auth/refresh", timeout=10), 405, "E010405"
    )


def test_cors_preflight_is_answered_for_json_endpoints(emu):
    response = requests.options(
        emu.base_url + "/emulator/flow/sign-up-or-in/login",
        headers={
            "Origin": "http://127.0.0.1:5000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert emu.calls("flow_login") == 0


def test_chunked_request_bodies_are_read(emu):
    emu.create_user("t", tenants={"T1": {}})
    refresh = emu.login("t")["refreshJwt"]

    response = requests.post(
        emu.base_url + "/v1/auth/tenant/select",
        data=iter([b'{"tenant":', b' "T1"}']),
        headers={"Authorization": f"Bearer {emu.project_id}:{refresh}"},
        timeout=10,
    )

    assert response.status_code == 200
    assert unverified(response.json()["sessionJwt"])["dct"] == "T1"


# ---- faults and counters -----------------------------------------------------


def test_injected_5xx_has_descope_shape_and_counts(emu):
    emu.set_fault("refresh", status=500)

    response = post(emu, "/v1/auth/refresh", emu.login("alice")["refreshJwt"])

    assert_descope_error(response, 500, "E010500")
    assert emu.calls("refresh") == 1


def test_rate_limit_fault_carries_retry_after(emu):
    emu.set_fault("keys", status=429, retry_after=7)

    response = requests.get(f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10)

    assert_descope_error(response, 429, "E130429")
    assert response.headers["Retry-After"] == "7"


def test_fault_times_applies_n_times_then_clears(emu):
    emu.set_fault("keys", status=502, times=2)
    url = f"{emu.base_url}/v2/keys/{emu.project_id}"

    statuses = [requests.get(url, timeout=10).status_code for _ in range(3)]

    assert statuses == [502, 502, 200]
    assert emu.calls("keys") == 3


def test_fault_body_replaces_the_answer(emu):
    emu.set_fault("keys", body="{not json")

    response = requests.get(f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10)

    assert response.status_code == 200
    assert response.text == "{not json"


def test_hang_is_bounded_then_answers_503():
    with DescopeEmulator(max_hang=0.3) as emu:
        emu.set_fault("keys", hang=60)
        started = time.monotonic()

        response = requests.get(f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10)

    assert 0.25 < time.monotonic() - started < 5
    assert_descope_error(response, 503, "E010503")


def test_hang_shorter_than_the_cap_then_status(emu):
    emu.set_fault("keys", hang=0.2, status=504)
    started = time.monotonic()

    response = requests.get(f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10)

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 504


def test_clear_faults_releases_a_hanging_request(emu):
    emu.set_fault("keys", hang=30)
    result = {}

    def call():
        started = time.monotonic()
        result["status"] = requests.get(
            f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10
        ).status_code
        result["seconds"] = time.monotonic() - started

    caller = threading.Thread(target=call)
    caller.start()
    _wait_for(lambda: emu.calls("keys") == 1)
    emu.clear_faults()
    caller.join(10)

    assert result["status"] == 503
    assert result["seconds"] < 5
    assert requests.get(f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10).ok


def test_stop_releases_a_hanging_request():
    emu = DescopeEmulator().start()
    emu.set_fault("keys", hang=30)
    result = {}

    def call():
        try:
            result["status"] = requests.get(
                f"{emu.base_url}/v2/keys/{emu.project_id}", timeout=10
            ).status_code
        except requests.RequestException as error:
            result["error"] = error

    caller = threading.Thread(target=call)
    caller.start()
    _wait_for(lambda: emu.calls("keys") == 1)
    started = time.monotonic()
    emu.stop()
    caller.join(10)

    assert time.monotonic() - started < 5
    assert not caller.is_alive()
    assert result.get("status") == 503 or "error" in result


def test_close_fault_drops_the_connection(emu):
    emu.set_fault("refresh", close=True)

    with pytest.raises(requests.ConnectionError):
        post(emu, "/v1/auth/refresh", "x")


def test_set_fault_validates_its_arguments(emu):
    with pytest.raises(ValueError, match="unknown endpoint"):
        emu.set_fault("refersh", status=500)
    with pytest.raises(ValueError, match="needs a status"):
        emu.set_fault("refresh")
    with pytest.raises(ValueError, match="HTTP status"):
        emu.set_fault("refresh", status=1000)


def test_counters_count_per_endpoint_and_reset(emu):
    refresh = emu.login("alice")["refreshJwt"]
    post(emu, "/v1/auth/refresh", refresh)
    post(emu, "/v1/auth/refresh", refresh)
    post(emu, "/v1/auth/logout", refresh)

    assert (emu.calls("refresh"), emu.calls("logout"), emu.calls("me")) == (2, 1, 0)
    emu.reset_counters()
    assert emu.calls("refresh") == 0
    with pytest.raises(ValueError, match="unknown endpoint"):
        emu.calls("nope")


# ---- the web component stand-in and its endpoints ----------------------------


def test_web_component_script_is_served_as_javascript_with_cors(emu):
    response = requests.get(emu.web_component_url, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert 'customElements.define("descope-wc"' in response.text
    assert "innerHTML" not in response.text
    assert emu.calls("web_component") == 1


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_web_component_script_is_valid_javascript(emu, tmp_path):
    script = tmp_path / "index.js"
    script.write_bytes(requests.get(emu.web_component_url, timeout=10).content)

    subprocess.run(["node", "--check", str(script)], check=True, timeout=30)


def test_users_endpoint_lists_login_ids_and_names_only(emu):
    emu.add_demo_users()

    response = requests.get(
        emu.base_url + "/emulator/users", params={"project": emu.project_id}, timeout=10
    )

    listed = response.json()["users"]
    assert [user["loginId"] for user in listed] == ["alice", "viewer", "editor", "admin", "nobody"]
    assert all(set(user) == {"loginId", "name", "roles"} for user in listed)
    assert set(response.json()["flowError"]) == ERROR_KEYS


def test_users_endpoint_refuses_another_project(emu):
    response = requests.get(
        emu.base_url + "/emulator/users", params={"project": "P2Else"}, timeout=10
    )

    assert_descope_error(response, 400, "E011003")


def test_flow_login_returns_a_token_response(emu):
    response = post(emu, "/emulator/flow/sign-up-or-in/login", body={"loginId": "alice"})

    body = response.json()
    assert response.status_code == 200
    assert verified(emu, body["sessionJwt"])["sub"] == emu.get_user("alice").user_id
    assert post(emu, "/v1/auth/refresh", body["refreshJwt"]).status_code == 200


def test_flow_login_with_a_tenant_sets_dct():
    with DescopeEmulator() as emu:
        emu.create_user("x", tenants={"T1": {}})
        body = post(emu, "/emulator/flow/f/login", body={"loginId": "x", "tenant": "T1"}).json()

    assert unverified(body["sessionJwt"])["dct"] == "T1"


def test_flow_login_refuses_unknown_users_and_other_projects(emu):
    assert_descope_error(
        post(emu, "/emulator/flow/f/login", body={"loginId": "mallory"}), 400, "E062108"
    )
    assert_descope_error(
        post(emu, "/emulator/flow/f/login", body={"loginId": "alice"}, project="P2Else"),
        401,
        "E061102",
    )


def test_set_flow_error_changes_the_failing_button_detail(emu):
    emu.set_flow_error(error_code="E999", description="<b>bold</b>", message="<img src=x>")

    listed = requests.get(
        emu.base_url + "/emulator/users", params={"project": emu.project_id}, timeout=10
    ).json()

    assert listed["flowError"] == {
        "errorCode": "E999",
        "errorDescription": "<b>bold</b>",
        "errorMessage": "<img src=x>",
    }


def test_demo_users_have_the_documented_roles(emu):
    users = {user.login_id: user for user in emu.add_demo_users()}

    assert users["viewer"].roles == ("mlflow-viewer",)
    assert users["editor"].roles == ("mlflow-editor",)
    assert users["admin"].roles == ("admin",)
    assert users["nobody"].roles == ()
    assert users["nobody"].permissions == ()
    assert len(emu.add_demo_users()) == 4  # idempotent
    assert len(emu.users()) == 5


def test_environment_points_the_plugin_at_the_emulator(emu):
    env = emu.environment()

    assert env == {
        "DESCOPE_PROJECT_ID": emu.project_id,
        "DESCOPE_BASE_URL": emu.base_url,
        "DESCOPE_WEB_COMPONENT_URL": emu.base_url + "/web-component/index.js",
    }
    assert json.dumps(env)


def test_unreadable_body_framing_is_a_bad_request(emu):
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as raw:
        raw.sendall(b"POST /v1/auth/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        # The answer closes the connection; its head and body may arrive apart.
        chunks = []
        while chunk := raw.recv(4096):
            chunks.append(chunk)
        answer = b"".join(chunks).decode()

    assert answer.startswith("HTTP/1.1 400")
    assert '"errorCode": "E011001"' in answer


def test_login_into_a_foreign_tenant_is_refused(emu):
    with pytest.raises(ValueError, match="not a member"):
        emu.login("alice", tenant="T404")
    response = post(emu, "/emulator/flow/f/login", body={"loginId": "alice", "tenant": "T404"})
    assert_descope_error(response, 403, "E063101")
