"""The request-shape tricks of `test_hostile2_e2e.py` under MLflow's `--static-prefix`,
plus tricks on the prefix itself: none may lift a caller's level."""

from __future__ import annotations

import json

import pytest

from test_hostile2_e2e import (
    JSON,
    World,
    send,
    test_a_preflight_without_origin_runs_no_view,
    test_a_request_smuggled_behind_a_chunked_search_is_never_run,
    test_a_run_the_server_creates_for_an_editor_names_the_editor,
    test_editor_cannot_retag_mlflow_user_whatever_the_body_encoding,
    test_viewer_cannot_create_an_experiment_through_a_reshaped_method,
    test_viewer_cannot_delete_an_experiment_through_a_reshaped_path,
    world,
)

PREFIX = "/mlflow"
STATIC_PREFIX = PREFIX
EMULATOR_OPTIONS = {"project_id": "P2PluginHostileTwoPrefix1"}
SERVER_ENV = {"OPENAI_API_KEY": "placeholder-not-a-key"}

__all__ = [
    "test_a_preflight_without_origin_runs_no_view",
    "test_a_request_smuggled_behind_a_chunked_search_is_never_run",
    "test_a_run_the_server_creates_for_an_editor_names_the_editor",
    "test_editor_cannot_retag_mlflow_user_whatever_the_body_encoding",
    "test_viewer_cannot_create_an_experiment_through_a_reshaped_method",
    "test_viewer_cannot_delete_an_experiment_through_a_reshaped_path",
    "world",
]

PREFIX_PATHS = [
    "//mlflow/api/2.0/mlflow/experiments/delete",
    "/mlflow//api/2.0/mlflow/experiments/delete",
    "/MLFLOW/api/2.0/mlflow/experiments/delete",
    "/mlflow%2Fapi/2.0/mlflow/experiments/delete",
    "/mlflowx/api/2.0/mlflow/experiments/delete",
    "/api/2.0/mlflow/experiments/delete",
    "/mlflow/../api/2.0/mlflow/experiments/delete",
    "/mlflow/static-files/../api/2.0/mlflow/experiments/delete",
    "/static-files/x/../../mlflow/api/2.0/mlflow/experiments/delete",
]


@pytest.mark.parametrize("path", PREFIX_PATHS)
def test_viewer_cannot_delete_an_experiment_by_reshaping_the_prefix(
    world: World, path: str
) -> None:
    assert world.server.prefix == PREFIX
    body = json.dumps({"experiment_id": world.experiment_id}).encode()
    reply = send(world.server, "POST", path, [*world.auth("viewer"), JSON], body)
    assert reply.status >= 400, reply.body
    assert world.experiment_stage() == "active"


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/api/2.0/mlflow/experiments/search",
        "/api/2.0/mlflow-artifacts/artifacts/0",
        "/build/../mlflow/api/2.0/mlflow/experiments/search",
        "/mlflow/static-files/../api/2.0/mlflow/experiments/search",
        "/mlflow/health/../api/2.0/mlflow/experiments/search",
    ],
)
def test_paths_around_the_prefix_give_no_data_without_a_credential(world: World, path: str) -> None:
    reply = send(world.server, "GET", path, [])
    assert reply.status in (401, 404), reply.body
