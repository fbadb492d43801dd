"""Asks MLflow's real routers which route serves a request, and checks the
compiled route table against them.

Used in-process by tests/test_route_table.py, and as a script in a fresh
interpreter for a static prefix (MLflow reads `_MLFLOW_STATIC_PREFIX` when
`mlflow.server` is first imported):

    _MLFLOW_STATIC_PREFIX=/mlflow python tests/route_oracle.py

prints a JSON report (see `check`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any
from unittest import mock

from mlflow_descope_auth import route_table as rt
from mlflow_descope_auth.route_table import FLASK, NATIVE, RouteSpec

# Placeholder values: a plain id, then static segments of real routes, so the
# samples also probe which of two overlapping routes a router prefers.
FILLS = [
    ("v1", "a/b"),
    ("search", "a"),
    ("tags", "a/tags/b"),
    ("versions", "a/versions/b/tags/c"),
    ("get", "x/endpoints/y"),
]
_PATH_PARAM = re.compile(r"<path:[^>]*>|\{[^}:]*:path\}")
_PLAIN_PARAM = re.compile(r"<[^>]*>|\{[^}]*\}")


def load_apps() -> tuple[Any, Any]:
    warnings.simplefilter("ignore")
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import create_fastapi_app

    return flask_app, create_fastapi_app(flask_app)


def samples(pattern: str) -> list[str]:
    """Concrete paths for a pattern, one per fill (duplicates removed)."""
    paths = []
    for plain, path in FILLS:
        sample = _PLAIN_PARAM.sub(plain, _PATH_PARAM.sub(path, pattern))
        if sample not in paths:
            paths.append(sample)
    return paths


class _Served(Exception):
    """Raised where a router hands a request to a route: a signal, not an error."""


class Oracle:
    """Which route MLflow would run for (method, path): FastAPI's router first
    (under uvicorn), then Werkzeug's map of the Flask app. Handlers never run:
    the routers are stopped at the moment they hand the request over."""

    def __init__(self, flask_app: Any, fastapi_app: Any = None) -> None:
        self._adapter = flask_app.url_map.bind("localhost")
        self._fastapi = fastapi_app
        self._loop = asyncio.new_event_loop()
        self._native_paths: dict[int, str] = {}
        if fastapi_app is not None:
            from fastapi.routing import iter_route_contexts

            for context in iter_route_contexts(fastapi_app.routes):
                self._native_paths[id(context.original_route)] = context.path

    def close(self) -> None:
        self._loop.close()

    def served(self, method: str, path: str) -> tuple[str, str, str] | None:
        """(source, method, pattern) of the route that runs, None for none (a
        404, 405 or redirect)."""
        if self._fastapi is not None:
            native = self._native(method, path)
            if native != "flask":
                return native
        return self._flask(method, path)

    def _native(self, method: str, path: str) -> tuple[str, str, str] | str | None:
        from fastapi.routing import APIRoute
        from starlette.exceptions import HTTPException
        from starlette.routing import Mount

        async def stop(route: Any, scope: Any, receive: Any, send: Any) -> None:
            raise _Served(route, scope)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            return None

        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "app": self._fastapi,
        }
        with mock.patch.object(APIRoute, "handle", stop), mock.patch.object(Mount, "handle", stop):
            try:
                self._loop.run_until_complete(self._fastapi.router(scope, receive, send))
            except HTTPException:
                return None
            except _Served as served:
                route, routed = served.args
                if isinstance(route, Mount):
                    return "flask"
                return NATIVE, method, self._served_path(route, routed)
        return None

    def _served_path(self, route: Any, scope: dict[str, Any]) -> str:
        """The pattern as served: one router included under two prefixes (MCP)
        shares its route objects, so ask FastAPI which inclusion ran."""
        context = scope.get("fastapi", {}).get("effective_route_context")
        path = getattr(context, "path", None)
        return path if isinstance(path, str) else self._native_paths[id(route)]

    def _flask(self, method: str, path: str) -> tuple[str, str, str] | None:
        from werkzeug.exceptions import HTTPException

        try:
            rule, _ = self._adapter.match(path, method, return_rule=True)
        except HTTPException:
            return None
        if rule.methods is None:
            return FLASK, "*", rule.rule
        method = method.upper()  # as Werkzeug does
        served_method = "GET" if method == "HEAD" and "GET" in rule.methods else method
        return FLASK, served_method, rule.rule


def _shape(pattern: str) -> str:
    return _PLAIN_PARAM.sub("<x>", _PATH_PARAM.sub("<path>", pattern))


def outside_prefix(pattern: str, prefix: str) -> bool:
    return bool(prefix) and pattern != prefix and not pattern.startswith(prefix + "/")


def check(
    prefix: str, *, native: bool, compile_table: Callable[[list[RouteSpec], str], Any] | None = None
) -> dict[str, Any]:
    """Builds the table as the plugin will and compares it with the routers.

    The report: `pairs` (every real (route, method) with its level), `levels`
    (counts), `mirrored` (twins added), `outside` (routes served outside the
    prefix), `warnings` (what the builder logged), and `failures`, which must
    be empty:
    - a route nothing classified;
    - a sample path where the table's level differs from the level of the
      route the routers actually pick (or is not "<unknown>" for a route
      served outside the prefix);
    - a route that none of its samples reaches (so nothing checked it);
    - an `/api/` path whose `/ajax-api/` twin gets another answer.

    `compile_table` replaces `compile_route_table`, to show that a wrong
    table is caught.
    """
    flask_app, fastapi_app = load_apps()
    if not native:
        fastapi_app = None
    logged: list[str] = []
    handler = _ListHandler(logged)
    logging.getLogger(rt.__name__).addHandler(handler)
    try:
        routes = rt.build_routes(flask_app, fastapi_app)
        table = (compile_table or rt.compile_route_table)(routes, prefix)
    finally:
        logging.getLogger(rt.__name__).removeHandler(handler)

    real = [route for route in routes if not route.mirrored]
    by_key = {(r.source, r.method, r.pattern): r for r in routes}
    failures = [f"unclassified: {r.method} {r.pattern} {r.name}" for r in real if not r.classified]
    oracle = Oracle(flask_app, fastapi_app)
    try:
        for route in real:
            failures += _check_route(route, table, oracle, by_key, prefix)
    finally:
        oracle.close()

    return {
        "pairs": [[r.source, r.method, r.pattern, r.level, r.name] for r in real],
        "levels": dict(Counter(r.level for r in real)),
        "mirrored": sum(r.mirrored for r in routes),
        "outside": sorted(
            {f"{r.method} {r.pattern}" for r in real if outside_prefix(r.pattern, prefix)}
        ),
        "warnings": logged,
        "failures": failures,
    }


def expected_for(
    served: tuple[str, str, str], by_key: dict[tuple[str, str, str], RouteSpec], prefix: str
) -> tuple[str, str]:
    spec = by_key[served]
    if outside_prefix(spec.pattern, prefix):
        return ("MANAGE", "<unknown>")
    return (spec.level, spec.name)


def _check_route(
    route: RouteSpec,
    table: Any,
    oracle: Oracle,
    by_key: dict[tuple[str, str, str], RouteSpec],
    prefix: str,
) -> list[str]:
    failures = []
    # HEAD rides on GET, and a lower-case method is the same method to the
    # table; both must land where the routers send them.
    methods = [route.method, route.method.lower()] + (["HEAD"] if route.method == "GET" else [])
    if route.method == "*":
        methods = ["GET", "POST", "DELETE"]
    reached = False
    paths = samples(route.pattern)
    # Werkzeug collapses leading slashes; Starlette does not.
    paths += ["/" + path for path in paths[:1]]
    for path in paths:
        for method in methods:
            served = oracle.served(method, path)
            if served is None:
                continue
            # A Flask rule that a native route of the same shape and level
            # shadows under uvicorn (artifact GET/PUT) counts as reached.
            reached |= served[1] == route.method and (
                _shape(served[2]) == _shape(route.pattern) and by_key[served].level == route.level
            )
            expected = expected_for(served, by_key, prefix)
            got = table.lookup(method, path)
            if got[0] != expected[0] or (expected[1] == "<unknown>") != (got[1] == "<unknown>"):
                failures.append(f"{method} {path!r}: table says {got}, MLflow runs {expected}")
            twin = rt.twin_pattern(path, prefix)
            twin_got = None if twin is None else table.lookup(method, twin)
            if twin_got is not None and twin_got != got:
                failures.append(f"{method} {path!r}: twin {twin!r} says {twin_got}")
    if not reached:
        failures.append(f"no sample reaches {route.method} {route.pattern} ({route.name})")
    return failures


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


if __name__ == "__main__":
    import os
    import sys

    prefix = os.environ.get("_MLFLOW_STATIC_PREFIX", "").rstrip("/")
    native = "--gunicorn" not in sys.argv
    print(json.dumps(check(prefix, native=native)))
