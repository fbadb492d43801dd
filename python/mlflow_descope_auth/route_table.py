"""Building the route table from the MLflow that is installed.

Every (route, method) the server serves gets a level, decided by what the
endpoint does (contract §5; the rules and every judgement call are in
docs/routes.md):

- Flask rules backed by a protobuf RPC are classified by the RPC's verb
  (``GetRun`` reads, ``CreateRun`` edits, ``DeleteRun`` manages), with explicit
  overrides where the verb lies (``CreatePresignedDownloadUrl`` reads,
  ``DeleteTag`` only edits, webhooks are administration).
- Flask rules without an RPC, and FastAPI's native routes, are listed one by
  one, by view function.

The rules themselves live in `route_rules`.
- Anything else is *unclassified*: it needs MANAGE, and `build_routes` lists
  it once in a WARNING.

``build_routes`` returns the entries with the patterns as served (static prefix
included); ``compile_route_table`` strips the prefix and hands the two tiers to
the Rust core, which does the per-request lookup. MLflow is imported inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from mlflow_descope_auth import _core
from mlflow_descope_auth.route_rules import (
    AUTHENTICATED,
    EDIT,
    MANAGE,
    PUBLIC,
    READ,
    READ_ONLY_GRAPHQL,
    RUNS_SCORERS,
    flask_view_level,
    native_view_level,
    rpc_level,
    stricter,
)

__all__ = [
    "AUTHENTICATED",
    "EDIT",
    "FLASK",
    "MANAGE",
    "NATIVE",
    "PUBLIC",
    "READ",
    "RouteSpec",
    "build_routes",
    "compile_route_table",
    "discover_routes",
    "mlflow_static_prefix",
    "twin_pattern",
]

logger = logging.getLogger(__name__)

#: Entries served by Flask: matched the way Werkzeug does.
FLASK = "flask"
#: Entries served by FastAPI before the Flask mount: the first that fits wins.
NATIVE = "native"

# MLflow's own name for the variable its CLI sets from --static-prefix.
_STATIC_PREFIX_ENV_VAR = "_MLFLOW_STATIC_PREFIX"


class RouteSpec(NamedTuple):
    """One (route, method) and what it needs."""

    method: str
    #: As the app serves it, static prefix included.
    pattern: str
    level: str
    #: The RPC (``CreateRun``, ``artifacts.DeleteArtifact``) or view function.
    name: str
    #: `FLASK` or `NATIVE`.
    source: str
    #: False when nothing decided this route's level (it is MANAGE then).
    classified: bool = True
    #: True for an `/api/` or `/ajax-api/` twin added because MLflow serves
    #: only the other one.
    mirrored: bool = False


# --- Discovery ------------------------------------------------------------------


def mlflow_static_prefix() -> str:
    """The static prefix MLflow was started with (``--static-prefix``), without
    a trailing slash; "" when none."""
    return os.environ.get(_STATIC_PREFIX_ENV_VAR, "").rstrip("/")


def discover_routes(flask_app: Any, fastapi_app: Any = None) -> list[RouteSpec]:
    """Every (route, method) the apps serve, classified, in routing order:
    the native routes first (the order FastAPI tries them), then the Flask
    rules. No twins are added and nothing is logged."""
    routes = [] if fastapi_app is None else list(_native_routes(fastapi_app, flask_app))
    return routes + list(_flask_routes(flask_app))


def build_routes(
    flask_app: Any,
    fastapi_app: Any = None,
    *,
    extra: Iterable[RouteSpec] = (),
    static_prefix: str | None = None,
) -> list[RouteSpec]:
    """The full route list for `compile_route_table`.

    ``fastapi_app`` is the app uvicorn serves (None under gunicorn, where only
    Flask exists). ``extra`` classifies routes this package adds itself
    (patterns as served, prefix included): an extra entry with the same source,
    method and pattern as a discovered route decides that route; the others
    are added, native ones ahead of every app route (the gate answers them
    before any app does), Flask ones after. ``static_prefix`` defaults to the
    one MLflow was started with. Logs one WARNING listing every route nothing
    classified; those need MANAGE.
    """
    prefix = mlflow_static_prefix() if static_prefix is None else static_prefix.rstrip("/")
    routes = _with_extra(discover_routes(flask_app, fastapi_app), list(extra))
    routes = _with_twins(routes, prefix)

    unknown = [route for route in routes if not route.classified and not route.mirrored]
    if unknown:
        logger.warning(
            "%d MLflow routes are not classified and need MANAGE until they are: %s",
            len(unknown),
            ", ".join(f"{r.method} {r.pattern} ({r.name})" for r in unknown),
        )
    return routes


def _flask_routes(flask_app: Any) -> Iterator[RouteSpec]:
    rpcs = _rpc_endpoints()
    graphql_level = READ if _graphql_is_read_only() else None
    for rule in flask_app.url_map.iter_rules():
        if rule.websocket or rule.redirect_to is not None:
            continue
        for method in _served_methods(rule):
            rpc = rpcs.get((rule.rule, method, rule.endpoint))
            if getattr(rule, "host", None) or getattr(rule, "subdomain", None):
                level = None
            elif rpc is not None:
                level = rpc_level(rpc.rsplit(".", 1)[-1])
            elif rule.endpoint == "_graphql":
                level = graphql_level
            else:
                level = flask_view_level(rule.endpoint, method)
            name = rpc or rule.endpoint
            yield _spec(method, rule.rule, level, name, FLASK)


def _served_methods(rule: Any) -> list[str]:
    """The methods a rule's view answers: HEAD rides on GET (the table counts
    HEAD as GET), and Flask's automatic OPTIONS never reaches the view (it is
    left to the table's default, MANAGE; CORS preflights pass before it)."""
    if rule.methods is None:
        return ["*"]
    methods = set(rule.methods)
    if "GET" in methods:
        methods.discard("HEAD")
    if getattr(rule, "provide_automatic_options", False):
        methods.discard("OPTIONS")
    return sorted(methods)


def _rpc_endpoints() -> dict[tuple[str, str, str], str]:
    """(Flask rule, method, view name) -> RPC, from MLflow's own endpoint list:
    `get_endpoints` hands each RPC's request class to the selector we pass."""
    # MLflow's handlers are untyped; Any keeps mypy's strict mode honest here.
    handlers: Any = importlib.import_module("mlflow.server.handlers")

    found: dict[tuple[str, str, str], str] = {}

    def remember(request_class: Any) -> Any:
        view = handlers.get_handler(request_class)
        full_name = request_class.DESCRIPTOR.full_name
        return _RpcMarker(full_name.removeprefix("mlflow."), view.__name__)

    for path, marker, methods in handlers.get_endpoints(get_handler=remember):
        if isinstance(marker, _RpcMarker):
            for method in methods:
                found[(path, method, marker.view)] = marker.rpc
    return found


class _RpcMarker:
    """What `_rpc_endpoints` passes MLflow as a "handler": the RPC's name."""

    def __init__(self, rpc: str, view: str) -> None:
        self.rpc = rpc
        self.view = view
        self.__name__ = view


def _graphql_is_read_only() -> bool:
    from mlflow.server.graphql.graphql_schema_extensions import schema

    mutation = schema.graphql_schema.mutation_type
    fields = [] if mutation is None else list(mutation.fields)
    return all(READ_ONLY_GRAPHQL.match(field) for field in fields)


def _native_routes(fastapi_app: Any, flask_app: Any) -> Iterator[RouteSpec]:
    from starlette.routing import Mount, WebSocketRoute

    for route, kind in _flattened_routes(fastapi_app):
        if isinstance(kind, WebSocketRoute) or type(kind).__name__ == "APIWebSocketRoute":
            continue  # not HTTP: no request of ours reaches it
        if isinstance(kind, Mount):
            if not route.path and getattr(route.app, "app", None) is flask_app:
                return  # the Flask mount: it takes every path, nothing after it runs
            # Some other mounted app: we know nothing of its routes.
            yield _spec("*", f"{route.path}/{{path:path}}", None, f"mount {route.path}", NATIVE)
            continue
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if not isinstance(path, str) or not methods:
            # A route kind we cannot read: it may take any path, so everything
            # from here on is unknown.
            yield _spec("*", "/{path:path}", None, type(kind).__name__, NATIVE)
            return
        for method in sorted(methods - {"HEAD"} if "GET" in methods else methods):
            yield _native_spec(route, path, method)


def _flattened_routes(fastapi_app: Any) -> list[tuple[Any, Any]]:
    """(route, kind) in the order the app tries them, included routers
    expanded: FastAPI >= 0.136 keeps them nested, and its route contexts carry
    the path as served (router prefix included) while `original_route` tells
    what kind of route it is."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return [(route, route) for route in fastapi_app.routes]
    contexts = iter_route_contexts(fastapi_app.routes)
    return [(context, context.original_route) for context in contexts]


def _native_spec(route: Any, path: str, method: str) -> RouteSpec:
    endpoint = getattr(route, "endpoint", None)
    module = getattr(endpoint, "__module__", "")
    name = getattr(endpoint, "__name__", type(route).__name__)
    level = native_view_level(module, name, method)
    return _spec(method, path, level, name, NATIVE)


def _spec(method: str, pattern: str, level: str | None, name: str, source: str) -> RouteSpec:
    if name in RUNS_SCORERS and level is not None and _custom_scorers_enabled():
        level = MANAGE
    if level is None:
        return RouteSpec(method, pattern, MANAGE, name, source, classified=False)
    return RouteSpec(method, pattern, level, name, source)


def _custom_scorers_enabled() -> bool:
    """Whether MLflow may exec() a custom scorer's source on this host.

    MLflow before 3.17 has no MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS switch to
    read (and before 3.12 nothing refuses a custom scorer), so without the
    switch they count as on.
    """
    variables: Any = importlib.import_module("mlflow.environment_variables")
    switch = getattr(variables, "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS", None)
    if switch is None:
        return True
    return bool(switch.get())


def _with_extra(routes: list[RouteSpec], extra: list[RouteSpec]) -> list[RouteSpec]:
    by_key = {(e.source, e.method, e.pattern): e for e in extra}
    used: set[tuple[str, str, str]] = set()
    merged = []
    for route in routes:
        key = (route.source, route.method, route.pattern)
        if key in by_key:
            used.add(key)
            override = by_key[key]
            route = route._replace(level=override.level, name=override.name, classified=True)
        merged.append(route)
    unused = [e for e in extra if (e.source, e.method, e.pattern) not in used]
    ahead = [e for e in unused if e.source == NATIVE]
    behind = [e for e in unused if e.source != NATIVE]
    return ahead + merged + behind


# --- Twins ------------------------------------------------------------------------

_API_ROOTS = ("/api/", "/ajax-api/")


def twin_pattern(pattern: str, static_prefix: str) -> str | None:
    """The `/ajax-api/` twin of an `/api/` pattern and back; None for others."""
    if not pattern.startswith(static_prefix):
        return None
    rest = pattern[len(static_prefix) :]
    for root, other in zip(_API_ROOTS, reversed(_API_ROOTS)):
        if rest.startswith(root):
            return static_prefix + other + rest[len(root) :]
    return None


def _shape(pattern: str) -> str:
    """A pattern with placeholder names erased, to compare Flask and FastAPI
    spellings of the same route."""
    pattern = re.sub(r"<path:[^>]*>|\{[^}:]*:path\}", "<path>", pattern)
    return re.sub(r"<[^>]*>|\{[^}]*\}", "<x>", pattern)


def _with_twins(routes: list[RouteSpec], static_prefix: str) -> list[RouteSpec]:
    """Makes every `/api/` route and its `/ajax-api/` twin need the same level.

    Two real twins that disagree both get the stricter level (and a WARNING;
    none do in the installed MLflow). A route MLflow serves under one root only
    gets its twin added, so the other root never needs less, or more, for the
    same path: that twin is not served, and a request to it ends in a 404.
    """
    served = {(r.method, _shape(r.pattern)): r for r in routes}
    settled: dict[tuple[str, str], str] = {}
    for route in routes:
        twin = twin_pattern(route.pattern, static_prefix)
        other = served.get((route.method, _shape(twin))) if twin else None
        key = (route.method, _shape(route.pattern))
        if other is None or other.level == route.level or key in settled:
            continue
        level = stricter(route.level, other.level)
        settled[key] = settled[(other.method, _shape(other.pattern))] = level
        logger.warning(
            "MLflow's twin routes %s %s (%s) and %s (%s) differ; both need %s",
            route.method,
            route.pattern,
            route.level,
            other.pattern,
            other.level,
            level,
        )

    result = []
    for route in routes:
        level = settled.get((route.method, _shape(route.pattern)), route.level)
        route = route._replace(level=level)
        result.append(route)
        twin = twin_pattern(route.pattern, static_prefix)
        if twin is not None and (route.method, _shape(twin)) not in served:
            result.append(route._replace(pattern=twin, mirrored=True))
    return result


# --- Compiling --------------------------------------------------------------------


def compile_route_table(
    routes: Sequence[RouteSpec], static_prefix: str | None = None
) -> _core.RouteTable:
    """Hands the routes to the Rust core, patterns made relative to the static
    prefix (default: the one MLflow was started with).

    Routes MLflow serves outside the prefix (with a prefix, the native
    artifact routes and Flask's `/build` static route) cannot be told apart
    from paths outside it: they are left out, so they need MANAGE, and are
    listed in one WARNING. A route the core cannot represent exactly (a
    converter other than default/string/path) is widened to a placeholder
    that matches at least as much, and needs MANAGE.
    """
    prefix = mlflow_static_prefix() if static_prefix is None else static_prefix.rstrip("/")
    tiers: dict[str, list[tuple[str, str, str, str]]] = {NATIVE: [], FLASK: []}
    outside = []
    for route in routes:
        relative = _relative(route.pattern, prefix)
        if relative is None:
            outside.append(route)
            continue
        entry = _representable((route.method, relative, route.level, route.name))
        tiers[NATIVE if route.source == NATIVE else FLASK].append(entry)

    tiers[FLASK].extend(_bare_prefix_entries(tiers, prefix))
    if outside:
        logger.warning(
            "%d MLflow routes are served outside the static prefix %r and need MANAGE: %s",
            len(outside),
            prefix,
            ", ".join(f"{r.method} {r.pattern}" for r in outside),
        )
    return _core.RouteTable(tiers[FLASK], static_prefix=prefix, first_match=tiers[NATIVE])


def _relative(pattern: str, prefix: str) -> str | None:
    """The pattern relative to the prefix; None when it is served outside."""
    if not prefix:
        return pattern
    if pattern == prefix:
        return ""
    if pattern.startswith(prefix + "/"):
        return pattern[len(prefix) :]
    head = re.split(r"[<{]", pattern, maxsplit=1)[0]
    if head != pattern and (prefix + "/").startswith(head):
        # A placeholder before the prefix ends: it may take paths under the
        # prefix, and leaving it out could hand them to a weaker route.
        raise ValueError(
            f"route pattern {pattern!r} cannot be placed relative to the static prefix {prefix!r}"
        )
    return None


def _bare_prefix_entries(
    tiers: dict[str, list[tuple[str, str, str, str]]], prefix: str
) -> list[tuple[str, str, str, str]]:
    """``/prefix`` (no slash): Werkzeug redirects it to the index page
    ``/prefix/``, so it needs what the index needs, unless a route serves it."""
    if not prefix:
        return []
    taken = {m for tier in tiers.values() for m, pattern, _, _ in tier if pattern == ""}
    return [
        (method, "", level, name)
        for method, pattern, level, name in tiers[FLASK]
        if pattern == "/" and method not in taken
    ]


# Converters the core matches exactly; anything else is widened to a
# placeholder that matches at least as much and sits in the same place of the
# router's order: a one-segment converter (Werkzeug's int, float, uuid, any,
# string with arguments; Starlette's int, float, uuid) to a plain placeholder,
# which ties with any plain sibling (and ties take the strictest level);
# anything else to a path placeholder.
_EXACT_FLASK = re.compile(r"<(?:(?:default|string|path):)?\w+>")
_EXACT_FASTAPI = re.compile(r"\{\w+(?::(?:str|path))?\}")
_ONE_SEGMENT_FLASK = re.compile(r"<(?:default|string|int|float|uuid|any)(?:\(.*\))?:\w+>")
_ONE_SEGMENT_FASTAPI = re.compile(r"\{\w+:(?:int|float|uuid)\}")


def _widen_flask(match: re.Match[str]) -> str:
    if _EXACT_FLASK.fullmatch(match[0]):
        return match[0]
    return "<widened>" if _ONE_SEGMENT_FLASK.fullmatch(match[0]) else "<path:widened>"


def _widen_fastapi(match: re.Match[str]) -> str:
    if _EXACT_FASTAPI.fullmatch(match[0]):
        return match[0]
    return "{widened}" if _ONE_SEGMENT_FASTAPI.fullmatch(match[0]) else "{widened:path}"


def _representable(entry: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
    method, pattern, _, name = entry
    widened = re.sub(r"\{[^}]*\}", _widen_fastapi, re.sub(r"<[^>]*>", _widen_flask, pattern))
    if widened == pattern:
        return entry
    logger.warning(
        "route %s %s uses a converter the route table cannot match exactly; it needs MANAGE",
        method,
        pattern,
    )
    return (method, widened, MANAGE, name)
