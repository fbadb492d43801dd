"""The gate's pure rules: credentials (§3), response choice and CSRF (§4), `next` (§6)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlflow_descope_auth import gate
from mlflow_descope_auth.gate import CredentialFormatError, RequestInfo

HTML_ACCEPT = "text/html,application/xhtml+xml"


def request(
    method: str = "GET",
    path: str = "/",
    *,
    query: str = "",
    scheme: str = "http",
    **headers: str,
) -> RequestInfo:
    pairs = [(name.replace("_", "-"), value) for name, value in headers.items()]
    pairs.append(("Host", headers.get("host", "mlflow.example:5000")))
    return RequestInfo.build(
        method=method, path=path, query_string=query, headers=pairs, scheme=scheme
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- RequestInfo ---------------------------------------------------------------


def test_request_info_joins_repeated_headers_and_parses_cookies() -> None:
    info = RequestInfo.build(
        method="get",
        path="//api/2.0/mlflow/experiments/search",
        query_string="",
        headers=[("Cookie", "DS=a"), ("cookie", "DSR=b"), ("X-A", "1"), ("x-a", "2")],
        scheme="http",
    )
    assert info.method == "get"  # kept as sent; Gate.evaluate refuses it
    # Kept as routed: the route table tells Starlette's `//` from Werkzeug's.
    assert info.path == "//api/2.0/mlflow/experiments/search"
    assert info.headers["x-a"] == "1, 2"
    assert info.cookies == {"DS": "a", "DSR": "b"}


# --- credentials (§3) ------------------------------------------------------------


def test_bearer_token_is_the_credential() -> None:
    credential = gate.parse_authorization("Bearer abc.def.ghi")
    assert (credential.value, credential.source) == ("abc.def.ghi", "bearer")
    assert gate.parse_authorization("bearer  tok ").value == "tok"


def test_credential_repr_hides_the_secret() -> None:
    assert "abc.def.ghi" not in repr(gate.parse_authorization("Bearer abc.def.ghi"))


def test_basic_password_is_the_credential_whatever_the_user() -> None:
    credential = gate.parse_authorization(basic("anyone", "K2AccessKey"))
    assert (credential.value, credential.source) == ("K2AccessKey", "basic")
    assert gate.parse_authorization(basic("", "a:b:c")).value == "a:b:c"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer two words",
        "Basic not*base64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"user:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Digest username=x",
        "Token abc",
        "",
    ],
)
def test_unreadable_authorization_is_refused(header: str) -> None:
    with pytest.raises(CredentialFormatError):
        gate.parse_authorization(header)


def test_no_authorization_header_means_no_header_credential() -> None:
    assert gate.header_credential(request(), "") is None


def test_gateway_reads_x_mlflow_authorization_before_authorization() -> None:
    info = request(
        "POST",
        "/gateway/chat/mlflow/invocations",
        authorization="Bearer sk-provider-key",
        x_mlflow_authorization="Bearer mlflow.jwt.token",
    )
    credential = gate.header_credential(info, "")
    assert credential is not None
    assert (credential.value, credential.source) == ("mlflow.jwt.token", "x-mlflow-authorization")


def test_gateway_invalid_x_mlflow_authorization_never_falls_back() -> None:
    info = request(
        "POST",
        "/mlflow/gateway/chat/mlflow/invocations",
        authorization="Bearer valid.looking.token",
        x_mlflow_authorization="Nonsense",
    )
    with pytest.raises(CredentialFormatError):
        gate.header_credential(info, "/mlflow")


def test_gateway_without_x_mlflow_authorization_uses_authorization() -> None:
    info = request("POST", "/gateway/e/mlflow/invocations", authorization=basic("u", "key"))
    credential = gate.header_credential(info, "")
    assert credential is not None
    assert credential.value == "key"


@pytest.mark.parametrize(
    "key", ["sk-proj-abc123", "sk-ant-api03-xyz", "AIzaSyExample", "gsk_example", "hf_example"]
)
def test_gateway_provider_key_in_authorization_is_not_an_mlflow_credential(key: str) -> None:
    info = request("POST", "/gateway/e/mlflow/invocations", authorization=f"Bearer {key}")
    assert gate.header_credential(info, "") is None
    # Outside the gateway the same value is an MLflow credential (and refused later).
    elsewhere = request("POST", "/api/2.0/mlflow/runs/create", authorization=f"Bearer {key}")
    credential = gate.header_credential(elsewhere, "")
    assert credential is not None
    assert credential.value == key


def test_gateway_access_key_or_jwt_in_authorization_is_still_used() -> None:
    for value in ("K2accesskeyvalue", "sk-looking.but.a.jwt"):
        info = request("POST", "/gateway/e/mlflow/invocations", authorization=f"Bearer {value}")
        credential = gate.header_credential(info, "")
        assert credential is not None
        assert credential.value == value


def test_x_mlflow_authorization_is_ignored_outside_the_gateway() -> None:
    info = request("POST", "/api/2.0/mlflow/runs/create", x_mlflow_authorization="Bearer x.y.z")
    assert gate.header_credential(info, "") is None


# --- browser or API (§4) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "accept", "prefix", "expected"),
    [
        ("GET", "/", HTML_ACCEPT, "", True),
        ("HEAD", "/#/experiments", HTML_ACCEPT, "", True),
        ("GET", "/mlflow/", HTML_ACCEPT, "/mlflow", True),
        ("GET", "/", "application/json", "", False),
        ("GET", "/", "*/*", "", False),
        ("POST", "/", HTML_ACCEPT, "", False),
        ("GET", "/api/2.0/mlflow/experiments/search", HTML_ACCEPT, "", False),
        ("GET", "/ajax-api/2.0/mlflow/runs/get", HTML_ACCEPT, "", False),
        ("GET", "/graphql", HTML_ACCEPT, "", False),
        ("GET", "/gateway/x/mlflow/invocations", HTML_ACCEPT, "", False),
        ("GET", "/v1/traces", HTML_ACCEPT, "", False),
        ("GET", "/mlflow/ajax-api/2.0/mlflow/runs/get", HTML_ACCEPT, "/mlflow", False),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/x", HTML_ACCEPT, "/mlflow", False),
    ],
)
def test_browser_navigation_is_a_page_load_outside_the_api(
    method: str, path: str, accept: str, prefix: str, expected: bool
) -> None:
    info = request(method, path, accept=accept)
    assert gate.is_browser_navigation(info, prefix) is expected


def test_login_location_quotes_the_whole_target() -> None:
    assert gate.login_location("", "/", "") == "/auth/login?next=%2F"
    assert (
        gate.login_location("/mlflow", "/mlflow/x", "a=1&b=2")
        == "/mlflow/auth/login?next=%2Fmlflow%2Fx%3Fa%3D1%26b%3D2"
    )


def test_unauthenticated_is_json_with_bearer_challenge_and_no_location() -> None:
    outcome = gate.unauthenticated("token expired (exp)")
    headers = dict(outcome.headers)
    assert outcome.status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="mlflow"'
    assert headers["Content-Type"] == "application/json"
    assert "Location" not in headers
    assert json.loads(outcome.body) == {
        "error_code": "UNAUTHENTICATED",
        "message": "token expired (exp)",
    }


def test_forbidden_names_the_error_code() -> None:
    outcome = gate.forbidden("runs/create needs EDIT; bob has READ")
    assert outcome.status == 403
    assert json.loads(outcome.body)["error_code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"), [(503, None, "5"), (503, 2.4, "2"), (429, 7, "7")]
)
def test_unavailable_carries_retry_after(
    status: int, retry_after: float | None, expected: str
) -> None:
    outcome = gate.unavailable(status, retry_after)
    assert outcome.status == status
    assert dict(outcome.headers)["Retry-After"] == expected
    assert json.loads(outcome.body)["message"]


def test_cors_preflight_is_recognised_only_with_the_request_method_header() -> None:
    assert gate.is_cors_preflight(request("OPTIONS", access_control_request_method="POST"))
    assert not gate.is_cors_preflight(request("OPTIONS"))


# --- cross-site requests (§4) ----------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"origin": "http://mlflow.example:5000"}, False),
        ({"origin": "http://MLflow.example:5000/"}, False),
        ({"origin": "https://evil.example"}, True),
        ({"origin": "http://mlflow.example:5001"}, True),
        ({"origin": "https://mlflow.example:5000"}, True),
        ({"origin": "null"}, True),
        ({"sec_fetch_site": "cross-site"}, True),
        ({"sec_fetch_site": "same-origin"}, False),
        ({}, False),
        ({"origin": "https://mlflow.example:5000", "x_forwarded_proto": "https"}, False),
        ({"origin": "https://mlflow.example", "x_forwarded_host": "mlflow.example"}, True),
        (
            {
                "origin": "https://mlflow.example",
                "x_forwarded_host": "mlflow.example",
                "x_forwarded_proto": "https",
            },
            False,
        ),
    ],
)
def test_cross_site_is_decided_by_origin_then_sec_fetch_site(
    headers: dict[str, str], expected: bool
) -> None:
    assert gate.is_cross_site(request("POST", "/graphql", **headers)) is expected


def test_operator_trusted_origin_is_not_cross_site() -> None:
    info = request("POST", "/graphql", origin="https://ui.example")
    assert not gate.is_cross_site(info, frozenset({"https://ui.example"}))


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site"])
def test_forwarded_host_cannot_make_a_cross_site_browser_request_same_origin(
    fetch_site: str,
) -> None:
    # A page on another localhost port gets a credentialed preflight with any
    # header from MLflow's CORS, so it can send X-Forwarded-Host naming itself;
    # the browser's Sec-Fetch-Site still says where the request came from.
    headers = {"origin": "http://localhost:9999", "x_forwarded_host": "localhost:9999"}
    info = request(
        "POST", "/api/2.0/mlflow/experiments/create", sec_fetch_site=fetch_site, **headers
    )
    assert gate.is_cross_site(info)


def test_sec_fetch_site_cross_site_passes_only_for_a_trusted_origin() -> None:
    info = request("POST", "/graphql", origin="https://ui.example", sec_fetch_site="cross-site")
    assert not gate.is_cross_site(info, frozenset({"https://ui.example"}))
    assert gate.is_cross_site(info, frozenset({"https://other.example"}))


@pytest.mark.parametrize(
    ("method", "requirement", "expected"),
    [
        ("POST", "READ", True),
        ("DELETE", "PUBLIC", True),
        ("GET", "EDIT", True),
        ("GET", "MANAGE", True),
        ("HEAD", "MANAGE", True),
        ("GET", "READ", False),
        ("GET", "AUTHENTICATED", False),
        ("OPTIONS", "READ", False),
    ],
)
def test_unsafe_methods_and_routes_above_read_must_be_same_site(
    method: str, requirement: str, expected: bool
) -> None:
    assert gate.needs_same_site(method, requirement) is expected


def test_same_origin_fetch_behind_a_proxy_still_passes() -> None:
    info = request(
        "POST",
        "/graphql",
        origin="https://mlflow.example",
        sec_fetch_site="same-origin",
        x_forwarded_host="mlflow.example",
        x_forwarded_proto="https",
    )
    assert not gate.is_cross_site(info)


# --- next (§6) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "candidate",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%09/evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "/%5Cevil.example",
        "/%2F%2Fevil.example",
        "evil.example",
        "/ok//evil",
        "",
        None,
    ],
)
def test_unsafe_next_falls_back_to_the_default(candidate: str | None) -> None:
    assert gate.safe_next(candidate, "/home") == "/home"


@pytest.mark.parametrize("candidate", ["/ok?x=1", "/", "/#/experiments/1", "/mlflow/x?y=a//b"])
def test_same_origin_relative_next_is_followed(candidate: str) -> None:
    assert gate.safe_next(candidate, "/home") == candidate


@given(st.text())
def test_followed_next_always_stays_on_this_origin(candidate: str) -> None:
    result = gate.safe_next(candidate, "/default")
    resolved = urlsplit(urljoin("https://mlflow.example/base/", result))
    assert resolved.scheme == "https"
    assert resolved.netloc == "mlflow.example"
    assert result.startswith("/")
    assert not result.startswith("//")
    assert "\\" not in result
    assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in result)
