"""Browser sign-in (contract §6): the login page, the session endpoint, logout, `/auth/user`.

The routes are Flask views on MLflow's own Flask app, below the static prefix,
so they serve in both server modes (under uvicorn through the WSGI mount).
Only the server sets the session cookies: the page hands the tokens from the
Descope web component to `POST /auth/session`, which verifies both before
setting `DS`/`DSR`.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from mlflow_descope_auth import cookies
from mlflow_descope_auth.exceptions import (
    AuthenticationError,
    DescopeAuthError,
    DescopeRateLimitedError,
    DescopeUnavailableError,
)
from mlflow_descope_auth.gate import (
    GateSettings,
    cookie_policy,
    is_cross_site,
    safe_next,
    unavailable,
)
from mlflow_descope_auth.identity import current_identity
from mlflow_descope_auth.middleware import flask_response, request_info_from_flask

if TYPE_CHECKING:
    import flask
    import jinja2

    from mlflow_descope_auth._core import Core, Session

logger = logging.getLogger(__name__)

# Headers on every page served here: never framed, never cached. The
# Referrer-Policy is set per page (the login URL carries `next`).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
}
LOCAL_STORAGE_KEYS = ("DS", "DSR", "DSI")


@dataclass(frozen=True)
class LoginSettings:
    project_id: str
    flow_id: str
    base_url: str
    web_component_url: str
    redirect_url: str
    static_prefix: str = ""

    def url(self, path: str) -> str:
        return f"{self.static_prefix.rstrip('/')}{path}"

    @property
    def default_next(self) -> str:
        """`DESCOPE_REDIRECT_URL`; its default `/` means the MLflow UI, prefix included."""
        if self.redirect_url == "/":
            return self.url("/")
        return self.redirect_url


def login_routes() -> list[tuple[str, str, str, str]]:
    """(method, path below the static prefix, level, endpoint) of the routes served here."""
    return [
        ("GET", "/auth/login", "PUBLIC", "descope_login"),
        ("GET", "/auth/static/login.js", "PUBLIC", "descope_login_script"),
        ("POST", "/auth/session", "PUBLIC", "descope_session"),
        ("GET", "/auth/logout", "PUBLIC", "descope_logout_page"),
        ("POST", "/auth/logout", "PUBLIC", "descope_logout"),
        ("GET", "/auth/user", "AUTHENTICATED", "descope_user"),
    ]


class LoginViews:
    """The views of `login_routes()`, bound to one core and configuration."""

    def __init__(self, core: Core, gate_settings: GateSettings, settings: LoginSettings) -> None:
        self._core = core
        self._gate_settings = gate_settings
        self._settings = settings

    def register(self, app: flask.Flask) -> None:
        views = {
            "descope_login": self.login_page,
            "descope_login_script": self.login_script,
            "descope_session": self.create_session,
            "descope_logout_page": self.logout_page,
            "descope_logout": self.logout,
            "descope_user": self.user,
        }
        for method, path, _level, endpoint in login_routes():
            app.add_url_rule(self._settings.url(path), endpoint, views[endpoint], methods=[method])

    def login_page(self) -> flask.Response:
        settings = self._settings
        page_config = {
            "sessionUrl": settings.url("/auth/session"),
            "userUrl": settings.url("/auth/user"),
            "localStorageKeys": list(LOCAL_STORAGE_KEYS),
        }
        html = (
            _templates()
            .get_template("login.html")
            .render(
                project_id=settings.project_id,
                flow_id=settings.flow_id,
                base_url=settings.base_url,
                web_component_url=settings.web_component_url,
                script_url=settings.url("/auth/static/login.js"),
                page_config=page_config,
            )
        )
        return _page(html)

    def login_script(self) -> flask.Response:
        from flask import Response

        script = resources.files("mlflow_descope_auth").joinpath("static/login.js").read_text()
        response = Response(script, mimetype="text/javascript")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def create_session(self) -> flask.Response:
        """Verify the tokens the web component handed over and set them as cookies."""
        from flask import request

        info = request_info_from_flask(request)
        if is_cross_site(info):
            return _json(403, "PERMISSION_DENIED", "cross-site sign-in refused")
        if not request.is_json:
            return _json(415, "INVALID_PARAMETER_VALUE", "send the tokens as JSON")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("sessionJwt"), str):
            return _json(400, "INVALID_PARAMETER_VALUE", "sessionJwt is required")
        refresh_jwt = body.get("refreshJwt")
        if refresh_jwt is not None and not isinstance(refresh_jwt, str):
            return _json(400, "INVALID_PARAMETER_VALUE", "refreshJwt must be a string")

        try:
            session, refresh = self._verify(body["sessionJwt"], refresh_jwt or None)
        except AuthenticationError as exc:
            logger.debug("sign-in tokens refused: %s", exc)
            return _json(401, "UNAUTHENTICATED", str(exc))
        except DescopeRateLimitedError as exc:
            return flask_response(unavailable(429, exc.retry_after))
        except DescopeUnavailableError as exc:
            return flask_response(unavailable(503, exc.retry_after))
        if refresh is not None and refresh.user_id != session.user_id:
            return _json(400, "INVALID_PARAMETER_VALUE", "the tokens belong to different users")

        requested = body.get("next")
        if not isinstance(requested, str):
            requested = None
        redirect = safe_next(requested, self._settings.default_next)
        response = _json_payload(200, {"redirect": redirect})
        policy = cookie_policy(self._gate_settings, info)
        set_cookies = cookies.set_token(
            self._gate_settings.session_cookie,
            body["sessionJwt"],
            max_age=cookies.max_age_until(session.expires_at),
            policy=policy,
            present=cookies.present_names(info.cookies, self._gate_settings.session_cookie),
        )
        if refresh is not None and refresh_jwt:
            set_cookies += cookies.set_token(
                self._gate_settings.refresh_cookie,
                refresh_jwt,
                max_age=cookies.max_age_until(refresh.expires_at),
                policy=policy,
                present=cookies.present_names(info.cookies, self._gate_settings.refresh_cookie),
            )
        for value in set_cookies:
            response.headers.add("Set-Cookie", value)
        logger.info("browser sign-in for user id %s", session.user_id)
        return response

    def _verify(self, session_jwt: str, refresh_jwt: str | None) -> tuple[Session, Session | None]:
        session = self._core.validate_session(session_jwt)
        refresh = self._core.validate_refresh(refresh_jwt) if refresh_jwt else None
        return session, refresh

    def logout_page(self) -> flask.Response:
        template = _templates().get_template("logout.html")
        html = template.render(logout_url=self._settings.url("/auth/logout"))
        # With `no-referrer` a browser sends `Origin: null` on the form's POST,
        # which the cross-site check (rightly) refuses.
        return _page(html, referrer_policy="same-origin")

    def logout(self) -> flask.Response:
        """Revoke the refresh token at Descope (best effort), clear every cookie, go to login."""
        from flask import Response, request

        info = request_info_from_flask(request)
        if is_cross_site(info):
            return _json(403, "PERMISSION_DENIED", "cross-site sign-out refused")
        refresh_token = cookies.read_token(info.cookies, self._gate_settings.refresh_cookie)
        if refresh_token is not None:
            try:
                self._core.logout(refresh_token)
            except DescopeAuthError as exc:
                logger.warning("Descope did not confirm the sign-out: %s", exc.__class__.__name__)
        response = Response(status=302)
        response.headers["Location"] = self._settings.url("/auth/login")
        for header, value in PAGE_HEADERS.items():
            response.headers[header] = value
        policy = cookie_policy(self._gate_settings, info)
        for name in self._gate_settings.token_cookies:
            present = cookies.present_names(info.cookies, name)
            for value in cookies.clear_token(name, policy=policy, present=present):
                response.headers.add("Set-Cookie", value)
        return response

    def user(self) -> flask.Response:
        identity = current_identity()
        if identity is None:
            return _json(401, "UNAUTHENTICATED", "not signed in")
        session = identity.session
        return _json_payload(
            200,
            {
                "user_id": session.user_id,
                "username": session.username,
                "email": session.email,
                "name": session.name,
                "roles": session.roles,
                "permissions": session.permissions,
                "tenants": session.tenants,
                "level": session.level,
                "is_admin": session.is_admin,
            },
        )


@functools.lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("mlflow_descope_auth", "templates"),
        autoescape=True,
    )


def _page(html: str, *, referrer_policy: str = "no-referrer") -> flask.Response:
    from flask import Response

    response = Response(html, mimetype="text/html")
    for header, value in PAGE_HEADERS.items():
        response.headers[header] = value
    response.headers["Referrer-Policy"] = referrer_policy
    return response


def _json(status: int, error_code: str, message: str) -> flask.Response:
    return _json_payload(status, {"error_code": error_code, "message": message})


def _json_payload(status: int, payload: dict[str, Any]) -> flask.Response:
    from flask import Response

    response = Response(json.dumps(payload), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
