"""The stand-in `<descope-wc>` in a real browser: events, tokens, cross-origin calls.

Skipped when Playwright or a Chromium is not installed. The page is served
from another loopback port than the emulator, as the MLflow login page is.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import jwt
import pytest

from browser import MISSING, launch

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(MISSING, reason="no chromium installed")

PAGE = """<!doctype html>
<html><body>
<script src="{script}"></script>
<descope-wc project-id="{project}" flow-id="sign-up-or-in" {extra}></descope-wc>
<script>
  window.events = [];
  for (const name of ["ready", "success", "error"]) {{
    document.addEventListener(name, (event) => window.events.push(
      {{name: name, detail: event.detail, target: event.target.tagName}}));
  }}
</script>
</body></html>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page_for(browser, descope_emulator):
    """Opens a page (served from its own loopback port) hosting the component."""
    servers, pages = [], []

    def open_page(extra: str = ""):
        html = PAGE.format(
            script=descope_emulator.web_component_url,
            project=descope_emulator.project_id,
            extra=extra,
        ).encode()
        server = _serve(html)
        servers.append(server)
        page = browser.new_page()
        pages.append(page)
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_function("window.events.some((e) => e.name === 'ready')", timeout=10_000)
        return page

    yield open_page
    for page in pages:
        page.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def _serve(html: bytes) -> http.server.HTTPServer:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _events(page, name: str) -> list[dict]:
    page.wait_for_function(
        f"window.events.some((e) => e.name === {json.dumps(name)})", timeout=10_000
    )
    return [event for event in page.evaluate("window.events") if event["name"] == name]


def test_clicking_a_user_fires_success_with_real_tokens(page_for, descope_emulator):
    descope_emulator.add_demo_users()
    page = page_for()

    page.click('[data-login-id="editor"]')

    [success] = _events(page, "success")
    detail = success["detail"]
    assert success["target"] == "DESCOPE-WC"
    claims = jwt.decode(
        detail["sessionJwt"], descope_emulator.public_key_pem(), algorithms=["RS256"]
    )
    assert claims["sub"] == descope_emulator.get_user("editor").user_id
    assert claims["roles"] == ["mlflow-editor"]
    assert detail["user"]["loginIds"] == ["editor"]
    assert page.evaluate("localStorage.getItem('DS')") == detail["sessionJwt"]
    assert page.evaluate("localStorage.getItem('DSR')") == detail["refreshJwt"]
    assert descope_emulator.calls("flow_login") == 1


def test_fail_button_fires_error_and_renders_no_html(page_for, descope_emulator):
    descope_emulator.create_user("x", name="<img src=x>")
    descope_emulator.set_flow_error(message="<img src=x onerror=alert(1)>")
    page = page_for()

    page.click("#descope-fail")

    [error] = _events(page, "error")
    assert error["detail"]["errorMessage"] == "<img src=x onerror=alert(1)>"
    assert set(error["detail"]) == {"errorCode", "errorDescription", "errorMessage"}
    shadow_images = "document.querySelector('descope-wc').shadowRoot.querySelectorAll('img')"
    assert page.evaluate(f"{shadow_images}.length") == 0


def test_a_refused_login_fires_error_with_descope_detail(page_for, descope_emulator):
    descope_emulator.add_demo_users()
    descope_emulator.set_fault("flow_login", status=500)
    page = page_for()

    page.click('[data-login-id="viewer"]')

    [error] = _events(page, "error")
    assert error["detail"]["errorCode"] == "E010500"
    assert page.evaluate("localStorage.getItem('DS')") is None


def test_tenant_attribute_signs_in_to_that_tenant(page_for, descope_emulator):
    descope_emulator.create_user("t", tenants={"T1": {"roles": ["mlflow-editor"]}})
    page = page_for(extra='tenant="T1"')

    page.click('[data-login-id="t"]')

    [success] = _events(page, "success")
    assert (
        jwt.decode(success["detail"]["sessionJwt"], options={"verify_signature": False})["dct"]
        == "T1"
    )
