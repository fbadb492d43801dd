"""The login page in a real browser against a real server (contract §6).

Uses the emulator's stand-in `<descope-wc>`; skipped when Playwright or a
Chromium is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from browser import MISSING, launch
from e2e_servers import RunningServer, descope_env, start_server
from mlflow_descope_auth.testing import DescopeEmulator

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(MISSING, reason="no chromium installed")


@pytest.fixture(scope="module")
def emu() -> Iterator[DescopeEmulator]:
    with DescopeEmulator(project_id="P2PluginBrowser001") as emulator:
        emulator.add_demo_users()
        yield emulator


@pytest.fixture(scope="module")
def server(
    emu: DescopeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("browser"), descope_env(emu))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Any, login_id: str) -> None:
    page.wait_for_selector(f'[data-login-id="{login_id}"]', timeout=15_000)
    page.click(f'[data-login-id="{login_id}"]')


def test_sign_in_sets_httponly_cookies_and_returns_to_the_page_with_its_fragment(
    page: Any, server: RunningServer
) -> None:
    page.goto(server.url("/#/experiments"))
    assert "/auth/login?next=%2F" in page.url

    sign_in(page, "editor")
    page.wait_for_url(server.url("/#/experiments"), timeout=15_000)

    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["DS"]["httpOnly"]
    assert cookies["DSR"]["httpOnly"]
    assert cookies["DS"]["sameSite"] == "Lax"
    assert page.evaluate("localStorage.getItem('DS')") is None
    assert page.evaluate("localStorage.getItem('DSR')") is None
    assert page.evaluate("document.cookie") == ""
    current = page.evaluate("fetch('ajax-api/2.0/mlflow/users/current').then((r) => r.json())")
    assert current["is_basic_auth"] is False
    assert current["user"]["username"]


@pytest.mark.parametrize(
    "requested", ["https://evil.example/", "//evil.example", "/%09/evil.example"]
)
def test_sign_in_with_a_foreign_next_lands_on_the_default_page(
    page: Any, server: RunningServer, requested: str
) -> None:
    page.goto(server.url(f"/auth/login?next={quote(requested, safe='')}"))
    sign_in(page, "viewer")
    page.wait_for_url(server.url("/"), timeout=15_000)


def test_component_error_is_shown_as_text(
    page: Any, server: RunningServer, emu: DescopeEmulator
) -> None:
    emu.set_flow_error(message="<img src=x onerror=alert(1)>")
    page.goto(server.url("/auth/login"))
    page.wait_for_selector("#descope-fail", timeout=15_000)
    page.click("#descope-fail")
    page.wait_for_selector("#login-error:not([hidden])", timeout=10_000)
    assert page.text_content("#login-error") == "<img src=x onerror=alert(1)>"
    assert page.evaluate("document.querySelectorAll('main img').length") == 0


def test_sign_out_confirms_then_clears_the_session(page: Any, server: RunningServer) -> None:
    page.goto(server.url("/auth/login"))
    sign_in(page, "admin")
    page.wait_for_url(server.url("/"), timeout=15_000)

    page.goto(server.url("/auth/logout"))
    page.click("button[type=submit]")
    page.wait_for_url(server.url("/auth/login"), timeout=15_000)
    names = {c["name"] for c in page.context.cookies()}
    assert not names & {"DS", "DSR"}
