"""Helpers for the end-to-end tests: people in the emulator and requests against a server."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from e2e_servers import BROWSER_ACCEPT, RunningServer, cookie_attributes, set_cookies

TIMEOUT = 30


@dataclass(frozen=True)
class Person:
    login_id: str
    user_id: str


@dataclass(frozen=True)
class Cast:
    """One user per level, plus an access key with EDIT."""

    editor: Person
    viewer: Person
    admin: Person
    nobody: Person
    access_key: str


def make_cast(emulator: Any, suffix: str = "") -> Cast:
    def person(name: str, **grants: Any) -> Person:
        user = emulator.create_user(f"{name}{suffix}", name=name.title(), **grants)
        return Person(login_id=f"{name}{suffix}", user_id=user.user_id)

    return Cast(
        editor=person("erin", roles=["mlflow-editor"]),
        viewer=person("vic", roles=["mlflow-viewer"]),
        admin=person("ada", roles=["admin"]),
        nobody=person("nemo"),
        access_key=emulator.create_access_key(f"ci-bot{suffix}", roles=["mlflow-editor"]),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic_auth(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def cookie_header(**values: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in values.items())}


def browser(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Accept": BROWSER_ACCEPT, **(extra or {})}


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without checking it (tests only look at `exp`)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def search_experiments(server: RunningServer, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        server.url("/api/2.0/mlflow/experiments/search"),
        json={"max_results": 1},
        headers=headers,
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def cookies_by_name(response: requests.Response) -> dict[str, tuple[str, dict[str, str]]]:
    found = {}
    for header in set_cookies(response):
        name, value, attributes = cookie_attributes(header)
        found[name] = (value, attributes)
    return found


def deleted_cookies(response: requests.Response) -> list[str]:
    return [
        name
        for name, (_v, attrs) in cookies_by_name(response).items()
        if attrs.get("max-age") == "0"
    ]


def assert_json_401(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Location" not in response.headers
    assert "<html" not in response.text.lower()
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def expired_session(emulator: Any, login_id: str) -> str:
    now = int(time.time())
    return str(emulator.mint_session(login_id, iat=now - 700, exp=now - 100))
