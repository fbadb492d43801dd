"""pytest fixtures for the Descope emulator, registered through the `pytest11` entry point.

Importing this module is cheap and works without the `[testing]` extra: the
emulator (and with it `cryptography` and `PyJWT`) is imported only when a
fixture is used.

- `descope_emulator`: a fresh emulator per test. Options come from the
  marker, e.g. `@pytest.mark.descope_emulator(rotate_refresh_tokens=True)`.
- `descope_emulator_session`: one emulator for the whole session (default
  options); tests sharing it should not leave faults behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlflow_descope_auth.testing.emulator import DescopeEmulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "descope_emulator(**options): DescopeEmulator options for the descope_emulator fixture",
    )


@pytest.fixture
def descope_emulator(request: pytest.FixtureRequest) -> Iterator[DescopeEmulator]:
    """A Descope emulator on loopback, started for this test and stopped after it."""
    from mlflow_descope_auth.testing.emulator import DescopeEmulator

    marker = request.node.get_closest_marker("descope_emulator")
    options = dict(marker.kwargs) if marker is not None else {}
    with DescopeEmulator(**options) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def descope_emulator_session() -> Iterator[DescopeEmulator]:
    """One Descope emulator shared by the whole test session."""
    from mlflow_descope_auth.testing.emulator import DescopeEmulator

    with DescopeEmulator() as emulator:
        yield emulator
