"""MLflow's own Python client against the protected server (issue 4, contract §3, §7)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from e2e_helpers import TIMEOUT, Cast, bearer
from e2e_servers import RunningServer
from mlflow_descope_auth.testing import DescopeEmulator

EMULATOR_OPTIONS = {"project_id": "P2PluginClient0001"}


def signed_in_username(server: RunningServer, token: str) -> str:
    response = requests.get(server.url("/auth/user"), headers=bearer(token), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return str(response.json()["username"])


@pytest.mark.parametrize("credential", ["session-jwt", "access-key"])
def test_client_logs_and_reads_back_a_run_as_the_signed_in_user(
    server: RunningServer,
    emu: DescopeEmulator,
    cast: Cast,
    credential: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    token = (
        emu.mint_session(cast.editor.login_id) if credential == "session-jwt" else cast.access_key
    )
    expected_user = signed_in_username(server, token)
    if credential == "session-jwt":
        assert expected_user == cast.editor.user_id
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    client = MlflowClient(tracking_uri=server.base_url)

    experiment_id = client.create_experiment(f"client-{credential}-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id, tags={"mlflow.user": "mallory", "team": "ml"})
    run_id = run.info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_metric(run_id, "loss", 0.25, step=1)
    artifact = tmp_path / "notes.txt"
    artifact.write_text("logged through the Descope gate\n")
    client.log_artifact(run_id, str(artifact))
    client.set_terminated(run_id)

    fetched = client.get_run(run_id)
    assert fetched.info.user_id == expected_user
    assert fetched.data.tags["mlflow.user"] == expected_user
    assert fetched.data.tags["team"] == "ml"
    assert fetched.data.params == {"alpha": "0.5"}
    assert fetched.data.metrics == {"loss": 0.25}
    assert [a.path for a in client.list_artifacts(run_id)] == ["notes.txt"]
    downloaded = Path(client.download_artifacts(run_id, "notes.txt", str(tmp_path / "down")))
    assert downloaded.read_text() == "logged through the Descope gate\n"
