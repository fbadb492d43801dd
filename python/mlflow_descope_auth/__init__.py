"""Descope authentication and authorization for the MLflow tracking server."""

from __future__ import annotations

from typing import Any

from mlflow_descope_auth._core import __version__

__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> Any:
    # `create_app` pulls in MLflow, Flask and Starlette; importing the package
    # alone stays cheap.
    if name == "create_app":
        from mlflow_descope_auth.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
