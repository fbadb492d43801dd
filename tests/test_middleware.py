"""The adapters in-process: streaming, subclassing, the WSGI bridge, refusals.

The gate here is real (a `_core.Core` against the local Descope emulator and a
compiled `RouteTable`); only the application behind it is a small test app.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import anyio
import flask
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mlflow_descope_auth import identity
from mlflow_descope_auth._core import Core, RouteTable
from mlflow_descope_auth.gate import Gate, GateSettings
from mlflow_descope_auth.middleware import (
    AuthenticationMiddleware,
    CallNext,
    install_flask_bridge,
    install_flask_gate,
)
from mlflow_descope_auth.testing import DescopeEmulator

ROUTES = [
    ("GET", "/stream", "READ", "stream"),
    ("GET", "/whoami", "READ", "whoami"),
    ("GET", "/open", "PUBLIC", "open"),
]


@pytest.fixture
def gate(descope_emulator: DescopeEmulator) -> Gate:
    core = Core(descope_emulator.project_id, base_url=descope_emulator.base_url)
    table = RouteTable(ROUTES)
    core.set_routes(table)
    return Gate(core, table, GateSettings())


@pytest.fixture
def token(descope_emulator: DescopeEmulator) -> str:
    descope_emulator.create_user("reader", roles=["mlflow-viewer"])
    return str(descope_emulator.mint_session("reader"))


def http_scope(path: str, headers: dict[str, str] | None = None) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 5000),
    }


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class TwoPartApp:
    """Sends one body chunk, then waits until the client has seen it before finishing.

    A middleware that buffered the body would never deliver the first chunk
    while the app waits: the test would time out instead of passing.
    """

    def __init__(self) -> None:
        self.first_chunk_delivered = anyio.Event()
        self.called = False
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        self.state = dict(scope.get("state", {}))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await self.first_chunk_delivered.wait()
        await send({"type": "http.response.body", "body": b"second", "more_body": False})


async def stream_through(middleware: Any, app: TwoPartApp, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body") == b"first":
            app.first_chunk_delivered.set()

    with anyio.fail_after(10):
        await middleware(scope, no_body, send)
    return sent


def run_once(middleware: Any, scope: Scope) -> list[Message]:
    """One request without a body through `middleware`; what it sent back."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(middleware, scope, no_body, send)
    return sent


def body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def test_pure_asgi_path_streams_before_the_body_is_complete(gate: Gate, token: str) -> None:
    app = TwoPartApp()
    middleware = AuthenticationMiddleware(app, gate=gate)
    scope = http_scope("/stream", {"authorization": f"Bearer {token}"})

    messages = anyio.run(stream_through, middleware, app, scope)

    assert messages[0]["status"] == 200
    assert body_of(messages) == b"firstsecond"
    assert app.state["username"] == app.state["identity"].username


class RecordingMiddleware(AuthenticationMiddleware):
    """What the seed shows users writing: pre- and post-auth logic around super()."""

    seen: ClassVar[list[str | None]] = []

    async def dispatch(self, request: Request, call_next: CallNext) -> Response:
        response = await super().dispatch(request, call_next)
        self.seen.append(getattr(request.state, "username", None))
        response.headers["X-Custom"] = "yes"
        return response


def test_dispatch_override_streams_and_sees_the_username(gate: Gate, token: str) -> None:
    RecordingMiddleware.seen = []
    app = TwoPartApp()
    middleware = RecordingMiddleware(app, gate=gate)
    scope = http_scope("/stream", {"authorization": f"Bearer {token}"})

    messages = anyio.run(stream_through, middleware, app, scope)

    assert body_of(messages) == b"firstsecond"
    assert (b"x-custom", b"yes") in messages[0]["headers"]
    assert RecordingMiddleware.seen == [app.state["username"]]
    assert RecordingMiddleware.seen[0]


@pytest.mark.parametrize("middleware_class", [AuthenticationMiddleware, RecordingMiddleware])
def test_refused_request_never_reaches_the_app(
    gate: Gate, middleware_class: type[AuthenticationMiddleware]
) -> None:
    app = TwoPartApp()
    sent = run_once(middleware_class(app, gate=gate), http_scope("/stream"))

    assert not app.called
    assert sent[0]["status"] == 401
    assert (b"www-authenticate", b'Bearer realm="mlflow"') in sent[0]["headers"]
    assert json.loads(body_of(sent))["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("middleware_class", [AuthenticationMiddleware, RecordingMiddleware])
@pytest.mark.parametrize("method", ["get", "Get", "options"])
def test_a_method_not_in_upper_case_is_refused_before_the_app(
    gate: Gate, middleware_class: type[AuthenticationMiddleware], token: str, method: str
) -> None:
    # Starlette compares methods as sent, Werkzeug upper-cases them: the gate
    # cannot know which route `get` reaches, so it answers 400, as gunicorn does.
    app = TwoPartApp()
    scope = {**http_scope("/open", {"authorization": f"Bearer {token}"}), "method": method}
    sent = run_once(middleware_class(app, gate=gate), scope)

    assert not app.called
    assert sent[0]["status"] == 400
    assert json.loads(body_of(sent))["error_code"] == "BAD_REQUEST"


def test_asgi_gate_decides_on_the_path_starlette_routes_not_a_collapsed_one(
    descope_emulator: DescopeEmulator, token: str
) -> None:
    # Starlette routes `//data` as it is, so the native route for `/data` does
    # not take it; the Flask app behind the mount collapses the slashes and
    # serves its own `/data`. The gate must ask the table about `//data`, not
    # about `/data`, or it applies the native route's weaker level.
    core = Core(descope_emulator.project_id, base_url=descope_emulator.base_url)
    table = RouteTable(
        [("GET", "/data", "MANAGE", "flask_data")],
        first_match=[("GET", "/data", "READ", "native_data")],
    )
    core.set_routes(table)
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await Response(b"served")(scope, receive, send)

    middleware = AuthenticationMiddleware(app, gate=Gate(core, table, GateSettings()))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("//data", {"authorization": f"Bearer {token}"})
    anyio.run(middleware, scope, no_body, send)

    assert reached == []
    assert sent[0]["status"] == 403
    assert json.loads(body_of(sent))["message"].startswith("flask_data needs MANAGE")


def test_websocket_without_credential_is_closed_before_accept(gate: Gate) -> None:
    app = TwoPartApp()
    middleware = AuthenticationMiddleware(app, gate=gate)
    scope = {**http_scope("/stream"), "type": "websocket"}
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def connect() -> Message:
        return {"type": "websocket.connect"}

    anyio.run(middleware, scope, connect, send)

    assert not app.called
    assert sent == [{"type": "websocket.close", "code": 1008}]


def whoami_app() -> flask.Flask:
    app = flask.Flask("whoami")

    @app.route("/whoami")
    def whoami() -> dict[str, Any]:
        current = identity.current_identity()
        return {
            "g": flask.g.get("mlflow_authenticated_user"),
            "contextvar": current.username if current else None,
        }

    @app.route("/open")
    def open_page() -> str:
        return "open"

    return app


def ask_whoami(asgi: Any, token: str, base_url: str) -> httpx.Response:
    """`GET /whoami` through `asgi` with `token`, and a forged `X-Username` the
    bridge must ignore."""

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await client.get(
                "/whoami",
                headers={"Authorization": f"Bearer {token}", "X-Username": "mallory"},
            )

    return anyio.run(ask)


def test_identity_crosses_the_wsgi_bridge_in_the_contextvar(gate: Gate, token: str) -> None:
    from mlflow.server.fastapi_app import _EfficientWSGIMiddleware

    flask_app = whoami_app()
    install_flask_bridge(flask_app)
    asgi = AuthenticationMiddleware(_EfficientWSGIMiddleware(flask_app), gate=gate)

    response = ask_whoami(asgi, token, "http://mlflow.test")

    assert response.status_code == 200
    body = response.json()
    assert body["g"] == body["contextvar"]
    assert body["g"] not in (None, "mallory")


def test_bridge_refuses_a_request_the_gate_never_saw() -> None:
    flask_app = whoami_app()
    install_flask_bridge(flask_app)

    response = flask_app.test_client().get("/open", headers={"X-Username": "mallory"})

    assert response.status_code == 500
    assert response.get_json()["error_code"] == "INTERNAL_ERROR"


def test_flask_gate_is_the_first_hook_and_sets_g(gate: Gate, token: str) -> None:
    flask_app = whoami_app()
    flask_app.before_request(lambda: None)
    install_flask_gate(flask_app, gate)
    client = flask_app.test_client()

    assert flask_app.before_request_funcs[None][0].__name__ == "descope_gate"
    assert client.get("/whoami").status_code == 401
    assert client.get("/open").data == b"open"
    admitted = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert admitted.status_code == 200
    assert admitted.get_json()["g"] == admitted.get_json()["contextvar"]
    assert admitted.get_json()["g"]
    assert identity.current_admission() is None
