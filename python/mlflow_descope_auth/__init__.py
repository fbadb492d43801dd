"""Descope authentication and authorization for the MLflow tracking server.

Importing the package is cheap: MLflow, Flask and the app factory load only
when used (``create_app`` is imported lazily).
"""

from __future__ import annotations

import importlib
from typing import Any

from mlflow_descope_auth._core import __version__
from mlflow_descope_auth.client import DescopeClient, get_descope_client
from mlflow_descope_auth.config import Config, get_config, set_config
from mlflow_descope_auth.exceptions import (
    AccessKeyRefusedError,
    AuthenticationError,
    ConfigurationError,
    DescopeAuthError,
    DescopeRateLimitedError,
    DescopeUnavailableError,
    InvalidTokenError,
    PermissionDeniedError,
    RefreshRefusedError,
    TokenExpiredError,
)

__all__ = [
    "AccessKeyRefusedError",
    "AuthenticationError",
    "Config",
    "ConfigurationError",
    "DescopeAuthError",
    "DescopeClient",
    "DescopeRateLimitedError",
    "DescopeUnavailableError",
    "InvalidTokenError",
    "PermissionDeniedError",
    "RefreshRefusedError",
    "TokenExpiredError",
    "__version__",
    "create_app",
    "get_config",
    "get_descope_client",
    "set_config",
]


def __getattr__(name: str) -> Any:
    # create_app lives with the MLflow glue; importing it pulls in MLflow.
    if name == "create_app":
        return importlib.import_module("mlflow_descope_auth.app").create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
