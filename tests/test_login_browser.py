"""The login page and the MLflow UI in a real browser against a real server
(contract §6, §7).

Uses the emulator's stand-in `<descope-wc>`; skipped when Playwright or a
Chromium is not installed (failed instead under `CI=true`). Screenshots go to
`$TEST_ARTIFACTS_DIR/screenshots/` (default `test-artifacts/` at the top of the
repository, which git ignores).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from browser import MISSING, launch
from e2e_servers import RunningServer, descope_env, start_server
from mlflow_descope_auth.testing import DescopeEmulator

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(MISSING, reason="no chromium installed")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def screenshot(page: Any, name: str) -> Path:
    """Saves a PNG of the page as a test artifact and checks it was written."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path))
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert path.stat().st_size > len(PNG_SIGNATURE)
    return path


def experiment_link(page: Any, name: str) -> Any:
    """The link to an experiment in the experiments table."""
    return page.get_by_test_id("experiment-list-item-link").filter(has_text=name)


def sign_in_to_the_experiments_list(page: Any, server: RunningServer, login_id: str) -> None:
    page.goto(server.url("/#/experiments"))
    assert "/auth/login?next=%2F" in page.url
    sign_in(page, login_id)
    page.wait_for_url(server.url("/#/experiments"), timeout=15_000)
    # The list is loaded once the Default experiment, which every store has, is in it.
    sync_api.expect(experiment_link(page, "Default")).to_be_visible(timeout=30_000)


def submit_new_experiment(page: Any, name: str) -> Any:
    """Creates an experiment through the UI's own dialog; returns the create call's response."""
    page.get_by_role("button", name="Create", exact=True).first.click()
    page.fill("#experimentName", name)
    with page.expect_response(lambda r: r.url.endswith("/experiments/create")) as created:
        page.get_by_role("dialog").get_by_role("button", name="Create", exact=True).click()
    return created.value


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


def test_editor_signs_in_sees_their_name_creates_an_experiment_and_signs_out(
    page: Any, server: RunningServer, emu: DescopeEmulator
) -> None:
    page.goto(server.url("/"))
    assert "/auth/login?next=%2F" in page.url
    page.wait_for_selector('[data-login-id="editor"]', timeout=15_000)
    screenshot(page, "login-page")

    sign_in_to_the_experiments_list(page, server, "editor")
    # The UI names the user from users/current; the username claim defaults to `sub`.
    username = emu.get_user("editor").user_id
    sync_api.expect(page.get_by_role("button", name=username)).to_be_visible()
    screenshot(page, "signed-in-ui")

    name = f"browser-{uuid.uuid4().hex[:8]}"
    created = submit_new_experiment(page, name)
    assert created.status == 200
    # The UI opens the new experiment; going to the list before it has would
    # race its own navigation.
    experiment_id = created.json()["experiment_id"]
    page.wait_for_url(f"**/#/experiments/{experiment_id}**", timeout=30_000)
    page.goto(server.url("/#/experiments"))
    sync_api.expect(experiment_link(page, name)).to_have_text(name, timeout=30_000)

    page.goto(server.url("/auth/logout"))
    page.click("button[type=submit]")
    page.wait_for_url(server.url("/auth/login"), timeout=15_000)
    page.goto(server.url("/#/experiments"))
    assert "/auth/login?next=%2F" in page.url
    sync_api.expect(page.locator('[data-login-id="editor"]')).to_be_visible(timeout=15_000)


def test_viewer_creating_an_experiment_is_told_it_needs_edit(
    page: Any, server: RunningServer, emu: DescopeEmulator
) -> None:
    sign_in_to_the_experiments_list(page, server, "viewer")
    name = f"browser-{uuid.uuid4().hex[:8]}"

    assert submit_new_experiment(page, name).status == 403

    viewer = emu.get_user("viewer").user_id
    dialog = page.get_by_role("dialog")
    sync_api.expect(dialog).to_contain_text(f"CreateExperiment needs EDIT; {viewer} has READ")
    sync_api.expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    screenshot(page, "viewer-create-denied")
    dialog.get_by_role("button", name="Close").click()
    sync_api.expect(experiment_link(page, "Default")).to_be_visible()
    assert experiment_link(page, name).count() == 0
