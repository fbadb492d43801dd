"""Each permission level, end to end, through MLflow's own Python client (issue 5, contract §5).

Per server mode (uvicorn, gunicorn), two real `mlflow server --app-name descope-auth`
processes are shared: one reads project-level grants, one runs with `DESCOPE_TENANT` and
reads only that tenant's grants.
Both use `DESCOPE_DEFAULT_PERMISSION=NO_PERMISSIONS`, so a user without grants has none.
Every claim shape of §5 has its own user. A refused write is checked afterwards, by a
manager, to have changed nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from e2e_servers import SERVER_MODES, RunningServer, ServerPool, descope_env, wait_healthy
from mlflow_descope_auth.testing import DescopeEmulator

TENANT = "T1"
OTHER_TENANT = "T2"
ARTIFACT_TEXT = "seeded through the Descope gate\n"


@dataclass(frozen=True)
class Case:
    server: str  # "project" or "tenant"
    login_id: str
    grants: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.server}-{self.login_id}"


def in_tenant(
    tenant: str, roles: tuple[str, ...] = (), permissions: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {"tenants": {tenant: {"roles": list(roles), "permissions": list(permissions)}}}


NO_PERMISSIONS = [
    Case("project", "nemo", {}),
    Case("project", "tenant-only-manager", in_tenant(TENANT, roles=("mlflow-manager",))),
    Case("tenant", "outsider", in_tenant(OTHER_TENANT, ("mlflow-manager",), ("mlflow:manage",))),
    Case("tenant", "project-manager", {"roles": ["mlflow-manager"]}),
]
READ = [
    Case("project", "perm-read", {"permissions": ["mlflow:read"]}),
    Case("project", "role-viewer", {"roles": ["mlflow-viewer"]}),
    Case("tenant", "t-perm-read", in_tenant(TENANT, permissions=("mlflow:read",))),
    Case("tenant", "t-role-viewer", in_tenant(TENANT, roles=("mlflow-viewer",))),
]
EDIT = [
    Case("project", "perm-edit", {"permissions": ["mlflow:edit"]}),
    Case("project", "role-editor", {"roles": ["mlflow-editor"]}),
    Case("tenant", "t-perm-edit", in_tenant(TENANT, permissions=("mlflow:edit",))),
    Case("tenant", "t-role-editor", in_tenant(TENANT, roles=("mlflow-editor",))),
]
MANAGE = [
    Case("project", "admin-role", {"roles": ["admin"]}),
    Case("project", "perm-manage", {"permissions": ["mlflow:manage"]}),
    Case("project", "role-manager", {"roles": ["mlflow-manager"]}),
    Case("tenant", "t-admin-role", in_tenant(TENANT, roles=("admin",))),
    Case("tenant", "t-perm-manage", in_tenant(TENANT, permissions=("mlflow:manage",))),
    Case("tenant", "t-role-manager", in_tenant(TENANT, roles=("mlflow-manager",))),
]
SEEDER = "seeder"


@dataclass(frozen=True)
class Seed:
    """What a manager put on one server before the level tests run."""

    experiment_id: str
    run_id: str
    model: str


@dataclass
class World:
    emulator: DescopeEmulator
    servers: dict[str, RunningServer]
    seeds: dict[str, Seed]


@contextmanager
def signed_in(world: World, server: str, login_id: str) -> Iterator[Any]:
    """An MlflowClient that sends `login_id`'s session as MLFLOW_TRACKING_TOKEN."""
    from mlflow import MlflowClient

    url = world.servers[server].base_url
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_TOKEN", world.emulator.mint_session(login_id))
        patch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        patch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        yield MlflowClient(tracking_uri=url, registry_uri=url)


def assert_forbidden(call: Callable[[], Any]) -> None:
    """`call` is refused with 403 PERMISSION_DENIED (REST calls and artifact uploads alike)."""
    from mlflow.exceptions import MlflowException

    with pytest.raises((MlflowException, requests.HTTPError)) as caught:
        call()
    error = caught.value
    if isinstance(error, requests.HTTPError):
        assert error.response is not None
        assert error.response.status_code == 403, error.response.text
        assert error.response.json()["error_code"] == "PERMISSION_DENIED"
    else:
        assert error.error_code == "PERMISSION_DENIED", str(error)
        assert error.get_http_status_code() == 403


def write_file(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def seed(client: Any, directory: Path) -> Seed:
    experiment_id = client.create_experiment(f"seed-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_metric(run_id, "loss", 0.25, step=1)
    client.log_artifact(run_id, write_file(directory, "seed.txt", ARTIFACT_TEXT))
    model = f"seed-model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    client.create_model_version(
        model, f"{client.get_run(run_id).info.artifact_uri}/seed.txt", run_id
    )
    return Seed(experiment_id=experiment_id, run_id=run_id, model=model)


@pytest.fixture(scope="module", params=SERVER_MODES)
def world(
    request: pytest.FixtureRequest,
    mlflow_server_module: ServerPool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    mode = request.param
    with DescopeEmulator(project_id="P2LevelsEndToEnd01") as emulator:
        for case in NO_PERMISSIONS + READ + EDIT + MANAGE:
            emulator.create_user(case.login_id, **case.grants)
        emulator.create_user(SEEDER, roles=["admin"], **in_tenant(TENANT, roles=("admin",)))
        base = {"DESCOPE_DEFAULT_PERMISSION": "NO_PERMISSIONS"}
        servers = {
            "project": mlflow_server_module.start(
                descope_env(emulator, **base), mode=mode, wait=False
            ),
            "tenant": mlflow_server_module.start(
                descope_env(emulator, DESCOPE_TENANT=TENANT, **base), mode=mode, wait=False
            ),
        }
        for server in servers.values():
            wait_healthy(server)
        world = World(emulator=emulator, servers=servers, seeds={})
        for name in servers:
            with signed_in(world, name, SEEDER) as client:
                world.seeds[name] = seed(client, tmp_path_factory.mktemp(f"seed-{mode}-{name}"))
        yield world
        # The next mode's servers should not share the two cores with these.
        for server in servers.values():
            server.stop()


def ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


@pytest.mark.parametrize("case", NO_PERMISSIONS, ids=ids(NO_PERMISSIONS))
def test_no_permissions_user_can_neither_read_nor_write(world: World, case: Case) -> None:
    planted = world.seeds[case.server]
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    with signed_in(world, case.server, case.login_id) as client:
        assert_forbidden(client.search_experiments)
        assert_forbidden(lambda: client.get_experiment(planted.experiment_id))
        assert_forbidden(lambda: client.get_run(planted.run_id))
        assert_forbidden(lambda: client.get_registered_model(planted.model))
        assert_forbidden(lambda: client.create_experiment(name))
    with signed_in(world, case.server, SEEDER) as manager:
        assert manager.get_experiment_by_name(name) is None


@pytest.mark.parametrize("case", READ, ids=ids(READ))
def test_read_user_reads_everything_and_every_write_is_refused(
    world: World, case: Case, tmp_path: Path
) -> None:
    planted = world.seeds[case.server]
    experiment_name = f"reader-{uuid.uuid4().hex[:8]}"
    model_name = f"reader-model-{uuid.uuid4().hex[:8]}"
    with signed_in(world, case.server, case.login_id) as client:
        assert planted.experiment_id in [e.experiment_id for e in client.search_experiments()]
        assert client.get_experiment(planted.experiment_id).lifecycle_stage == "active"
        assert [r.info.run_id for r in client.search_runs([planted.experiment_id])] == [
            planted.run_id
        ]
        run = client.get_run(planted.run_id)
        assert run.data.params == {"alpha": "0.5"}
        assert run.data.metrics == {"loss": 0.25}
        assert [m.value for m in client.get_metric_history(planted.run_id, "loss")] == [0.25]
        assert [a.path for a in client.list_artifacts(planted.run_id)] == ["seed.txt"]
        downloaded = client.download_artifacts(planted.run_id, "seed.txt", str(tmp_path))
        assert Path(downloaded).read_text() == ARTIFACT_TEXT
        assert client.get_registered_model(planted.model).name == planted.model
        assert [v.version for v in client.search_model_versions(f"name='{planted.model}'")] == ["1"]

        assert_forbidden(lambda: client.create_experiment(experiment_name))
        assert_forbidden(lambda: client.create_run(planted.experiment_id))
        assert_forbidden(lambda: client.log_param(planted.run_id, "intruder", "1"))
        assert_forbidden(lambda: client.log_metric(planted.run_id, "intruder", 1.0))
        upload = write_file(tmp_path, "intruder.txt", "should not land\n")
        assert_forbidden(lambda: client.log_artifact(planted.run_id, upload))
        assert_forbidden(lambda: client.create_registered_model(model_name))
        source = f"{run.info.artifact_uri}/seed.txt"
        assert_forbidden(lambda: client.create_model_version(planted.model, source, planted.run_id))

    with signed_in(world, case.server, SEEDER) as manager:
        assert manager.get_experiment_by_name(experiment_name) is None
        assert len(manager.search_runs([planted.experiment_id])) == 1
        unchanged = manager.get_run(planted.run_id)
        assert unchanged.data.params == {"alpha": "0.5"}
        assert unchanged.data.metrics == {"loss": 0.25}
        assert [a.path for a in manager.list_artifacts(planted.run_id)] == ["seed.txt"]
        assert manager.search_registered_models(f"name='{model_name}'") == []
        assert len(manager.search_model_versions(f"name='{planted.model}'")) == 1


@dataclass(frozen=True)
class Written:
    experiment_id: str
    run_id: str
    model: str


def write_everything(client: Any, directory: Path) -> Written:
    """Creates an experiment and a run, logs to it, registers a model; checks each read-back."""
    experiment_id = client.create_experiment(f"writer-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.log_param(run_id, "beta", "2")
    client.log_metric(run_id, "acc", 0.75, step=3)
    client.log_artifact(run_id, write_file(directory, "written.txt", "written\n"))
    model = f"writer-model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    version = client.create_model_version(model, f"{run.info.artifact_uri}/written.txt", run_id)

    fetched = client.get_run(run_id)
    assert fetched.info.experiment_id == experiment_id
    assert fetched.data.params == {"beta": "2"}
    assert fetched.data.metrics == {"acc": 0.75}
    assert [a.path for a in client.list_artifacts(run_id)] == ["written.txt"]
    assert client.get_model_version(model, version.version).run_id == run_id
    return Written(experiment_id=experiment_id, run_id=run_id, model=model)


@pytest.mark.parametrize("case", EDIT, ids=ids(EDIT))
def test_edit_user_writes_but_deleting_a_run_or_experiment_is_refused(
    world: World, case: Case, tmp_path: Path
) -> None:
    with signed_in(world, case.server, case.login_id) as client:
        written = write_everything(client, tmp_path)
        assert_forbidden(lambda: client.delete_run(written.run_id))
        assert_forbidden(lambda: client.delete_experiment(written.experiment_id))
        assert_forbidden(lambda: client.delete_registered_model(written.model))
    with signed_in(world, case.server, SEEDER) as manager:
        assert manager.get_run(written.run_id).info.lifecycle_stage == "active"
        assert manager.get_experiment(written.experiment_id).lifecycle_stage == "active"
        assert manager.get_registered_model(written.model).name == written.model


@pytest.mark.parametrize("case", MANAGE, ids=ids(MANAGE))
def test_manage_user_writes_and_deletes_runs_experiments_and_models(
    world: World, case: Case, tmp_path: Path
) -> None:
    from mlflow.exceptions import MlflowException

    with signed_in(world, case.server, case.login_id) as client:
        written = write_everything(client, tmp_path)
        client.delete_run(written.run_id)
        client.delete_experiment(written.experiment_id)
        client.delete_registered_model(written.model)
    with signed_in(world, case.server, SEEDER) as manager:
        assert manager.get_run(written.run_id).info.lifecycle_stage == "deleted"
        assert manager.get_experiment(written.experiment_id).lifecycle_stage == "deleted"
        with pytest.raises(MlflowException) as missing:
            manager.get_registered_model(written.model)
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
