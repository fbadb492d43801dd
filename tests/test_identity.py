"""Identity inside MLflow (contract §7): run attribution rules and the UI's payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlflow_descope_auth import identity
from mlflow_descope_auth._core import Core
from mlflow_descope_auth.identity import Identity
from mlflow_descope_auth.testing import DescopeEmulator


def test_created_run_names_the_signed_in_user_whatever_the_client_sent() -> None:
    body = {
        "experiment_id": "1",
        "userId": "mallory",
        "user_id": "mallory",
        "tags": [{"key": "mlflow.user", "value": "mallory"}, {"key": "team", "value": "ml"}],
        "run_name": "r",
    }
    rewritten = identity.attribute_run(body, "U2alice")
    assert rewritten == {
        "experiment_id": "1",
        "user_id": "U2alice",
        "tags": [{"key": "team", "value": "ml"}, {"key": "mlflow.user", "value": "U2alice"}],
        "run_name": "r",
    }
    assert body["userId"] == "mallory"


def test_run_without_tags_gets_the_user_tag() -> None:
    assert identity.attribute_run({}, "bob")["tags"] == [{"key": "mlflow.user", "value": "bob"}]


@pytest.mark.parametrize("body", [None, [], "text", {"tags": "mlflow.user"}])
def test_run_body_of_the_wrong_shape_is_refused(body: Any) -> None:
    with pytest.raises(ValueError, match="not"):
        identity.attribute_run(body, "bob")


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        ("_set_tag", {"key": "mlflow.user", "value": "x"}, True),
        ("_set_tag", {"key": "mlflow.source", "value": "x"}, False),
        ("_delete_tag", {"key": "mlflow.user"}, True),
        ("_log_batch", {"tags": [{"key": "a"}, {"key": "mlflow.user", "value": "x"}]}, True),
        ("_log_batch", {"tags": [{"key": "a", "value": "b"}], "metrics": []}, False),
        ("_log_batch", {"tags": "mlflow.user"}, False),
        ("_set_tag", None, False),
    ],
)
def test_user_tag_changes_are_recognised(endpoint: str, body: Any, expected: bool) -> None:
    assert identity.touches_user_tag(endpoint, body) is expected


def test_double_encoded_json_is_unwrapped_and_garbage_is_none() -> None:
    inner = {"key": "mlflow.user"}
    assert identity.decode_json(json.dumps(json.dumps(inner)).encode()) == inner
    assert identity.decode_json(b"") == {}
    assert identity.decode_json(b"{not json") is None


@pytest.fixture
def core(descope_emulator: DescopeEmulator) -> Core:
    return Core(
        descope_emulator.project_id,
        base_url=descope_emulator.base_url,
        default_permission="NO_PERMISSIONS",
    )


def identity_of(core: Core, emulator: DescopeEmulator, login_id: str, **grants: Any) -> Identity:
    emulator.create_user(login_id, **grants)
    return Identity(core.validate_session(emulator.mint_session(login_id)), "bearer")


def test_user_payload_has_the_basic_auth_shape_the_ui_reads(
    core: Core, descope_emulator: DescopeEmulator
) -> None:
    who = identity_of(core, descope_emulator, "ada", roles=["admin"])
    assert identity.user_payload(who) == {
        "user": {"id": who.user_id, "username": who.username, "is_admin": True},
        "is_basic_auth": False,
    }


def test_permissions_payload_lists_the_level_on_every_resource_type(
    core: Core, descope_emulator: DescopeEmulator
) -> None:
    who = identity_of(core, descope_emulator, "erin", roles=["mlflow-editor"])
    payload = identity.permissions_payload(who)
    assert payload["is_admin"] is False
    assert {row["resource_type"] for row in payload["permissions"]} == set(identity.RESOURCE_TYPES)
    assert all(
        row == {**row, "resource_pattern": "*", "permission": "EDIT", "workspace": "default"}
        for row in payload["permissions"]
    )


def test_no_permissions_user_gets_rows_that_say_so(
    core: Core, descope_emulator: DescopeEmulator
) -> None:
    who = identity_of(core, descope_emulator, "nemo")
    rows = identity.permissions_payload(who)["permissions"]
    assert rows
    assert {row["permission"] for row in rows} == {"NO_PERMISSIONS"}


def test_contextvar_holds_the_admission_only_while_admitted(
    core: Core, descope_emulator: DescopeEmulator
) -> None:
    who = identity_of(core, descope_emulator, "vic", roles=["mlflow-viewer"])
    assert identity.current_admission() is None
    token = identity.admit(who)
    try:
        assert identity.current_identity() is who
    finally:
        identity.release(token)
    assert identity.current_identity() is None


class FakeTrackingClient:
    """Stands in for MLflow's TrackingServiceClient: records what create_run got."""

    def create_run(
        self, experiment_id: str, start_time: Any = None, tags: Any = None, run_name: Any = None
    ) -> dict[str, Any]:
        return {"experiment_id": experiment_id, "tags": tags, "run_name": run_name}


def test_server_created_run_names_the_caller_only_inside_a_request(
    core: Core, descope_emulator: DescopeEmulator
) -> None:
    identity._attribute_created_runs(FakeTrackingClient)
    identity._attribute_created_runs(FakeTrackingClient)  # a second install changes nothing
    client = FakeTrackingClient()

    outside = client.create_run("1", tags={"mlflow.user": "root"})
    assert outside["tags"] == {"mlflow.user": "root"}

    who = identity_of(core, descope_emulator, "eve", roles=["mlflow-editor"])
    token = identity.admit(who)
    try:
        positional = client.create_run("1", None, {"mlflow.user": "root", "team": "ml"}, "r")
        keyword = client.create_run(experiment_id="2", run_name="s")
    finally:
        identity.release(token)
    assert positional == {
        "experiment_id": "1",
        "tags": {"mlflow.user": who.username, "team": "ml"},
        "run_name": "r",
    }
    assert keyword == {
        "experiment_id": "2",
        "tags": {"mlflow.user": who.username},
        "run_name": "s",
    }


def test_attribution_leaves_a_client_without_create_run_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NoCreate:
        pass

    with caplog.at_level("WARNING", logger="mlflow_descope_auth.identity"):
        identity._attribute_created_runs(NoCreate)
    assert not hasattr(NoCreate, "create_run")
    assert "unattributed" in caplog.text
