"""Fixtures shared by the test suite.

The emulator fixtures (`descope_emulator`, `descope_emulator_session`) come
from the package's pytest plugin; servers are real `mlflow server` processes
(see `e2e_servers.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_servers import ServerPool


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[ServerPool]:
    """Factory: `mlflow_server.start(env, mode=..., workers=..., static_prefix=...)`."""
    pool = ServerPool(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def mlflow_server_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The same factory, for servers a whole module shares."""
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    try:
        yield pool
    finally:
        pool.close()
