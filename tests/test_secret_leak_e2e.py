"""No secret in any log or error body, with DEBUG logging on everywhere (issue 8, §2).

A full session of traffic runs against a real server: the browser sign-in
through the emulator's flow, cookie requests and writes, a refresh, bearer
and Basic credentials, an access-key exchange, logout, refused credentials
and a Descope fault. Logging is DEBUG for everything in the server's
processes (the root logger, so the plugin's loggers too; MLflow's through
`MLFLOW_LOGGING_LEVEL`; the web server's through its own option) and in the
test process, where the emulator runs. Then the server's output, the
emulator's log records and every response body and header (but `Set-Cookie`,
whose job is to carry tokens) are searched for every token, cookie value,
refresh token, access key, management key and email of the session, and for
any JWT-shaped text at all (the tokens Descope handed the server itself).
"""

from __future__ import annotations

import logging
import re
import secrets
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from e2e_helpers import (
    TIMEOUT,
    basic_auth,
    bearer,
    browser,
    cookie_header,
    cookies_by_name,
    expired_session,
)
from e2e_servers import SERVER_MODES, RunningServer, ServerPool, descope_env
from mlflow_descope_auth.testing import DescopeEmulator

# Root logging at DEBUG in every server process (the CLI and each worker),
# before MLflow or the plugin import anything. Test-only: the plugin leaves
# logging configuration to its host.
SITECUSTOMIZE = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(
        level=logging.DEBUG,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    """
)
SGI_OPTS = {"uvicorn": "--log-level debug", "gunicorn": "--log-level debug --access-logfile -"}
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
PREFIX = 16


class Session:
    """Sends requests, keeps every answer, and remembers every secret seen."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.secrets: set[str] = set()
        self.emails: set[str] = set()
        self.bodies: list[tuple[str, str]] = []

    def secret(self, value: str) -> str:
        self.secrets.add(value)
        return value

    def send(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = requests.request(
            method,
            self.server.url(path),
            timeout=TIMEOUT,
            allow_redirects=False,
            **kwargs,  # type: ignore[arg-type]
        )
        headers = "\n".join(
            f"{name}: {value}"
            for name, value in response.headers.items()
            if name.lower() != "set-cookie"
        )
        self.bodies.append(
            (f"{method} {path} -> {response.status_code}", headers + "\n" + response.text)
        )
        for value, _attributes in cookies_by_name(response).values():
            if value:
                self.secret(value)
        return response

    def same_origin(self) -> dict[str, str]:
        return {"Origin": self.server.base_url}


def needles(value: str) -> list[str]:
    """The value and pieces of it that would betray it: a JWT's payload and
    signature, an access key's secret, a long prefix."""
    found = [value, value[:PREFIX]] if len(value) > PREFIX else [value]
    parts = value.split(".")
    if len(parts) == 3:
        found += [parts[1], parts[2][:PREFIX]]
    key_id, colon, key_secret = value.partition(":")
    if colon and key_id.startswith("K2"):
        # The key id is the access key's public name (its `sub`), not a secret.
        found = [value, key_secret, key_secret[:PREFIX]]
    return [piece for piece in found if len(piece) >= 8]


@pytest.fixture
def emu() -> Iterator[DescopeEmulator]:
    with DescopeEmulator(project_id="P2PluginLeakTest01") as emulator:
        yield emulator


def run_session(session: Session, emu: DescopeEmulator, tag: str) -> None:
    """A day of traffic: every kind of credential, refusals, a fault, logout."""
    send = session.send
    editor_email = session.secret(f"erin.{tag}@leak-test.example")
    viewer_email = session.secret(f"vic.{tag}@leak-test.example")
    session.emails |= {editor_email, viewer_email}
    emu.create_user(f"erin-{tag}", email=editor_email, name="Erin", roles=["mlflow-editor"])
    emu.create_user(f"vic-{tag}", email=viewer_email, name="Vic", roles=["mlflow-viewer"])

    # Browser sign-in: the login page, the flow (as the web component runs it), the session.
    assert send("GET", "/auth/login?next=/", headers=browser()).status_code == 200
    flow = requests.post(
        f"{emu.base_url}/emulator/flow/sign-up-or-in/login",
        json={"loginId": f"erin-{tag}"},
        headers={"Authorization": f"Bearer {emu.project_id}"},
        timeout=TIMEOUT,
    )
    assert flow.status_code == 200, flow.text
    session_jwt = session.secret(flow.json()["sessionJwt"])
    refresh_jwt = session.secret(flow.json()["refreshJwt"])
    signed_in = send(
        "POST",
        "/auth/session",
        json={"sessionJwt": session_jwt, "refreshJwt": refresh_jwt, "next": "/"},
        headers=session.same_origin(),
    )
    assert signed_in.status_code == 200, signed_in.text
    cookies = cookie_header(DS=session_jwt, DSR=refresh_jwt)

    # Cookie requests, reads and a write.
    assert send("GET", "/auth/user", headers=cookies).status_code == 200
    assert send("GET", "/ajax-api/2.0/mlflow/users/current", headers=cookies).status_code == 200
    search = {"max_results": 5}
    read = send("POST", "/ajax-api/2.0/mlflow/experiments/search", json=search, headers=cookies)
    assert read.status_code == 200, read.text
    created = send(
        "POST",
        "/ajax-api/2.0/mlflow/experiments/create",
        json={"name": f"leak-{tag}"},
        headers={**cookies, **session.same_origin()},
    )
    assert created.status_code == 200, created.text

    # The session expires: the refresh cookie renews it.
    expired = session.secret(expired_session(emu, f"erin-{tag}"))
    renewed = send(
        "POST",
        "/api/2.0/mlflow/experiments/search",
        json=search,
        headers=cookie_header(DS=expired, DSR=refresh_jwt),
    )
    assert renewed.status_code == 200, renewed.text
    assert "DS" in cookies_by_name(renewed)

    # Bearer and Basic with a session token; an access key both ways.
    viewer_jwt = session.secret(emu.mint_session(f"vic-{tag}"))
    key = session.secret(emu.create_access_key(f"bot-{tag}", roles=["mlflow-editor"]))
    for headers in (
        bearer(viewer_jwt),
        basic_auth("vic", viewer_jwt),
        bearer(key),
        basic_auth("bot", key),
    ):
        accepted = send("POST", "/api/2.0/mlflow/experiments/search", json=search, headers=headers)
        assert accepted.status_code == 200, accepted.text
    assert send("GET", "/api/2.0/mlflow/users/current", headers=bearer(key)).status_code == 200

    # Refusals: too low a level, forged, expired, refresh-as-session, bad key, junk cookie.
    denied = send(
        "POST",
        "/api/2.0/mlflow/experiments/create",
        json={"name": f"denied-{tag}"},
        headers=bearer(viewer_jwt),
    )
    assert denied.status_code == 403, denied.text
    forged = session.secret(session_jwt.rsplit(".", 1)[0] + "." + "A" * 342)
    bad_key = session.secret(f"{key.partition(':')[0]}:{secrets.token_urlsafe(32)}")
    for headers in (
        bearer(forged),
        bearer(expired),
        bearer(refresh_jwt),
        bearer(bad_key),
        basic_auth("bot", bad_key),
        {"Cookie": f"DS={forged}"},
    ):
        refused = send("POST", "/api/2.0/mlflow/experiments/search", json=search, headers=headers)
        assert refused.status_code == 401, refused.text
    assert send("GET", "/", headers=browser({"Cookie": f"DS={forged}"})).status_code == 302
    as_session = send(
        "POST", "/auth/session", json={"sessionJwt": refresh_jwt}, headers=session.same_origin()
    )
    assert as_session.status_code == 401

    # Descope fails: a refresh and an exchange meet a 500.
    emu.set_fault("refresh", status=500)
    emu.set_fault("exchange", status=500)
    other_refresh = session.secret(emu.mint_refresh(f"vic-{tag}"))
    other_key = session.secret(emu.create_access_key(f"bot2-{tag}", roles=["mlflow-viewer"]))
    failed_refresh = send(
        "POST",
        "/api/2.0/mlflow/experiments/search",
        json=search,
        headers=cookie_header(DS=expired, DSR=other_refresh),
    )
    assert failed_refresh.status_code == 503, failed_refresh.text
    failed_exchange = send(
        "POST", "/api/2.0/mlflow/experiments/search", json=search, headers=bearer(other_key)
    )
    assert failed_exchange.status_code == 503, failed_exchange.text
    emu.clear_faults()

    # Logout revokes the refresh token; the cookies are gone and the token is refused.
    logout = send("POST", "/auth/logout", headers={**cookies, **session.same_origin()})
    assert logout.status_code == 302
    replay = send(
        "POST",
        "/api/2.0/mlflow/experiments/search",
        json=search,
        headers=cookie_header(DS=expired, DSR=refresh_jwt),
    )
    assert replay.status_code == 401


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_full_session_with_debug_logging_leaks_no_secret(
    mlflow_server: ServerPool,
    emu: DescopeEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    management_key = f"K2mgmt{secrets.token_hex(16)}"
    env = descope_env(
        emu,
        PYTHONPATH=str(site),
        MLFLOW_LOGGING_LEVEL="DEBUG",
        DESCOPE_MANAGEMENT_KEY=management_key,
    )
    server = mlflow_server.start(env, mode=mode, sgi_opts=SGI_OPTS[mode])
    session = Session(server)
    session.secret(management_key)
    run_session(session, emu, tag=secrets.token_hex(4))
    time.sleep(0.5)  # let the workers flush their last lines
    server_log = server.log()
    emulator_log = "\n".join(record.getMessage() for record in caplog.records)

    # The logs are really at DEBUG, and the plugin's own debug lines are there.
    assert " DEBUG mlflow_descope_auth." in server_log, server_log[-3000:]
    assert "emulator refused" in emulator_log or "POST /v1/auth" in emulator_log

    places = [("server output", server_log), ("emulator log", emulator_log)] + [
        (f"response {what}", text) for what, text in session.bodies
    ]
    leaks = []
    for where, text in places:
        for value in session.secrets:
            # /auth/user serves the user's own email by design (§6).
            if value in session.emails and where.startswith("response GET /auth/user"):
                continue
            leaks += [f"{where}: {piece[:6]}…" for piece in needles(value) if piece in text]
        leaks += [f"{where}: JWT-shaped text" for _ in JWT_SHAPE.finditer(text)]
    assert leaks == [], leaks
