"""`create_app`: the `mlflow.app` entry point behind `mlflow server --app-name descope-auth`.

MLflow imports this module in the `mlflow server` process itself (to see that
`create_app` is a factory) and then calls `create_app()` in every worker. The
import therefore stays cheap (MLflow, Flask and Starlette are imported inside
functions), and it is also where a bad configuration stops the server: once,
in the CLI process, before uvicorn's supervisor could restart a failing worker
forever (contract §1).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_descope_auth._core import RouteTable
    from mlflow_descope_auth.config import Config
    from mlflow_descope_auth.gate import GateSettings
    from mlflow_descope_auth.login import LoginSettings
    from mlflow_descope_auth.middleware import AuthenticationMiddleware

logger = logging.getLogger(__name__)

# Set by `mlflow server` for its workers: "uvicorn", "gunicorn" or "waitress".
SGI_NAME_ENV = "_MLFLOW_SGI_NAME"
# MLflow's `--static-prefix`, as `mlflow server` passes it to its workers.
STATIC_PREFIX_ENV = "_MLFLOW_STATIC_PREFIX"

# The oldest MLflow this plugin runs on: 3.4 is the first release whose
# `mlflow server` tells its workers which server runs them (_MLFLOW_SGI_NAME)
# and runs an `--app-name` factory under uvicorn; docs/compat.md has the
# releases tested. Keep in step with the floor in pyproject.toml.
MIN_MLFLOW_VERSION = (3, 4)

_created = threading.Lock()
_created_once = False


def check_mlflow_version(installed: str | None = None) -> None:
    """Raise `ConfigurationError` when the installed MLflow is older than
    `MIN_MLFLOW_VERSION` (`installed` defaults to the installed distribution's)."""
    from importlib import metadata

    from mlflow_descope_auth.exceptions import ConfigurationError

    if installed is None:
        try:
            installed = metadata.version("mlflow")
        except metadata.PackageNotFoundError:
            # Not installed as a distribution (e.g. a source checkout): the
            # imports tell soon enough.
            return
    match = re.match(r"(\d+)\.(\d+)", installed)
    if match is None or (int(match[1]), int(match[2])) >= MIN_MLFLOW_VERSION:
        return
    floor = ".".join(map(str, MIN_MLFLOW_VERSION))
    raise ConfigurationError(
        f"mlflow-descope-auth needs MLflow >= {floor}, but MLflow {installed} is installed; "
        f"upgrade it with: pip install 'mlflow>={floor},<4'"
    )


def create_app(*, middleware: type[AuthenticationMiddleware] | None = None) -> Any:
    """MLflow's server with every request passing the Descope gate.

    Under uvicorn (MLflow's default) this is MLflow's FastAPI app with
    `middleware` (default `AuthenticationMiddleware`) outermost, so native
    FastAPI routes are covered too; otherwise it is MLflow's Flask app with the
    gate as its first `before_request` hook. Raises `ConfigurationError` when
    the configuration is invalid or the installed MLflow is too old.
    """
    check_mlflow_version()
    from mlflow.server import app as flask_app

    from mlflow_descope_auth import identity
    from mlflow_descope_auth import middleware as adapters
    from mlflow_descope_auth.client import get_descope_client
    from mlflow_descope_auth.config import get_config
    from mlflow_descope_auth.gate import Gate
    from mlflow_descope_auth.login import LoginViews

    global _created_once
    with _created:
        if _created_once:
            raise RuntimeError("create_app() was already called in this process")
        _created_once = True

    config = get_config()
    core = get_descope_client().core
    static_prefix = os.environ.get(STATIC_PREFIX_ENV, "").rstrip("/")
    gate_settings = _gate_settings(config, static_prefix)

    LoginViews(core, gate_settings, _login_settings(config, static_prefix)).register(flask_app)
    identity.register_identity_routes(flask_app, static_prefix)
    identity.attribute_server_created_runs()

    fastapi_app = None
    if os.environ.get(SGI_NAME_ENV) == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        fastapi_app = create_fastapi_app(flask_app)

    table = _route_table(flask_app, fastapi_app, static_prefix)
    core.set_routes(table)
    # Descope's key set is fetched by the first request that needs it, not by
    # a thread started here: under gunicorn's `--preload` the workers are forked
    # from this process, and a fetch caught mid-way would leave its lock held.
    gate = Gate(core, table, gate_settings)

    if fastapi_app is None:
        adapters.install_flask_gate(flask_app, gate)
        return flask_app
    adapters.install_flask_bridge(flask_app)
    adapters.preserve_flask_cookies(flask_app)
    fastapi_app.add_middleware(middleware or adapters.AuthenticationMiddleware, gate=gate)
    return fastapi_app


def _mlflow_allowed_origins() -> list[str]:
    """The origins the operator allowed for CORS in MLflow itself (none before 3.5)."""
    try:
        from mlflow.server.security_utils import get_allowed_origins_from_env
    except ImportError:
        # MLflow before 3.5 has no CORS allow-list: it vouches for no origin.
        return []
    return list(get_allowed_origins_from_env() or [])


def _gate_settings(config: Config, static_prefix: str) -> GateSettings:
    from mlflow_descope_auth.gate import GateSettings

    # Origins the operator allowed for credentialed CORS in MLflow itself;
    # only exact entries count (a pattern or `*` never vouches for cookies).
    allowed = _mlflow_allowed_origins()
    trusted = frozenset(o.rstrip("/").lower() for o in allowed if "*" not in o)
    secure = config.COOKIE_SECURE
    return GateSettings(
        static_prefix=static_prefix,
        cookie_secure=secure if isinstance(secure, str) else str(secure).lower(),
        trusted_origins=trusted,
        session_cookie=config.SESSION_COOKIE_NAME,
        refresh_cookie=config.REFRESH_COOKIE_NAME,
    )


def _login_settings(config: Config, static_prefix: str) -> LoginSettings:
    from mlflow_descope_auth.login import LoginSettings

    return LoginSettings(
        project_id=config.DESCOPE_PROJECT_ID,
        flow_id=config.DESCOPE_FLOW_ID,
        base_url=config.DESCOPE_BASE_URL or "",
        web_component_url=config.DESCOPE_WEB_COMPONENT_URL or "",
        redirect_url=config.DESCOPE_REDIRECT_URL,
        static_prefix=static_prefix,
    )


def _route_table(flask_app: Any, fastapi_app: Any, static_prefix: str) -> RouteTable:
    """Every route the installed MLflow serves, ours included, with its required level."""
    from mlflow_descope_auth import identity, login
    from mlflow_descope_auth.route_table import (
        AUTHENTICATED,
        FLASK,
        RouteSpec,
        build_routes,
        compile_route_table,
    )

    own = [
        RouteSpec(method, static_prefix + path, level, name, FLASK)
        for method, path, level, name in login.login_routes()
    ]
    own += [
        RouteSpec(method, static_prefix + path, AUTHENTICATED, name, FLASK)
        for method, path, name in identity.identity_routes()
    ]
    routes = build_routes(flask_app, fastapi_app, extra=own, static_prefix=static_prefix)
    return compile_route_table(routes, static_prefix)


def _is_mlflow_server_cli() -> bool:
    """Whether this process is `mlflow server` itself, before it starts any worker."""
    if SGI_NAME_ENV in os.environ or len(sys.argv) < 2 or sys.argv[1] != "server":
        return False
    program = sys.argv[0].replace("\\", "/")
    return program.rsplit("/", 1)[-1] in ("mlflow", "mlflow.exe") or program.endswith(
        "/mlflow/__main__.py"
    )


def _stop_on_bad_configuration() -> None:
    """In the `mlflow server` process: one plain line and a non-zero exit on bad
    configuration or an MLflow older than the plugin supports."""
    from mlflow_descope_auth.config import get_config
    from mlflow_descope_auth.exceptions import ConfigurationError

    try:
        check_mlflow_version()
        get_config()
    except ConfigurationError as exc:
        sys.stderr.write(f"ValueError: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None


if _is_mlflow_server_cli():
    _stop_on_bad_configuration()
