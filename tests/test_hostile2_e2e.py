"""Request-shape tricks against a real server: none may lift a caller's level.

Each request below is sent byte for byte over a raw socket (no client
library normalises the path, the method or the body), by a user whose level
is too low for what the trick tries to reach. A trick holds when the server
refuses it *and* nothing changed: the experiment is still active, no
experiment was created, and the run still names its creator.
"""

from __future__ import annotations

import gzip
import json
import socket
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from e2e_helpers import Cast
from e2e_servers import RunningServer
from mlflow_descope_auth.testing import DescopeEmulator

EMULATOR_OPTIONS = {"project_id": "P2PluginHostileTwo01"}
# Issue detection refuses to start without a provider key; a placeholder lets
# it go as far as creating its run.
SERVER_ENV = {"OPENAI_API_KEY": "placeholder-not-a-key"}
JSON = "Content-Type: application/json"
USER_TAG = "mlflow.user"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> dict[str, object]:
        return dict(json.loads(self.body))


def send(
    server: RunningServer,
    method: str,
    target: str,
    headers: list[str],
    body: bytes = b"",
) -> Reply:
    """One HTTP/1.1 request exactly as given; `target` is sent unprocessed."""
    port = int(server.base_url.rsplit(":", 1)[1])
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers)
    if body and not framed:
        headers = [*headers, f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines + headers) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    return Reply(int(head.split(b" ", 2)[1]), rest)


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@dataclass(frozen=True)
class World:
    server: RunningServer
    experiment_id: str
    run_id: str
    creator: str
    token: Callable[[str], str]

    def auth(self, who: str) -> list[str]:
        return [f"Authorization: Bearer {self.token(who)}"]

    def experiment_stage(self) -> str:
        reply = send(
            self.server,
            "GET",
            self.path(f"/api/2.0/mlflow/experiments/get?experiment_id={self.experiment_id}"),
            self.auth("admin"),
        )
        experiment = reply.json()["experiment"]
        assert isinstance(experiment, dict)
        return str(experiment["lifecycle_stage"])

    def experiment_names(self) -> list[str]:
        reply = send(
            self.server,
            "POST",
            self.path("/api/2.0/mlflow/experiments/search"),
            [*self.auth("admin"), JSON],
            b'{"max_results": 100}',
        )
        experiments = reply.json().get("experiments", [])
        assert isinstance(experiments, list)
        return [e["name"] for e in experiments]

    def run_user_tag(self) -> str | None:
        reply = send(
            self.server,
            "GET",
            self.path(f"/api/2.0/mlflow/runs/get?run_id={self.run_id}"),
            self.auth("admin"),
        )
        run = reply.json()["run"]
        assert isinstance(run, dict)
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        return tags.get(USER_TAG)

    def path(self, path: str) -> str:
        return self.server.prefix + path


@pytest.fixture(scope="module")
def world(server: RunningServer, emu: DescopeEmulator, cast: Cast) -> World:
    people = {"viewer": cast.viewer, "editor": cast.editor, "admin": cast.admin}

    def token(who: str) -> str:
        return str(emu.mint_session(people[who].login_id))

    admin = [f"Authorization: Bearer {token('admin')}", JSON]
    created = send(
        server,
        "POST",
        server.prefix + "/api/2.0/mlflow/experiments/create",
        admin,
        json.dumps({"name": f"hostile2-{server.mode}"}).encode(),
    )
    assert created.status == 200, created.body
    experiment_id = str(created.json()["experiment_id"])
    run = send(
        server,
        "POST",
        server.prefix + "/api/2.0/mlflow/runs/create",
        admin,
        json.dumps({"experiment_id": experiment_id}).encode(),
    )
    assert run.status == 200, run.body
    info = run.json()["run"]
    assert isinstance(info, dict)
    run_id = str(info["info"]["run_id"])
    creator = World(server, experiment_id, run_id, "", token).run_user_tag()
    assert creator == cast.admin.user_id
    return World(server, experiment_id, run_id, creator, token)


def refused(reply: Reply) -> bool:
    return reply.status >= 400


# --- A viewer tries to delete an experiment (MANAGE) by reshaping the path ------

DELETE_PATHS = [
    "/api/2.0/mlflow/experiments/delete/",
    "//api/2.0/mlflow/experiments/delete",
    "/api//2.0/mlflow/experiments/delete",
    "/API/2.0/mlflow/experiments/delete",
    "/api/2.0/mlflow/experiments/delete;x=1",
    "/api/2.0/mlflow/experiments%2Fdelete",
    "/api/2.0/mlflow/experiments/%64elete",
    "/api/2.0/mlflow/experiments/delete%00",
    "/api/2.0/mlflow/experiments/delete%0a",
    "/api/2.0/mlflow/experiments/delete%20",
    "/api/2.0/mlflow/experiments/de%EF%BD%8Cete",
    "/api/2.0/mlflow/experiments/d%C3%A9lete",
    "/api/2.0/mlflow/experiments/delete%ff",
    "/api/2.0/mlflow/experiments/search/../delete",
    "/api/2.0/mlflow/experiments/search/%2e%2e/delete",
    "/ajax-api/2.0/mlflow/experiments/delete",
    "/api/3.0/mlflow/experiments/delete",
    "/ajax-api/3.0/mlflow/experiments/delete",
    "/static-files/../api/2.0/mlflow/experiments/delete",
    "/health/../api/2.0/mlflow/experiments/delete",
    "/auth/login/../../api/2.0/mlflow/experiments/delete",
    "/api/2.0/mlflow/experiments/delete?x=/static-files/a",
    "/" + "a/" * 3000 + "../api/2.0/mlflow/experiments/delete",
]


@pytest.mark.parametrize("path", DELETE_PATHS, ids=lambda p: p[:60])
def test_viewer_cannot_delete_an_experiment_through_a_reshaped_path(
    world: World, path: str
) -> None:
    body = json.dumps({"experiment_id": world.experiment_id}).encode()
    reply = send(world.server, "POST", world.path(path), [*world.auth("viewer"), JSON], body)
    assert refused(reply), reply.body
    assert world.experiment_stage() == "active"


def test_viewer_cannot_delete_an_experiment_with_an_absolute_form_target(world: World) -> None:
    target = f"{world.server.base_url}{world.path('/api/2.0/mlflow/experiments/delete')}"
    body = json.dumps({"experiment_id": world.experiment_id}).encode()
    reply = send(world.server, "POST", target, [*world.auth("viewer"), JSON], body)
    assert refused(reply), reply.body
    assert world.experiment_stage() == "active"


# --- A viewer tries to create an experiment (EDIT) by reshaping the method ------

METHOD_TRICKS = [
    ("post", []),
    ("Post", []),
    ("HEAD", []),
    ("OPTIONS", []),
    ("PUT", []),
    ("POST", ["X-HTTP-Method-Override: GET"]),
    ("GET", ["X-HTTP-Method-Override: POST"]),
]


@pytest.mark.parametrize(("method", "extra"), METHOD_TRICKS, ids=lambda v: str(v))
def test_viewer_cannot_create_an_experiment_through_a_reshaped_method(
    world: World, method: str, extra: list[str]
) -> None:
    name = f"viewer-made-{method}-{len(extra)}"
    body = json.dumps({"name": name}).encode()
    path = world.path("/api/2.0/mlflow/experiments/create")
    reply = send(world.server, method, path, [*world.auth("viewer"), JSON, *extra], body)
    assert refused(reply), reply.body
    assert name not in world.experiment_names()


def test_a_preflight_without_origin_runs_no_view(world: World) -> None:
    """The gate lets CORS preflights through untouched: one without `Origin`
    (which MLflow's CORS middleware does not answer itself) must still reach
    no handler."""
    body = json.dumps({"name": "preflight-made"}).encode()
    headers = [JSON, "Access-Control-Request-Method: POST"]
    path = world.path("/api/2.0/mlflow/experiments/create")
    send(world.server, "OPTIONS", path, headers, body)
    assert "preflight-made" not in world.experiment_names()


def test_viewer_cannot_delete_through_a_search_with_method_override_query(world: World) -> None:
    body = json.dumps({"experiment_id": world.experiment_id}).encode()
    path = world.path("/api/2.0/mlflow/experiments/search?_method=DELETE")
    send(world.server, "POST", path, [*world.auth("viewer"), JSON], body)
    assert world.experiment_stage() == "active"


# --- Transport ----------------------------------------------------------------


def test_a_request_smuggled_behind_a_chunked_search_is_never_run(world: World) -> None:
    delete = json.dumps({"experiment_id": world.experiment_id}).encode()
    inner = (
        f"POST {world.path('/api/2.0/mlflow/experiments/delete')} HTTP/1.1\r\n"
        f"Host: x\r\n{JSON}\r\nContent-Length: {len(delete)}\r\n\r\n"
    ).encode() + delete
    for framing in (
        ["Transfer-Encoding: chunked"],
        ["Content-Length: 4", "Transfer-Encoding: chunked"],
    ):
        send(
            world.server,
            "POST",
            world.path("/api/2.0/mlflow/experiments/search"),
            [*world.auth("viewer"), JSON, *framing],
            chunked(b"{}") + inner,
        )
    assert world.experiment_stage() == "active"


@pytest.mark.parametrize(
    "authorization",
    [
        ["Authorization: Basic eDp5"],
        ["Authorization: Bearer not-a-token"],
    ],
)
def test_a_second_authorization_header_is_refused_not_ignored(
    world: World, authorization: list[str]
) -> None:
    path = world.path("/api/2.0/mlflow/experiments/search")
    headers = [*world.auth("viewer"), *authorization, JSON]
    reply = send(world.server, "POST", path, headers, b'{"max_results": 1}')
    assert reply.status == 401, reply.body


# --- An editor tries to re-tag `mlflow.user` (MANAGE only) ----------------------


def _set_tag_bodies(run_id: str) -> list[tuple[str, list[str], bytes]]:
    plain = {"run_id": run_id, "key": USER_TAG, "value": "someone-else"}
    raw = json.dumps(plain).encode()
    return [
        ("utf-16", [], json.dumps(plain).encode("utf-16")),
        ("bom", [], b"\xef\xbb\xbf" + raw),
        ("double-encoded", [], json.dumps(json.dumps(plain)).encode()),
        ("escaped-dot", [], raw.replace(b"mlflow.user", b"mlflow\\u002euser")),
        ("repeated-key", [], raw.replace(b'"key":', b'"key": "x", "key":')),
        ("run-uuid", [], json.dumps({**plain, "run_uuid": run_id, "run_id": None}).encode()),
        ("chunked", ["Transfer-Encoding: chunked"], chunked(raw)),
        ("gzip", ["Content-Encoding: gzip"], gzip.compress(raw)),
    ]


def test_editor_cannot_retag_mlflow_user_whatever_the_body_encoding(world: World) -> None:
    path = world.path("/api/2.0/mlflow/runs/set-tag")
    outcomes = {}
    for label, extra, body in _set_tag_bodies(world.run_id):
        reply = send(world.server, "POST", path, [*world.auth("editor"), JSON, *extra], body)
        outcomes[label] = reply.status
        assert world.run_user_tag() == world.creator, (label, reply.body)
    batch = json.dumps(
        {"run_id": world.run_id, "tags": [{"key": USER_TAG, "value": "someone-else"}]}
    ).encode()
    for root in ("/api/2.0", "/ajax-api/2.0"):
        reply = send(
            world.server,
            "POST",
            world.path(f"{root}/mlflow/runs/log-batch"),
            [*world.auth("editor"), JSON],
            batch,
        )
        assert reply.status == 403, reply.body
    assert world.run_user_tag() == world.creator, outcomes


# --- Runs the server creates itself --------------------------------------------


SERVER_CREATED_RUNS = [
    (
        "/ajax-api/3.0/mlflow/genai/evaluate/invoke",
        {"serialized_scorers": [json.dumps({"name": "any"})]},
    ),
    (
        "/ajax-api/3.0/mlflow/issues/invoke",
        {"categories": ["quality"], "provider": "openai", "model": "gpt-4o"},
    ),
]


@pytest.mark.parametrize(("path", "fields"), SERVER_CREATED_RUNS, ids=["evaluate", "issues"])
def test_a_run_the_server_creates_for_an_editor_names_the_editor(
    world: World, cast: Cast, path: str, fields: dict[str, object]
) -> None:
    """These handlers create their run inside the server (MLflow's tracking
    client) before the job starts; the job fails here (job execution is off),
    the run stays. Without attribution it names `unknown` or the server's OS
    account (contract §7)."""
    before = {run["info"]["run_id"] for run in _runs(world)}
    body = {"experiment_id": world.experiment_id, "trace_ids": [f"tr-{'0' * 32}"], **fields}
    send(
        world.server,
        "POST",
        world.path(path),
        [*world.auth("editor"), JSON],
        json.dumps(body).encode(),
    )
    made = [run for run in _runs(world) if run["info"]["run_id"] not in before]
    assert made, "MLflow no longer creates the run before the job starts"
    for run in made:
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        assert run["info"]["user_id"] == cast.editor.user_id
        assert tags[USER_TAG] == cast.editor.user_id


def _runs(world: World) -> list[dict[str, Any]]:
    reply = send(
        world.server,
        "POST",
        world.path("/api/2.0/mlflow/runs/search"),
        [*world.auth("admin"), JSON],
        json.dumps({"experiment_ids": [world.experiment_id]}).encode(),
    )
    runs = reply.json().get("runs", [])
    assert isinstance(runs, list)
    return runs
