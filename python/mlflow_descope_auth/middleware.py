"""Adapters between the web frameworks and the gate; they decide nothing themselves.

- `AuthenticationMiddleware` (ASGI, outermost under uvicorn) evaluates each
  request on the event loop and moves to a worker thread only when the core
  must call Descope. It streams responses untouched.
- `install_flask_gate` (gunicorn) runs the gate in the first `before_request`
  hook of MLflow's Flask app.
- `install_flask_bridge` (uvicorn) is the first `before_request` hook when
  the ASGI middleware has already decided: it only carries the verdict from
  the ContextVar into `flask.g`, never re-authenticating.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlflow_descope_auth import identity
from mlflow_descope_auth._core import WouldBlock
from mlflow_descope_auth.gate import Gate, Outcome, RequestInfo

if TYPE_CHECKING:
    import flask

logger = logging.getLogger(__name__)

CallNext = Callable[[Request], Awaitable[Response]]
_SET_COOKIES = "descope_set_cookies"
# Prefix of the header names Flask's cookies travel under (see preserve_flask_cookies).
_COOKIE_ALIAS = b"x-mlflow-descope-set-cookie-"
_ADMISSION = "descope_admission"


def request_info_from_scope(scope: Scope) -> RequestInfo:
    raw_query: bytes = scope.get("query_string", b"")
    return RequestInfo.build(
        method=scope.get("method", "GET"),
        path=scope["path"],
        query_string=raw_query.decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        scheme=scope.get("scheme", "http"),
    )


def request_info_from_flask(request: flask.Request) -> RequestInfo:
    return RequestInfo.build(
        method=request.method,
        path=request.path,
        query_string=request.query_string.decode("latin-1"),
        headers=list(request.headers.items()),
        scheme=request.scheme,
    )


class AuthenticationMiddleware(BaseHTTPMiddleware):
    """The gate as ASGI middleware: outermost on MLflow's FastAPI app.

    Subclasses may override `dispatch(request, call_next)` and call
    `super().dispatch(request, call_next)`; after it returns, the signed-in
    user is on `request.state.username` / `user_id` / `identity`. Without an
    override the middleware runs as pure ASGI, which costs less per request.
    """

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        super().__init__(app)
        self.gate = gate
        self._pure = type(self).dispatch is AuthenticationMiddleware.dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and not self._pure:
            await super().__call__(scope, receive, send)
            return
        outcome = await self.evaluate(request_info_from_scope(scope))
        if not outcome.allowed:
            await _send_refusal(scope, send, outcome)
            return
        _stamp_scope(scope, outcome)
        token = identity.admit(outcome.identity)
        try:
            await self.app(scope, receive, _adding_cookies(send, outcome.set_cookies))
        finally:
            identity.release(token)

    async def dispatch(self, request: Request, call_next: CallNext) -> Response:
        outcome = await self.evaluate(request_info_from_scope(request.scope))
        if not outcome.allowed:
            return _starlette_response(outcome)
        _stamp_scope(request.scope, outcome)
        token = identity.admit(outcome.identity)
        try:
            response = await call_next(request)
        finally:
            identity.release(token)
        response.raw_headers = _restore_cookie_headers(response.raw_headers)
        for value in outcome.set_cookies:
            response.headers.append("set-cookie", value)
        return response

    async def evaluate(self, info: RequestInfo) -> Outcome:
        """The gate's outcome; the core is called off the event loop only when it must wait."""
        try:
            return self.gate.evaluate(info, blocking=False)
        except WouldBlock:
            return await anyio.to_thread.run_sync(self.gate.evaluate, info)


def _stamp_scope(scope: Scope, outcome: Outcome) -> None:
    """`request.state.username` / `user_id` for MLflow's native FastAPI routes."""
    who = outcome.identity
    if who is None:
        return
    state = scope.setdefault("state", {})
    state["username"] = who.username
    state["user_id"] = who.user_id
    state["identity"] = who


def _adding_cookies(send: Send, set_cookies: tuple[str, ...]) -> Send:
    """`send`, with our cookies added and the Flask app's own `Set-Cookie` headers restored."""
    extra = [(b"set-cookie", value.encode("latin-1")) for value in set_cookies]

    async def send_with_cookies(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = _restore_cookie_headers(message.get("headers", []))
            message = {**message, "headers": headers + extra}
        await send(message)

    return send_with_cookies


def _restore_cookie_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (b"set-cookie", value) if name.lower().startswith(_COOKIE_ALIAS) else (name, value)
        for name, value in headers
    ]


def preserve_flask_cookies(app: flask.Flask) -> None:
    """Under uvicorn: carry every `Set-Cookie` of a Flask response past MLflow's middleware.

    MLflow's ASGI `SecurityHeadersMiddleware` (mlflow/server/fastapi_security.py)
    rebuilds the response headers as a dict, so of several `Set-Cookie`
    headers only the last survives: signing in (`DS` and `DSR`) and signing
    out would silently lose a cookie. The Flask app's cookies travel under
    numbered aliases instead, and `AuthenticationMiddleware`, outermost,
    renames them back.
    """
    inner = app.wsgi_app
    alias = _COOKIE_ALIAS.decode("latin-1")

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            renamed = [
                (f"{alias}{index}" if name.lower() == "set-cookie" else name, value)
                for index, (name, value) in enumerate(headers)
            ]
            return start_response(status, renamed, exc_info)

        return inner(environ, start)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]


async def _send_refusal(scope: Scope, send: Send, outcome: Outcome) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(name.lower().encode("latin-1"), v.encode("latin-1")) for name, v in outcome.headers]
    headers.append((b"content-length", str(len(outcome.body)).encode()))
    headers += [(b"set-cookie", value.encode("latin-1")) for value in outcome.set_cookies]
    await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
    await send({"type": "http.response.body", "body": outcome.body})


def _starlette_response(outcome: Outcome) -> Response:
    status = outcome.status if outcome.status is not None else 500
    response = Response(content=outcome.body, status_code=status)
    for name, value in outcome.headers:
        response.headers[name] = value
    for value in outcome.set_cookies:
        response.headers.append("set-cookie", value)
    return response


def flask_response(outcome: Outcome) -> flask.Response:
    from flask import Response as FlaskResponse

    response = FlaskResponse(outcome.body, status=outcome.status)
    for name, value in outcome.headers:
        response.headers[name] = value
    for value in outcome.set_cookies:
        response.headers.add("Set-Cookie", value)
    return response


def _first_before_request(app: flask.Flask, hook: Callable[[], Any]) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, hook)


def install_flask_gate(app: flask.Flask, gate: Gate) -> None:
    """Under gunicorn: the gate as the first `before_request` hook of MLflow's Flask app."""
    from flask import g, request

    def descope_gate() -> flask.Response | None:
        outcome = gate.evaluate(request_info_from_flask(request))
        if not outcome.allowed:
            return flask_response(outcome)
        setattr(g, _SET_COOKIES, outcome.set_cookies)
        setattr(g, _ADMISSION, identity.admit(outcome.identity))
        return identity.enter_flask_request(outcome.identity)

    def descope_set_cookies(response: flask.Response) -> flask.Response:
        for value in getattr(g, _SET_COOKIES, ()):
            response.headers.add("Set-Cookie", value)
        return response

    def descope_release(_exc: BaseException | None) -> None:
        token = getattr(g, _ADMISSION, None)
        if token is not None:
            identity.release(token)

    _first_before_request(app, descope_gate)
    app.after_request(descope_set_cookies)
    app.teardown_request(descope_release)


_GATE_MISSING = Outcome(
    status=500,
    headers=(("Content-Type", "application/json"),),
    body=b'{"error_code":"INTERNAL_ERROR","message":"authentication gate missing"}',
)


def install_flask_bridge(app: flask.Flask) -> None:
    """Under uvicorn: carry the ASGI gate's verdict into Flask; refuse what it never saw."""

    def descope_identity() -> flask.Response | None:
        admission = identity.current_admission()
        if admission is None:
            logger.error("request reached Flask without passing the authentication gate")
            return flask_response(_GATE_MISSING)
        return identity.enter_flask_request(admission.identity)

    _first_before_request(app, descope_identity)
