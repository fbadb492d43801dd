"""Access keys through `Core.authenticate` and `Core.exchange_access_key`,
against the local Descope emulator: one exchange per key, refusals
remembered, failures bounded and classified."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import pytest

from mlflow_descope_auth import _core
from mlflow_descope_auth.exceptions import (
    AccessKeyRefusedError,
    DescopeRateLimitedError,
    DescopeUnavailableError,
)

if TYPE_CHECKING:
    from mlflow_descope_auth.testing import DescopeEmulator

pytest.importorskip("mlflow_descope_auth.testing", reason="the emulator branch is not merged")

CoreFactory = Callable[..., _core.Core]


def test_access_key_is_exchanged_once_and_cached(
    core: _core.Core, descope_emulator: DescopeEmulator
) -> None:
    key = descope_emulator.create_access_key("ci-bot", roles=["mlflow-editor"])

    with pytest.raises(_core.WouldBlock):
        core.authenticate(key, blocking=False)
    session = core.authenticate(key)
    assert core.authenticate(key).user_id == session.user_id
    assert core.authenticate(key, blocking=False).user_id == session.user_id

    assert session.is_access_key
    assert session.level == "EDIT"
    assert session.user_id == key.partition(":")[0]
    assert descope_emulator.calls("exchange") == 1
    assert core.stats()["access_key_exchanges"] == 1


def test_concurrent_first_uses_share_one_exchange(
    core: _core.Core, descope_emulator: DescopeEmulator
) -> None:
    key = descope_emulator.create_access_key("ci-bot", roles=["mlflow-viewer"])
    core.load_keys()
    levels: list[str] = []

    def use() -> None:
        levels.append(core.authenticate(key).level)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert levels == ["READ"] * 8
    assert descope_emulator.calls("exchange") == 1


def test_refused_key_is_remembered(
    make_core: CoreFactory, descope_emulator: DescopeEmulator
) -> None:
    core = make_core(access_key_refusal_seconds=0.3)
    key = descope_emulator.create_access_key("gone")
    descope_emulator.revoke_access_key(key)

    for _ in range(5):
        with pytest.raises(AccessKeyRefusedError) as raised:
            core.authenticate(key)
        assert key not in str(raised.value)
    with pytest.raises(AccessKeyRefusedError):
        core.authenticate(key, blocking=False)
    assert descope_emulator.calls("exchange") == 1

    time.sleep(0.35)
    with pytest.raises(AccessKeyRefusedError):
        core.authenticate(key)
    assert descope_emulator.calls("exchange") == 2


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ({"status": 500}, DescopeUnavailableError, None),
        ({"status": 429, "retry_after": 4}, DescopeRateLimitedError, 4),
        ({"hang": 5.0}, DescopeUnavailableError, None),
    ],
)
def test_exchange_failures_are_bounded_and_classified(
    core: _core.Core,
    descope_emulator: DescopeEmulator,
    fault: dict[str, Any],
    error: type[Exception],
    retry_after: int | None,
) -> None:
    key = descope_emulator.create_access_key("ci-bot")
    core.load_keys()
    descope_emulator.set_fault("exchange", **fault)
    started = time.monotonic()

    with pytest.raises(error) as raised:
        core.authenticate(key)

    assert time.monotonic() - started < 2.5
    if retry_after is not None:
        assert getattr(raised.value, "retry_after", None) == retry_after


def test_exchange_access_key_always_asks_descope(
    core: _core.Core, descope_emulator: DescopeEmulator
) -> None:
    key = descope_emulator.create_access_key("ci-bot", roles=["mlflow-manager"])

    first = core.exchange_access_key(key)
    core.exchange_access_key(key)

    assert first.key_id == key.partition(":")[0]
    assert first.session.level == "MANAGE"
    assert first.expiration >= first.session.expires_at - 5
    response = first.sdk_response()
    assert response["keyId"] == first.key_id
    assert response["sessionToken"]["jwt"] == first.session_jwt
    assert descope_emulator.calls("exchange") == 2
