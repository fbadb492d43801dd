"""Descope unreachable: at start, later, and rate limiting us (contract §3, §4)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import requests

from e2e_helpers import (
    TIMEOUT,
    Cast,
    bearer,
    cookie_header,
    cookies_by_name,
    expired_session,
    make_cast,
    search_experiments,
)
from e2e_servers import SERVER_MODES, RunningServer, ServerPool, descope_env
from mlflow_descope_auth.testing import DescopeEmulator

HTTP_TIMEOUT = 2
# The shared emulator and per-mode servers of the tests after start-up (conftest).
EMULATOR_OPTIONS = {"project_id": "P2PluginOutage0002"}
SERVER_ENV = {"DESCOPE_HTTP_TIMEOUT_SECONDS": str(HTTP_TIMEOUT)}


def outage_env(emu: DescopeEmulator) -> dict[str, str]:
    return descope_env(emu, **SERVER_ENV)


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_key_set_unreachable_at_start_gives_503_within_the_timeout(
    mlflow_server: ServerPool, mode: str
) -> None:
    with DescopeEmulator(project_id="P2PluginOutage0001") as emu:
        cast = make_cast(emu)
        emu.set_fault("keys", hang=HTTP_TIMEOUT * 5)
        server = mlflow_server.start(outage_env(emu), mode=mode)

        started = time.monotonic()
        response = search_experiments(server, bearer(emu.mint_session(cast.editor.login_id)))
        elapsed = time.monotonic() - started

        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "Traceback" not in response.text
        assert elapsed < HTTP_TIMEOUT * 2 + 2


# --- Descope going away after start: one server per mode --------------------------


@pytest.fixture
def healthy_descope(emu: DescopeEmulator) -> Iterator[DescopeEmulator]:
    emu.clear_faults()
    yield emu
    emu.clear_faults()


def test_cached_keys_keep_working_when_descope_goes_away(
    server: RunningServer, healthy_descope: DescopeEmulator, cast: Cast
) -> None:
    emu = healthy_descope
    first = search_experiments(server, bearer(emu.mint_session(cast.editor.login_id)))
    assert first.status_code == 200

    emu.set_fault("keys", close=True)
    fresh = emu.mint_session(cast.viewer.login_id)
    assert search_experiments(server, bearer(fresh)).status_code == 200


def test_refresh_while_descope_fails_is_503_with_retry_after(
    server: RunningServer, healthy_descope: DescopeEmulator, cast: Cast
) -> None:
    emu = healthy_descope
    emu.set_fault("refresh", status=500)
    headers = cookie_header(
        DS=expired_session(emu, cast.editor.login_id), DSR=emu.mint_refresh(cast.editor.login_id)
    )
    refused = search_experiments(server, headers)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in refused.headers


def test_descope_rate_limit_becomes_429_with_retry_after(
    server: RunningServer, healthy_descope: DescopeEmulator
) -> None:
    emu = healthy_descope
    key = emu.create_access_key(f"limited-bot-{server.mode}", roles=["mlflow-viewer"])
    emu.set_fault("exchange", status=429, retry_after=7)
    response = search_experiments(server, bearer(key))
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    # The server holds every call to Descope for Retry-After, then goes on by
    # itself (and the next test meets a server that is not holding off).
    assert_heals(emu, lambda: search_experiments(server, bearer(key)), 7, succeeded)


# --- Fault matrix (issue 8): each fault at each moment Descope is needed ------------
#
# Faults: 500, 429 with Retry-After, a hang beyond the configured timeout, a
# dropped connection. Moments: the first key-set load, a refresh, an access-key
# exchange, and a key rotation (a new kid while the key set fails). Each ends
# in the contract's answer (§4: 503, or 429 passing Descope's Retry-After on)
# within the timeout, leaves the server answering, and heals by itself: once
# the fault is cleared the same request succeeds, at the latest when the
# Retry-After it was given has passed.

FAULTS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "429": {"status": 429, "retry_after": 2},
    "hang": {"hang": HTTP_TIMEOUT * 5},
    "close": {"close": True},
}
# One HTTP timeout for the call, one for a connect that may precede it, and
# slack for a loaded machine.
BOUND = HTTP_TIMEOUT * 2 + 2


def assert_fault_answer(fault: str, response: requests.Response, elapsed: float) -> int:
    """The contract's answer to a Descope fault; returns its Retry-After."""
    assert elapsed < BOUND, f"{fault}: answered after {elapsed:.1f} s"
    assert "Traceback" not in response.text
    expected = 429 if fault == "429" else 503
    assert response.status_code == expected, f"{fault}: {response.status_code} {response.text}"
    assert "Set-Cookie" not in response.headers, response.headers
    retry_after = int(response.headers["Retry-After"])
    if fault == "429":
        assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert retry_after == FAULTS["429"]["retry_after"]
    else:
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert 1 <= retry_after <= 30
    return retry_after


def timed(send: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def assert_responsive(server: RunningServer) -> None:
    """The worker is not stuck: /health answers at once."""
    response, elapsed = timed(lambda: requests.get(server.url("/health"), timeout=TIMEOUT))
    assert response.status_code == 200
    assert elapsed < 1.5, f"/health took {elapsed:.1f} s"


def during_fault(
    server: RunningServer, send: Callable[[], requests.Response]
) -> tuple[requests.Response, float]:
    """Sends the faulted request; under uvicorn, /health must answer while it waits."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(timed, send)
        if server.mode == "uvicorn":
            # A Descope call runs off the event loop: other requests go on.
            time.sleep(0.3)
            assert_responsive(server)
        response, elapsed = pending.result()
    assert_responsive(server)
    return response, elapsed


def assert_heals(
    emu: DescopeEmulator,
    send: Callable[[], requests.Response],
    retry_after: int,
    ok: Callable[[requests.Response], bool],
) -> None:
    """After clearing the fault, the same request succeeds within Retry-After (+ slack)."""
    emu.clear_faults()
    deadline = time.monotonic() + retry_after + 2
    while True:
        response = send()
        if ok(response):
            return
        # Until then only "come back later" answers, never a refusal or a 500.
        assert response.status_code in (429, 503), response.text
        assert time.monotonic() < deadline, f"not healed after {retry_after} s: {response.text}"
        time.sleep(0.5)


def succeeded(response: requests.Response) -> bool:
    return response.status_code == 200


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_every_fault_at_the_first_key_set_load_is_503_or_429_and_heals(
    mlflow_server: ServerPool, mode: str
) -> None:
    with DescopeEmulator(project_id="P2PluginOutage0003") as emu:
        cast = make_cast(emu)
        emu.set_fault("keys", status=500)
        server = mlflow_server.start(outage_env(emu), mode=mode)
        token = emu.mint_session(cast.editor.login_id)

        def send() -> requests.Response:
            return search_experiments(server, bearer(token))

        # 429 last: after it the server holds every call to Descope for Retry-After.
        for fault in ("500", "hang", "close", "429"):
            emu.set_fault("keys", **FAULTS[fault])
            # A failed first load is retried after at most a second.
            time.sleep(1.1)
            before = emu.calls("keys")
            response, elapsed = during_fault(server, send)
            assert emu.calls("keys") > before, f"{fault}: the key set was not fetched"
            retry_after = assert_fault_answer(fault, response, elapsed)
        assert_heals(emu, send, retry_after, succeeded)


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_during_refresh_is_503_or_429_keeps_cookies_and_heals(
    server: RunningServer, healthy_descope: DescopeEmulator, cast: Cast, fault: str
) -> None:
    emu = healthy_descope
    login_id = cast.viewer.login_id
    headers = cookie_header(DS=expired_session(emu, login_id), DSR=emu.mint_refresh(login_id))

    def send() -> requests.Response:
        return search_experiments(server, headers)

    emu.set_fault("refresh", **FAULTS[fault])
    response, elapsed = during_fault(server, send)
    retry_after = assert_fault_answer(fault, response, elapsed)
    assert_heals(
        emu,
        send,
        retry_after,
        lambda r: succeeded(r) and "DS" in cookies_by_name(r),
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_during_access_key_exchange_is_503_or_429_and_heals(
    server: RunningServer, healthy_descope: DescopeEmulator, fault: str
) -> None:
    emu = healthy_descope
    key = emu.create_access_key(f"fault-bot-{server.mode}-{fault}", roles=["mlflow-viewer"])

    def send() -> requests.Response:
        return search_experiments(server, bearer(key))

    emu.set_fault("exchange", **FAULTS[fault])
    response, elapsed = during_fault(server, send)
    retry_after = assert_fault_answer(fault, response, elapsed)
    # A key Descope could not judge is not remembered as refused.
    assert_heals(emu, send, retry_after, succeeded)


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_every_fault_during_key_rotation_is_503_or_429_and_heals(
    mlflow_server: ServerPool, mode: str
) -> None:
    with DescopeEmulator(project_id="P2PluginOutage0004") as emu:
        cast = make_cast(emu)
        server = mlflow_server.start(outage_env(emu), mode=mode)
        old = bearer(emu.mint_session(cast.editor.login_id))
        assert search_experiments(server, old).status_code == 200

        for fault in ("500", "hang", "close", "429"):
            emu.rotate_keys(keep_old=True)
            token = emu.mint_session(cast.editor.login_id)

            def send(token: str = token) -> requests.Response:
                return search_experiments(server, bearer(token))

            emu.set_fault("keys", **FAULTS[fault])
            response, elapsed = during_fault(server, send)
            retry_after = assert_fault_answer(fault, response, elapsed)
            # Tokens signed with a cached key still pass while the key set fails.
            emu.set_fault("keys", **FAULTS[fault])
            assert search_experiments(server, old).status_code == 200
            assert_heals(emu, send, retry_after, succeeded)
