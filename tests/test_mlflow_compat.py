"""Behaviour that depends on which MLflow 3.x release is installed: the plugin
refuses a release older than it supports with one plain message, and reads
MLflow settings that older releases lack as their safe meaning.

scripts/compat.sh runs the smoke set against other releases (docs/compat.md).
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

import pytest

from mlflow_descope_auth import app
from mlflow_descope_auth import route_table as rt
from mlflow_descope_auth._core import Core, RouteTable
from mlflow_descope_auth.exceptions import ConfigurationError
from mlflow_descope_auth.gate import Gate, GateSettings
from mlflow_descope_auth.middleware import AuthenticationMiddleware, install_flask_bridge
from mlflow_descope_auth.testing import DescopeEmulator
from test_middleware import ask_whoami, whoami_app

SCORERS_SWITCH = "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS"


@pytest.mark.parametrize("installed", ["3.0.0", "3.3.2", "3.3.0rc1", "2.22.0"])
def test_an_mlflow_older_than_the_floor_is_refused_naming_its_version(installed: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        app.check_mlflow_version(installed)

    message = str(refused.value)
    assert f"MLflow {installed} is installed" in message
    assert "needs MLflow >= 3.4" in message


@pytest.mark.parametrize("installed", ["3.4.0", "3.10.1", "3.17.2", "3.18.0.dev0", "3.40.0"])
def test_the_floor_and_newer_3x_releases_are_accepted(installed: str) -> None:
    app.check_mlflow_version(installed)


def test_the_floor_matches_the_dependency_pin() -> None:
    requires = metadata.requires("mlflow-descope-auth") or []
    (mlflow_pin,) = [r for r in requires if r.replace(" ", "").startswith("mlflow>")]
    floor = ".".join(map(str, app.MIN_MLFLOW_VERSION))
    assert f">={floor}" in mlflow_pin.replace(" ", "")


def test_the_installed_mlflow_passes_the_check() -> None:
    app.check_mlflow_version()


def test_create_app_refuses_an_old_mlflow_before_building_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metadata, "version", lambda _name: "3.3.2")
    created_before = app._created_once

    with pytest.raises(ConfigurationError, match=r"MLflow 3\.3\.2 is installed"):
        app.create_app()
    assert app._created_once == created_before


def test_the_server_cli_stops_with_one_line_on_an_old_mlflow(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(metadata, "version", lambda _name: "3.2.0")

    with pytest.raises(SystemExit) as stopped:
        app._stop_on_bad_configuration()

    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("ValueError: mlflow-descope-auth needs MLflow >= 3.4, but MLflow 3.2.0")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_without_mlflow_s_custom_scorer_switch_scorer_execution_needs_manage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Releases before the switch have no way to refuse a custom scorer.
    variables = importlib.import_module("mlflow.environment_variables")
    monkeypatch.delattr(variables, SCORERS_SWITCH, raising=False)

    spec = rt._spec("POST", "/api/3.0/mlflow/scorers/register", rt.EDIT, "RegisterScorer", rt.FLASK)
    assert spec.level == rt.MANAGE
    other = rt._spec("POST", "/api/2.0/mlflow/runs/create", rt.EDIT, "_create_run", rt.FLASK)
    assert other.level == rt.EDIT


def test_with_the_switch_off_scorer_execution_stays_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = importlib.import_module("mlflow.environment_variables")
    if not hasattr(variables, SCORERS_SWITCH):
        pytest.skip(f"this MLflow has no {SCORERS_SWITCH}")
    monkeypatch.delenv(SCORERS_SWITCH, raising=False)

    spec = rt._spec("POST", "/api/3.0/mlflow/scorers/register", rt.EDIT, "RegisterScorer", rt.FLASK)
    assert spec.level == rt.EDIT


def test_an_mlflow_without_a_cors_allow_list_vouches_for_no_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "https://ui.example")
    # A None entry makes the import fail, as on MLflow before 3.5.
    monkeypatch.setitem(sys.modules, "mlflow.server.security_utils", None)

    assert app._mlflow_allowed_origins() == []


def test_mlflow_s_cors_allow_list_is_read_where_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow.server.security_utils")
    monkeypatch.setenv("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "https://ui.example,https://b.example")

    assert app._mlflow_allowed_origins() == ["https://ui.example", "https://b.example"]


def test_identity_crosses_the_flask_mount_of_the_installed_mlflow(
    descope_emulator: DescopeEmulator,
) -> None:
    # MLflow's own FastAPI app around a small Flask app: the WSGI adapter is
    # whichever the installed release mounts (Starlette's, or 3.17's own).
    # Host localhost: newer releases refuse unknown Host headers.
    from mlflow.server.fastapi_app import create_fastapi_app

    core = Core(descope_emulator.project_id, base_url=descope_emulator.base_url)
    table = RouteTable([("GET", "/whoami", "READ", "whoami")])
    core.set_routes(table)
    descope_emulator.create_user("reader", roles=["mlflow-viewer"])
    token = str(descope_emulator.mint_session("reader"))

    flask_app = whoami_app()
    install_flask_bridge(flask_app)
    asgi = AuthenticationMiddleware(
        create_fastapi_app(flask_app), gate=Gate(core, table, GateSettings())
    )

    response = ask_whoami(asgi, token, "http://localhost")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["g"] == body["contextvar"]
    assert body["g"] not in (None, "mallory")
