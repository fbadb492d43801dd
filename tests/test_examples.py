"""The deployment examples (`examples/`) cannot run here; this checks what can
be checked: they parse, set only variables the product reads, with values
`Config` accepts, and run MLflow with `--app-name descope-auth`."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mlflow_descope_auth import config as config_module
from mlflow_descope_auth.config import Config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The variables `Config.from_env` reads: its own table, not a copy of it.
PRODUCT_VARIABLES = frozenset(config_module._VARIABLES)
SAMPLE_PROJECT_ID = "P2SampleProjectForExamples"


def _documents(name: str) -> list[dict[str, Any]]:
    with (EXAMPLES / name).open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def _compose_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    # `${NAME:?message}` is filled in by compose from the caller's environment.
    return {
        name: re.sub(r"\$\{[^}]*\}", SAMPLE_PROJECT_ID, str(value))
        for name, value in environment.items()
    }


def _containers(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in documents:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield from doc["spec"]["template"]["spec"]["containers"]


def _config_source(doc: dict[str, Any]) -> dict[str, str]:
    """The key-value pairs of a ConfigMap or Secret (a Secret's `data` is base64)."""
    data = {k: str(v) for k, v in (doc.get("data") or {}).items()}
    if doc["kind"] == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in data.items()}
    return {**data, **{k: str(v) for k, v in (doc.get("stringData") or {}).items()}}


def _kubernetes_environment(
    documents: list[dict[str, Any]], container: dict[str, Any]
) -> dict[str, str]:
    """What the container sees: its envFrom Secrets and ConfigMaps, then its env."""
    sources = {
        (doc["kind"], doc["metadata"]["name"]): _config_source(doc)
        for doc in documents
        if doc["kind"] in ("Secret", "ConfigMap")
    }
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind = "Secret" if "secretRef" in source else "ConfigMap"
        name = (source.get("secretRef") or source["configMapRef"])["name"]
        assert (kind, name) in sources, f"{kind} {name} is not in the manifest"
        environment.update(sources[kind, name])
    for item in container.get("env", []):
        environment[item["name"]] = str(item.get("value", ""))
    return environment


def _command(parts: list[str] | str | None) -> str:
    return " ".join(parts) if isinstance(parts, list) else str(parts or "")


def _assert_product_reads(environment: dict[str, str]) -> None:
    assert environment, "the example sets no variable at all"
    unknown = sorted(set(environment) - PRODUCT_VARIABLES)
    assert unknown == [], f"variables the product does not read: {unknown}"
    values = {**environment, "DESCOPE_PROJECT_ID": SAMPLE_PROJECT_ID}
    Config.from_env(values, dotenv_path=None)  # every value is one Config accepts


def test_docker_compose_sets_only_product_variables_and_runs_the_plugin() -> None:
    (compose,) = _documents("docker-compose.yml")
    services = compose["services"]
    assert services

    for service in services.values():
        _assert_product_reads(_compose_environment(service))
        assert "--app-name descope-auth" in _command(service["command"])


def test_kubernetes_sets_only_product_variables_and_runs_the_plugin() -> None:
    documents = _documents("kubernetes.yaml")
    containers = list(_containers(documents))
    assert containers

    for container in containers:
        _assert_product_reads(_kubernetes_environment(documents, container))
        command = _command(container.get("command")) + " " + _command(container.get("args"))
        assert "--app-name descope-auth" in command
