"""The route table: every route MLflow serves is classified, and every request
is decided for the handler MLflow's routers would actually run.

`route_oracle` asks the real routers (FastAPI's, then Werkzeug's) which route
serves a path; the table must agree with them on every sample path of every
route, with and without a static prefix, under uvicorn and gunicorn.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import route_oracle
from mlflow_descope_auth import _core
from mlflow_descope_auth import route_table as rt
from mlflow_descope_auth.route_table import RouteSpec

TESTS = Path(__file__).parent
# The module fixtures Hypothesis sees are read-only tables and apps.
FIXTURES_OK = [HealthCheck.function_scoped_fixture]
UNKNOWN = ("MANAGE", "<unknown>")
ARTIFACT = "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel"


@pytest.fixture(scope="module")
def apps() -> tuple[Any, Any]:
    return route_oracle.load_apps()


@pytest.fixture(scope="module")
def uvicorn_routes(apps: tuple[Any, Any]) -> list[RouteSpec]:
    return rt.build_routes(*apps, static_prefix="")


@pytest.fixture(scope="module")
def uvicorn(uvicorn_routes: list[RouteSpec]) -> _core.RouteTable:
    return rt.compile_route_table(uvicorn_routes, "")


@pytest.fixture(scope="module")
def gunicorn(apps: tuple[Any, Any]) -> _core.RouteTable:
    return rt.compile_route_table(rt.build_routes(apps[0], static_prefix=""), "")


@pytest.fixture(scope="module")
def oracle(apps: tuple[Any, Any]) -> Any:
    oracle = route_oracle.Oracle(*apps)
    yield oracle
    oracle.close()


def served_pairs(flask_app: Any, fastapi_app: Any = None) -> list[tuple[str, str, str]]:
    """(source, method, pattern) of every (rule, method) the apps serve, read
    straight off the routers, independently of the builder."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    pairs = []
    contexts = [] if fastapi_app is None else iter_route_contexts(fastapi_app.routes)
    for context in contexts:
        if isinstance(context.original_route, Mount):
            break
        pairs += [(rt.NATIVE, method, context.path) for method in context.methods - {"HEAD"}]
    for rule in flask_app.url_map.iter_rules():
        pairs += [(rt.FLASK, method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"}]
    return sorted(pairs)


# --- Every route, against the real routers --------------------------------------


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_every_route_is_classified_and_decided_like_mlflow_routes_it(
    server: str, apps: tuple[Any, Any]
) -> None:
    report = route_oracle.check("", native=server == "uvicorn")

    assert report["failures"] == []
    assert report["warnings"] == []
    pairs = sorted((source, method, pattern) for source, method, pattern, _, _ in report["pairs"])
    flask_app, fastapi_app = apps
    assert pairs == served_pairs(flask_app, fastapi_app if server == "uvicorn" else None)


def test_the_installed_mlflow_serves_about_490_route_methods(apps: tuple[Any, Any]) -> None:
    report = route_oracle.check("", native=True)

    assert len(report["pairs"]) == len(served_pairs(*apps)) >= 480
    assert sum(report["levels"].values()) == len(report["pairs"])
    assert set(report["levels"]) == {"PUBLIC", "AUTHENTICATED", "READ", "EDIT", "MANAGE"}


def run_oracle(prefix: str, *, gunicorn: bool) -> dict[str, Any]:
    env = {**os.environ, "_MLFLOW_STATIC_PREFIX": prefix}
    server = ["--gunicorn"] if gunicorn else []
    command = [sys.executable, str(TESTS / "route_oracle.py"), *server]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("prefix", ["/mlflow", "/team/ml"])
@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_with_a_static_prefix_every_route_is_decided_like_mlflow_routes_it(
    prefix: str, server: str
) -> None:
    report = run_oracle(prefix, gunicorn=server == "gunicorn")

    assert report["failures"] == []
    native_artifacts = [
        f"{method} /{root}/2.0/mlflow-artifacts/artifacts/{{artifact_path:path}}"
        for method in ("GET", "PUT")
        for root in ("ajax-api", "api")
    ]
    outside = ["GET /build/<path:filename>"] + (native_artifacts if server == "uvicorn" else [])
    assert report["outside"] == sorted(outside)
    assert len(report["warnings"]) == 1
    assert all(route.split(" ")[1] in report["warnings"][0] for route in outside)
    inside = [p for _, m, p, _, _ in report["pairs"] if f"{m} {p}" not in outside]
    assert all(pattern.startswith(prefix + "/") for pattern in inside)


def by_method(routes: list[RouteSpec], prefix: str) -> Any:
    """The classic plugin mistake: the level follows the HTTP method."""
    guess = [r._replace(level="READ" if r.method == "GET" else "EDIT") for r in routes]
    return rt.compile_route_table(guess, prefix)


def flask_only(routes: list[RouteSpec], prefix: str) -> Any:
    """Another: the native FastAPI routes are not in the table."""
    return rt.compile_route_table([r for r in routes if r.source == rt.FLASK], prefix)


@pytest.mark.parametrize("wrong", [by_method, flask_only])
def test_the_check_catches_a_wrong_table(wrong: Any) -> None:
    report = route_oracle.check("", native=True, compile_table=wrong)

    assert report["failures"]


# --- The tricky cases ------------------------------------------------------------

TRICKY = [
    # Reads sent as POST.
    ("POST", "/api/2.0/mlflow/runs/search", "READ"),
    ("POST", "/api/2.0/mlflow/experiments/search", "READ"),
    ("POST", "/api/3.0/mlflow/traces/search", "READ"),
    ("POST", "/api/2.0/mlflow/logged-models/search", "READ"),
    ("POST", "/api/3.0/mlflow/datasets/search", "READ"),
    ("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", "READ"),
    ("POST", "/api/3.0/mlflow/traces/batchGetInfos", "READ"),
    ("GET", "/api/3.0/mlflow/traces/batchGet", "READ"),
    ("POST", "/api/3.0/mlflow/traces/metrics", "READ"),
    ("POST", "/api/3.0/mlflow/traces/calculate-filter-correlation", "READ"),
    ("POST", "/api/2.0/mlflow/registered-models/get-latest-versions", "READ"),
    ("POST", "/graphql", "READ"),
    ("GET", "/graphql", "READ"),
    ("POST", "/api/2.0/mlflow/artifacts/presigned-download-url", "READ"),
    ("POST", "/api/2.0/mlflow/artifacts/presigned-upload-url", "EDIT"),
    # Deletes of parts of an object are EDIT; of whole objects MANAGE.
    ("POST", "/api/2.0/mlflow/runs/delete-tag", "EDIT"),
    ("POST", "/api/2.0/mlflow/experiments/delete-experiment-tag", "EDIT"),
    ("DELETE", "/api/2.0/mlflow/registered-models/alias", "EDIT"),
    ("DELETE", "/api/2.0/mlflow/registered-models/delete-tag", "EDIT"),
    ("DELETE", "/api/2.0/mlflow/model-versions/delete-tag", "EDIT"),
    ("DELETE", "/api/2.0/mlflow/logged-models/m-1/tags/k", "EDIT"),
    ("DELETE", "/api/3.0/mlflow/traces/tr-1/tags", "EDIT"),
    ("DELETE", "/api/3.0/mlflow/traces/tr-1/assessments/a-1", "EDIT"),
    ("DELETE", "/api/3.0/mlflow/datasets/d-1/records", "EDIT"),
    ("DELETE", "/api/3.0/mlflow/datasets/d-1/tags/k", "EDIT"),
    ("POST", "/api/2.0/mlflow/runs/delete", "MANAGE"),
    ("POST", "/api/2.0/mlflow/runs/restore", "MANAGE"),
    ("POST", "/api/2.0/mlflow/experiments/delete", "MANAGE"),
    ("POST", "/api/2.0/mlflow/experiments/restore", "MANAGE"),
    ("DELETE", "/api/2.0/mlflow/registered-models/delete", "MANAGE"),
    ("DELETE", "/api/2.0/mlflow/model-versions/delete", "MANAGE"),
    ("DELETE", "/api/2.0/mlflow/logged-models/m-1", "MANAGE"),
    ("POST", "/api/3.0/mlflow/traces/delete-traces", "MANAGE"),
    ("DELETE", "/api/3.0/mlflow/datasets/d-1", "MANAGE"),
    ("DELETE", "/api/3.0/mlflow/scorers/delete", "MANAGE"),
    # What the end-to-end test will do per level.
    ("GET", "/api/2.0/mlflow/experiments/get-by-name", "READ"),
    ("GET", "/api/2.0/mlflow/runs/get", "READ"),
    ("GET", "/api/2.0/mlflow/metrics/get-history", "READ"),
    ("GET", "/api/2.0/mlflow/registered-models/get", "READ"),
    ("GET", "/api/2.0/mlflow/artifacts/list", "READ"),
    ("POST", "/api/2.0/mlflow/experiments/create", "EDIT"),
    ("POST", "/api/2.0/mlflow/runs/create", "EDIT"),
    ("POST", "/api/2.0/mlflow/runs/log-batch", "EDIT"),
    ("POST", "/api/2.0/mlflow/runs/log-parameter", "EDIT"),
    ("POST", "/api/2.0/mlflow/registered-models/create", "EDIT"),
    ("POST", "/api/2.0/mlflow/model-versions/create", "EDIT"),
    # Artifacts through the proxy, including multipart.
    ("GET", ARTIFACT, "READ"),
    ("HEAD", ARTIFACT, "READ"),
    ("PUT", ARTIFACT, "EDIT"),
    ("DELETE", ARTIFACT, "MANAGE"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", "READ"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/create/1/abc/artifacts/big.bin", "EDIT"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/1/abc/artifacts/big.bin", "EDIT"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/abort/1/abc/artifacts/big.bin", "EDIT"),
    ("GET", "/api/2.0/mlflow-artifacts/presigned/1/abc/artifacts/big.bin", "READ"),
    ("GET", "/get-artifact", "READ"),
    ("GET", "/model-versions/get-artifact", "READ"),
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact", "EDIT"),
    # Traces, gateway, jobs, assistant.
    ("POST", "/api/3.0/mlflow/traces", "EDIT"),
    ("GET", "/ajax-api/3.0/mlflow/get-trace-artifact", "READ"),
    ("POST", "/ajax-api/2.0/mlflow/gateway-proxy", "EDIT"),
    ("GET", "/ajax-api/2.0/mlflow/gateway-proxy", "EDIT"),
    ("POST", "/ajax-api/3.0/mlflow/scorer/invoke", "EDIT"),
    ("POST", "/ajax-api/3.0/mlflow/genai/evaluate/invoke", "EDIT"),
    ("POST", "/ajax-api/3.0/mlflow/issues/invoke", "EDIT"),
    ("PATCH", "/ajax-api/3.0/mlflow/jobs/cancel/j-1", "EDIT"),
    ("GET", "/ajax-api/3.0/mlflow/jobs/j-1", "READ"),
    # Webhooks, workspaces, secrets, budgets, guardrails.
    ("GET", "/api/2.0/mlflow/webhooks", "MANAGE"),
    ("POST", "/api/2.0/mlflow/webhooks", "MANAGE"),
    ("GET", "/api/2.0/mlflow/webhooks/w-1", "MANAGE"),
    ("PATCH", "/api/2.0/mlflow/webhooks/w-1", "MANAGE"),
    ("DELETE", "/api/2.0/mlflow/webhooks/w-1", "MANAGE"),
    ("POST", "/api/2.0/mlflow/webhooks/w-1/test", "MANAGE"),
    ("GET", "/api/3.0/mlflow/workspaces", "READ"),
    ("GET", "/api/3.0/mlflow/workspaces/team-a", "READ"),
    ("POST", "/api/3.0/mlflow/workspaces", "MANAGE"),
    ("PATCH", "/api/3.0/mlflow/workspaces/team-a", "MANAGE"),
    ("DELETE", "/api/3.0/mlflow/workspaces/team-a", "MANAGE"),
    ("POST", "/api/3.0/mlflow/gateway/secrets/create", "MANAGE"),
    ("POST", "/api/3.0/mlflow/gateway/secrets/update", "MANAGE"),
    ("GET", "/api/3.0/mlflow/gateway/secrets/list", "READ"),
    ("POST", "/api/3.0/mlflow/gateway/budgets/create", "MANAGE"),
    ("POST", "/api/3.0/mlflow/gateway/guardrails/create", "MANAGE"),
    ("POST", "/api/3.0/mlflow/gateway/guardrails/add-to-endpoint", "MANAGE"),
    ("POST", "/api/3.0/mlflow/gateway/endpoints/create", "EDIT"),
    ("DELETE", "/api/3.0/mlflow/gateway/endpoints/delete", "MANAGE"),
    # Demo data: generating is a write, deleting wipes an experiment.
    ("POST", "/ajax-api/3.0/mlflow/demo/generate", "EDIT"),
    ("POST", "/ajax-api/3.0/mlflow/demo/delete", "MANAGE"),
    # Public probes and UI assets; the UI page itself needs a session.
    ("GET", "/health", "PUBLIC"),
    ("GET", "/version", "PUBLIC"),
    ("GET", "/api/3.0/mlflow/server-info", "PUBLIC"),
    ("GET", "/static-files/favicon.ico", "PUBLIC"),
    ("GET", "/static-files/static/js/main.js", "PUBLIC"),
    ("GET", "/", "AUTHENTICATED"),
    ("POST", "/", "MANAGE"),
]

NATIVE_ONLY = [
    ("POST", "/v1/traces", "EDIT"),
    ("POST", "/gateway/chat-endpoint/mlflow/invocations", "EDIT"),
    ("POST", "/gateway/mlflow/v1/chat/completions", "EDIT"),
    ("GET", "/gateway/mlflow/v1/models", "READ"),
    ("POST", "/gateway/openai/v1/embeddings", "EDIT"),
    ("POST", "/gateway/gemini/v1beta/models/chat:generateContent", "EDIT"),
    ("POST", "/gateway/proxy/chat-endpoint/v1/anything", "EDIT"),
    ("POST", "/ajax-api/3.0/jobs/", "MANAGE"),
    ("POST", "/ajax-api/3.0/jobs/search", "READ"),
    ("GET", "/ajax-api/3.0/jobs/j-1", "READ"),
    ("PATCH", "/ajax-api/3.0/jobs/cancel/j-1", "EDIT"),
    ("POST", "/ajax-api/3.0/mlflow/assistant/message", "MANAGE"),
    ("GET", "/ajax-api/3.0/mlflow/assistant/config", "MANAGE"),
    ("GET", "/ajax-api/3.0/mlflow/assistant/sessions/s-1/stream", "MANAGE"),
    ("GET", "/api/3.0/mlflow/mcp-servers/team/tools", "READ"),
    ("DELETE", "/api/3.0/mlflow/mcp-servers/team/tools/tags/owner", "EDIT"),
    ("DELETE", "/api/3.0/mlflow/mcp-servers/team/tools/aliases/prod", "EDIT"),
    # FastAPI's order, not specificity: this is a version delete of server
    # "a/tags/b", not a tag delete.
    ("DELETE", "/api/3.0/mlflow/mcp-servers/a/tags/b/versions/c", "MANAGE"),
    ("DELETE", "/api/3.0/mlflow/mcp-servers/team/tools", "MANAGE"),
]


@pytest.mark.parametrize(("method", "path", "level"), TRICKY)
def test_tricky_routes_need_the_contract_level_under_both_servers(
    method: str, path: str, level: str, uvicorn: Any, gunicorn: Any
) -> None:
    assert uvicorn.lookup(method, path)[0] == level
    assert gunicorn.lookup(method, path)[0] == level


@pytest.mark.parametrize(("method", "path", "level"), NATIVE_ONLY)
def test_native_routes_need_the_contract_level_under_uvicorn(
    method: str, path: str, level: str, uvicorn: Any, gunicorn: Any
) -> None:
    assert uvicorn.lookup(method, path)[0] == level
    assert gunicorn.lookup(method, path) == UNKNOWN


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/2.0/mlflow/users/create"),  # basic-auth's, not served here
        ("GET", "/api/2.0/mlflow/users/current"),
        ("GET", "/api/2.0/mlflow/runs/get/extra"),
        ("GET", "/api/2.0/mlflow/runs/get/"),
        ("GET", "/api/2.0/mlflow//runs/get"),
        ("GET", "/API/2.0/mlflow/runs/get"),
        ("GET", "/api/2.0/mlflow/runs/../experiments/get"),
        ("TRACE", "/api/2.0/mlflow/runs/get"),
        ("OPTIONS", "/api/2.0/mlflow/runs/get"),
        ("DELETE", "/health"),
        ("GET", "/ajax-api/3.0/jobs"),
        ("GET", "/gateway/unknown"),
        ("GET", ""),
        ("GET", "health"),
    ],
)
def test_unknown_routes_need_manage(method: str, path: str, uvicorn: Any) -> None:
    assert uvicorn.lookup(method, path) == UNKNOWN


def test_head_is_decided_as_get(uvicorn: Any) -> None:
    for path in ["/health", "/api/2.0/mlflow/runs/get", ARTIFACT, "/static-files/x.css"]:
        assert uvicorn.lookup("HEAD", path) == uvicorn.lookup("GET", path)
        assert uvicorn.lookup("head", path) == uvicorn.lookup("GET", path)


def test_custom_scorers_make_scorer_execution_manage(
    apps: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS", "true")
    table = rt.compile_route_table(rt.build_routes(*apps, static_prefix=""), "")

    assert table.lookup("POST", "/api/3.0/mlflow/scorers/register")[0] == "MANAGE"
    assert table.lookup("POST", "/ajax-api/3.0/mlflow/scorer/invoke")[0] == "MANAGE"
    assert table.lookup("POST", "/ajax-api/3.0/mlflow/genai/evaluate/invoke")[0] == "MANAGE"
    assert table.lookup("POST", "/api/3.0/mlflow/prompt-optimization/jobs")[0] == "MANAGE"
    assert table.lookup("PUT", "/api/3.0/mlflow/scorers/online-config")[0] == "MANAGE"
    assert table.lookup("POST", "/ajax-api/3.0/mlflow/issues/invoke")[0] == "EDIT"


# --- Prefix, twins, extra routes ---------------------------------------------------


def test_static_prefix_is_stripped_and_the_bare_prefix_needs_what_the_index_needs() -> None:
    routes = [
        RouteSpec("GET", "/mlflow/", "AUTHENTICATED", "serve", rt.FLASK),
        RouteSpec("GET", "/mlflow/health", "PUBLIC", "health", rt.FLASK),
        RouteSpec("GET", "/api/2.0/mlflow-artifacts/artifacts/{p:path}", "READ", "dl", rt.NATIVE),
    ]
    table = rt.compile_route_table(routes, "/mlflow/")

    assert table.lookup("GET", "/mlflow/health") == ("PUBLIC", "health")
    assert table.lookup("GET", "/mlflow/") == ("AUTHENTICATED", "serve")
    assert table.lookup("GET", "/mlflow") == ("AUTHENTICATED", "serve")
    assert table.lookup("GET", "/health") == UNKNOWN
    assert table.lookup("GET", "/mlflowx/health") == UNKNOWN
    assert table.lookup("GET", "/api/2.0/mlflow-artifacts/artifacts/a") == UNKNOWN


def test_werkzeug_redirects_the_bare_prefix_to_the_index(tmp_path: Path) -> None:
    from flask import Flask
    from werkzeug.routing import RequestRedirect

    app = Flask(__name__)
    app.add_url_rule("/mlflow/", "serve", lambda: "")
    with pytest.raises(RequestRedirect) as redirect:
        app.url_map.bind("localhost").match("/mlflow", "GET")

    assert redirect.value.new_url.endswith("/mlflow/")


def test_a_placeholder_before_the_prefix_ends_is_refused() -> None:
    routes = [RouteSpec("GET", "/ml{x}/y", "READ", "odd", rt.NATIVE)]

    with pytest.raises(ValueError, match="cannot be placed"):
        rt.compile_route_table(routes, "/mlflow")


def test_api_twins_get_the_same_answer_for_every_route(
    uvicorn_routes: list[RouteSpec], uvicorn: Any
) -> None:
    for route in uvicorn_routes:
        twin = rt.twin_pattern(route.pattern, "")
        for path in route_oracle.samples(route.pattern):
            if twin is not None:
                other = rt.twin_pattern(path, "")
                assert uvicorn.lookup(route.method, path) == uvicorn.lookup(route.method, other)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES_OK)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
    version=st.sampled_from(["2.0", "3.0", "4.0"]),
    rest=st.text(alphabet="abcdeghilmnorstuvwxyz-/._\n", max_size=60),
)
def test_twins_always_agree(method: str, version: str, rest: str, uvicorn: Any) -> None:
    api = uvicorn.lookup(method, f"/api/{version}/{rest}")
    ajax = uvicorn.lookup(method, f"/ajax-api/{version}/{rest}")

    assert api == ajax


def test_mirrored_twins_are_added_only_where_mlflow_serves_one_root(
    uvicorn_routes: list[RouteSpec], oracle: Any
) -> None:
    mirrored = [route for route in uvicorn_routes if route.mirrored]

    assert mirrored
    for route in mirrored:
        for path in route_oracle.samples(route.pattern):
            assert oracle.served(route.method, path) is None, path


def test_extra_routes_classify_the_plugins_own_endpoints(apps: tuple[Any, Any]) -> None:
    extra = [
        RouteSpec("GET", "/api/2.0/mlflow/users/current", "AUTHENTICATED", "me", rt.NATIVE),
        RouteSpec("GET", "/auth/login", "PUBLIC", "login", rt.NATIVE),
    ]
    table = rt.compile_route_table(rt.build_routes(*apps, extra=extra, static_prefix=""), "")

    # The /ajax-api/ twin is added, so both roots need the same.
    assert table.lookup("GET", "/api/2.0/mlflow/users/current") == ("AUTHENTICATED", "me")
    assert table.lookup("GET", "/ajax-api/2.0/mlflow/users/current") == ("AUTHENTICATED", "me")
    assert table.lookup("GET", "/auth/login") == ("PUBLIC", "login")
    assert table.lookup("POST", "/auth/login") == UNKNOWN


def test_an_extra_route_decides_a_discovered_route_in_place(apps: tuple[Any, Any]) -> None:
    extra = [RouteSpec("GET", "/health", "AUTHENTICATED", "health (gated)", rt.FLASK)]
    routes = rt.build_routes(apps[0], extra=extra, static_prefix="")

    health = [r for r in routes if r.pattern == "/health"]
    assert health == [RouteSpec("GET", "/health", "AUTHENTICATED", "health (gated)", rt.FLASK)]


def test_a_native_extra_goes_ahead_of_every_app_route() -> None:
    flask_app, fastapi_app = unknown_apps()
    extra = [RouteSpec("GET", "/{anything:path}", "PUBLIC", "gate", rt.NATIVE)]
    routes = rt.build_routes(flask_app, fastapi_app, extra=extra, static_prefix="")

    assert routes[0] == extra[0]
    assert rt.compile_route_table(routes, "").lookup("GET", "/native/x") == ("PUBLIC", "gate")


# --- Unknown routes: MANAGE, listed once ---------------------------------------------


def unknown_apps() -> tuple[Any, Any]:
    from fastapi import FastAPI
    from flask import Flask
    from starlette.middleware.wsgi import WSGIMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount

    flask_app = Flask("unknown", static_folder=None)
    flask_app.add_url_rule("/flask/<item>", "mystery", lambda item: item, methods=["GET", "POST"])
    fastapi_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    fastapi_app.get("/native/{item}")(lambda item: item)
    fastapi_app.router.routes.append(Mount("/other", app=PlainTextResponse("other")))
    fastapi_app.mount("/", WSGIMiddleware(flask_app))
    fastapi_app.get("/after-the-mount")(lambda: "never runs")
    return flask_app, fastapi_app


def test_unclassified_routes_need_manage_and_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flask_app, fastapi_app = unknown_apps()
    with caplog.at_level(logging.WARNING, logger=rt.__name__):
        routes = rt.build_routes(flask_app, fastapi_app, static_prefix="")

    unknown = {(r.method, r.pattern) for r in routes if not r.classified}
    assert unknown == {
        ("GET", "/native/{item}"),
        ("*", "/other/{path:path}"),
        ("GET", "/flask/<item>"),
        ("POST", "/flask/<item>"),
    }
    assert all(r.level == "MANAGE" for r in routes)
    assert len(caplog.records) == 1
    assert "/flask/<item>" in caplog.text
    assert "/other/{path:path}" in caplog.text
    assert "/after-the-mount" not in caplog.text

    table = rt.compile_route_table(routes, "")
    assert table.lookup("PROPFIND", "/other/x")[0] == "MANAGE"
    assert table.lookup("GET", "/flask/x") == ("MANAGE", "mystery")


def test_a_converter_the_table_cannot_match_is_widened_to_manage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    routes = [
        RouteSpec("GET", "/x/<int:item_id>", "MANAGE", "by_id", rt.FLASK),
        RouteSpec("GET", "/x/<name>", "READ", "by_name", rt.FLASK),
        RouteSpec("GET", "/y/{item_id:int}", "READ", "native_by_id", rt.NATIVE),
    ]
    with caplog.at_level(logging.WARNING, logger=rt.__name__):
        table = rt.compile_route_table(routes, "")

    # Werkzeug serves /x/5 with by_id: the widened entry must not fall behind
    # by_name.
    assert table.lookup("GET", "/x/5")[0] == "MANAGE"
    assert table.lookup("GET", "/y/5") == ("MANAGE", "native_by_id")
    assert "converter" in caplog.text


def test_graphql_is_unclassified_if_mlflow_ships_a_real_mutation(
    apps: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    monkeypatch.setattr(rt, "READ_ONLY_GRAPHQL", re.compile(r"^nothing$"))
    routes = rt.build_routes(apps[0], static_prefix="")

    graphql = [r for r in routes if r.pattern == "/graphql"]
    assert {(r.method, r.level, r.classified) for r in graphql} == {
        ("GET", "MANAGE", False),
        ("POST", "MANAGE", False),
    }


# --- The compiled core ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("GET", "no-slash", "READ", "x"), "must start with '/'"),
        (("GET", "/a/<int:x>", "READ", "x"), "unsupported converter"),
        (("GET", "/a/{x", "READ", "x"), "unclosed"),
        (("GET", "/a", "read", "x"), "unknown level"),
        (("GET", "/a", "NO_PERMISSIONS", "x"), "unknown level"),
        (("G ET", "/a", "READ", "x"), "method"),
    ],
)
def test_a_bad_entry_raises_value_error(entry: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _core.RouteTable([entry])
    with pytest.raises(ValueError, match=message):
        _core.RouteTable([], first_match=[entry])


def test_a_bad_static_prefix_raises_value_error() -> None:
    with pytest.raises(ValueError, match="static prefix"):
        _core.RouteTable([], static_prefix="mlflow")


def test_route_table_reports_its_size(uvicorn: Any, uvicorn_routes: list[RouteSpec]) -> None:
    assert len(uvicorn) == len(uvicorn_routes)
    assert "routes" in repr(uvicorn)
    assert len(_core.RouteTable([])) == 0


# --- Matching, against the real routers ----------------------------------------------

# Segments of real routes, so random paths often hit, and overlap, routes.
_SEGMENTS = [
    *("api", "ajax-api", "2.0", "3.0", "mlflow", "runs", "get", "search", "mcp-servers"),
    *("endpoints", "versions", "tags", "aliases", "mlflow-artifacts", "artifacts", "mpu"),
    *("create", "traces", "batchGet", "assessments", "gateway", "proxy", "v1", "models"),
    *("invocations", "static-files", "jobs", "cancel", "health", "graphql", ""),
]


@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURES_OK)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
    segments=st.lists(
        st.one_of(st.sampled_from(_SEGMENTS), st.text(alphabet="ab\n.%", max_size=3)),
        min_size=1,
        max_size=9,
    ),
)
def test_any_path_is_decided_for_the_route_mlflow_would_run(
    method: str, segments: list[str], uvicorn: Any, uvicorn_routes: list[RouteSpec], oracle: Any
) -> None:
    path = "/" + "/".join(segments)
    served = oracle.served(method, path)
    got = uvicorn.lookup(method, path)

    if served is None:
        return  # a 404, 405 or redirect: no handler runs
    by_key = {(r.source, r.method, r.pattern): r for r in uvicorn_routes}
    assert got == route_oracle.expected_for(served, by_key, "")


@settings(max_examples=200, deadline=None)
@given(path=st.text(alphabet="/abcmlfow", max_size=30))
def test_a_path_outside_the_prefix_is_unknown(path: str) -> None:
    table = _core.RouteTable(
        [("GET", "/{rest:path}", "PUBLIC", "everything"), ("GET", "", "PUBLIC", "bare")],
        static_prefix="/mlflow",
    )

    inside = path == "/mlflow" or path.startswith("/mlflow/")
    assert (table.lookup("GET", path) == UNKNOWN) is not inside
