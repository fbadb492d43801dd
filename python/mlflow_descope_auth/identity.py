"""Who the request is, wherever MLflow looks for it (contract §7).

The gate admits a request as an `Identity`; this module carries it across the
WSGI bridge in a ContextVar (never in a header a client could send), puts the
username where MLflow reads it (`flask.g.mlflow_authenticated_user`), serves
the `users/current` endpoints the MLflow UI asks, and makes the server, not
the client, decide whose name a new run carries.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import io
import json
import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask, Response

    from mlflow_descope_auth._core import Session

logger = logging.getLogger(__name__)

MLFLOW_USER_TAG = "mlflow.user"
# Flask endpoint names (the handler's __name__, as MLflow registers them) of
# the calls that create a run, and of those that can set or drop a run's
# `mlflow.user` tag afterwards.
CREATE_RUN_ENDPOINTS = frozenset({"_create_run", "serve_create_promptlab_run"})
RUN_TAG_ENDPOINTS = frozenset({"_set_tag", "_delete_tag", "_log_batch"})
# Resource types the MLflow UI's permission list knows (mlflow.server.auth.permissions).
RESOURCE_TYPES = (
    "experiment",
    "registered_model",
    "prompt",
    "scorer",
    "gateway_endpoint",
    "gateway_secret",
    "gateway_model_definition",
    "mcp_server",
)
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class Identity:
    """A verified caller: the core's immutable session and how it was presented."""

    session: Session
    source: str

    @property
    def username(self) -> str:
        return self.session.username

    @property
    def user_id(self) -> str:
        return self.session.user_id

    @property
    def level(self) -> str:
        return self.session.level

    @property
    def is_admin(self) -> bool:
        return self.session.is_admin


@dataclass(frozen=True)
class Admission:
    """The gate's verdict for the current request; `identity` is None on a public path."""

    identity: Identity | None


_admission: ContextVar[Admission | None] = ContextVar("mlflow_descope_auth_admission", default=None)


def admit(identity: Identity | None) -> Token[Admission | None]:
    """Record the gate's verdict for the code that runs on behalf of this request."""
    return _admission.set(Admission(identity))


def release(token: Token[Admission | None]) -> None:
    _admission.reset(token)


def current_admission() -> Admission | None:
    """The verdict for this request, or None when the gate has not seen it."""
    return _admission.get()


def current_identity() -> Identity | None:
    """The signed-in caller of the current request, if any."""
    admission = _admission.get()
    return admission.identity if admission is not None else None


def user_payload(identity: Identity) -> dict[str, Any]:
    """`GET users/current`, in the shape MLflow's basic-auth app gives the UI."""
    user = {"id": identity.user_id, "username": identity.username, "is_admin": identity.is_admin}
    return {"user": user, "is_basic_auth": False}


def permissions_payload(identity: Identity) -> dict[str, Any]:
    """`GET users/current/permissions`: the caller's one level, on every resource type.

    A caller with NO_PERMISSIONS gets rows saying exactly that, so the UI can
    tell why it offers nothing.
    """
    rows = [
        {
            "resource_type": resource_type,
            "resource_pattern": "*",
            "permission": identity.level,
            "workspace": DEFAULT_WORKSPACE,
        }
        for resource_type in RESOURCE_TYPES
    ]
    return {"is_admin": identity.is_admin, "permissions": rows}


def attribute_run(body: Any, username: str) -> dict[str, Any]:
    """A CreateRun body whose `user_id` and `mlflow.user` tag name `username`.

    Whatever the client sent for either (both spellings of the field included)
    is replaced; the other fields are kept as they were.
    """
    if not isinstance(body, dict):
        raise ValueError("request body is not a JSON object")
    tags = body.get("tags") or []
    if not isinstance(tags, list):
        raise ValueError("tags is not a list")
    kept = [tag for tag in tags if not _is_user_tag(tag)]
    rewritten = {key: value for key, value in body.items() if key not in ("userId", "user_id")}
    rewritten["user_id"] = username
    rewritten["tags"] = [*kept, {"key": MLFLOW_USER_TAG, "value": username}]
    return rewritten


def touches_user_tag(endpoint: str, body: Any) -> bool:
    """Whether a SetTag / DeleteTag / LogBatch body sets or drops `mlflow.user`."""
    if not isinstance(body, dict):
        return False
    if endpoint in ("_set_tag", "_delete_tag"):
        return body.get("key") == MLFLOW_USER_TAG
    tags = body.get("tags")
    if not isinstance(tags, list):
        return False
    return any(_is_user_tag(tag) for tag in tags)


def _is_user_tag(tag: Any) -> bool:
    return isinstance(tag, dict) and tag.get("key") == MLFLOW_USER_TAG


def decode_json(raw: bytes) -> Any:
    """The JSON in a request body, unwrapped once more when an old client double-encoded it."""
    try:
        value = json.loads(raw) if raw.strip() else {}
        if isinstance(value, str):
            value = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value


def enter_flask_request(identity: Identity | None) -> Response | None:
    """After the gate admitted this Flask request: set `g`, enforce run attribution.

    Returns a response to send instead of MLflow's, or None to go on.
    """
    from flask import g, request

    if identity is None:
        return None
    g.mlflow_authenticated_user = identity.username
    endpoint = request.endpoint or ""
    if endpoint in CREATE_RUN_ENDPOINTS and request.method == "POST":
        return _rewrite_create_run(identity.username)
    if (
        endpoint in RUN_TAG_ENDPOINTS
        and identity.level != "MANAGE"
        and touches_user_tag(endpoint, decode_json(_peek_body()))
    ):
        message = f"only MANAGE may set or delete the {MLFLOW_USER_TAG} tag"
        return _json_response(403, {"error_code": "PERMISSION_DENIED", "message": message})
    return None


def _rewrite_create_run(username: str) -> Response | None:
    from flask import request

    try:
        body = attribute_run(decode_json(_read_body()), username)
    except ValueError as exc:
        return _json_response(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)})
    raw = json.dumps(body).encode()
    _replace_body(raw)
    # Werkzeug reads the body lazily from the environ; make sure the request
    # MLflow is about to parse really is the rewritten one.
    if request.get_json(force=True, silent=True) != body:
        logger.error("could not rewrite the CreateRun body; refusing the request")
        return _json_response(
            500, {"error_code": "INTERNAL_ERROR", "message": "run attribution failed"}
        )
    return None


def _read_body() -> bytes:
    from flask import request
    from werkzeug.wsgi import get_input_stream

    return get_input_stream(request.environ).read()


def _peek_body() -> bytes:
    """Read the body and put it back, so MLflow still finds it."""
    raw = _read_body()
    _replace_body(raw)
    return raw


def _replace_body(raw: bytes) -> None:
    from flask import request

    environ = request.environ
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)


_ATTRIBUTED = "_mlflow_descope_auth_attributed"


def attribute_server_created_runs() -> None:
    """Make a run MLflow creates inside the server, for a request, name that request's caller.

    Some handlers create their run in-process through MLflow's tracking client
    instead of through a CreateRun body (`/genai/evaluate/invoke`, issue
    detection, prompt optimisation); MLflow then records `unknown` or the
    server's OS account as the run's user (contract §7). Every such run is
    made by `TrackingServiceClient.create_run`, which takes the user from the
    `mlflow.user` tag: while a signed-in caller's request runs, that tag is
    the caller's name. Outside a request (the job runner, scripts) nothing
    changes. Installing twice is harmless.
    """
    module: Any = importlib.import_module("mlflow.tracking._tracking_service.client")
    _attribute_created_runs(getattr(module, "TrackingServiceClient", None))


def _attribute_created_runs(client_class: Any) -> None:
    """Wrap `client_class.create_run` (see `attribute_server_created_runs`)."""
    original = getattr(client_class, "create_run", None)
    if client_class is None or original is None:
        logger.warning("MLflow's tracking client has no create_run; runs it makes are unattributed")
        return
    if getattr(original, _ATTRIBUTED, False):
        return

    signature = inspect.signature(original)
    if "tags" not in signature.parameters:
        logger.warning("MLflow's create_run takes no tags; runs it makes are unattributed")
        return

    @functools.wraps(original)
    def create_run(*args: Any, **kwargs: Any) -> Any:
        who = current_identity()
        if who is None:
            return original(*args, **kwargs)
        # Bound by name, so whatever parameters a later MLflow adds pass through.
        bound = signature.bind(*args, **kwargs)
        tags = bound.arguments.get("tags") or {}
        bound.arguments["tags"] = {**tags, MLFLOW_USER_TAG: who.username}
        return original(*bound.args, **bound.kwargs)

    setattr(create_run, _ATTRIBUTED, True)
    client_class.create_run = create_run


def _json_response(status: int, payload: dict[str, Any]) -> Response:
    from flask import Response

    return Response(json.dumps(payload), status=status, mimetype="application/json")


def current_user_view() -> Response:
    identity = current_identity()
    if identity is None:
        return _unauthenticated()
    return _json_response(200, user_payload(identity))


def current_permissions_view() -> Response:
    identity = current_identity()
    if identity is None:
        return _unauthenticated()
    return _json_response(200, permissions_payload(identity))


def _unauthenticated() -> Response:
    response = _json_response(401, {"error_code": "UNAUTHENTICATED", "message": "not signed in"})
    response.headers["WWW-Authenticate"] = 'Bearer realm="mlflow"'
    return response


def identity_routes() -> list[tuple[str, str, str]]:
    """(method, path below the static prefix, endpoint) of the routes served here."""
    return [
        ("GET", "/api/2.0/mlflow/users/current", "descope_current_user"),
        ("GET", "/ajax-api/2.0/mlflow/users/current", "descope_current_user"),
        ("GET", "/api/3.0/mlflow/users/current/permissions", "descope_current_permissions"),
        ("GET", "/ajax-api/3.0/mlflow/users/current/permissions", "descope_current_permissions"),
    ]


def register_identity_routes(app: Flask, static_prefix: str) -> None:
    views = {
        "descope_current_user": current_user_view,
        "descope_current_permissions": current_permissions_view,
    }
    prefix = static_prefix.rstrip("/")
    for method, path, endpoint in identity_routes():
        app.add_url_rule(prefix + path, endpoint, views[endpoint], methods=[method])
