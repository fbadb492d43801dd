"""Descope authentication and authorization for the MLflow tracking server."""

from mlflow_descope_auth._core import __version__

__all__ = ["__version__"]
