"""The README's promises hold: its configuration table is `Config`'s (every
variable it reads, each documented default its default) and every script it
tells people to run exists."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest

from mlflow_descope_auth import config as config_module
from mlflow_descope_auth.config import Config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# What `Config.from_env` reads: variable -> Config field.
READ_BY_CONFIG = {variable: field for variable, (field, _parse) in config_module._VARIABLES.items()}
PROJECT_ID = "P2ReadmeCheck"
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|([^|]*)\|", re.MULTILINE)


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def _documented_defaults() -> dict[str, str]:
    rows = ROW.findall(_section("Configuration"))
    assert rows, "no configuration table found in README.md"
    documented = {variable: default.strip() for variable, default in rows}
    assert len(documented) == len(rows), "a variable is listed twice"
    return documented


def _default_of(field_name: str) -> Any:
    (field,) = (f for f in dataclasses.fields(Config) if f.name == field_name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _as_env(value: Any) -> str:
    """A Config default written the way the environment gives it."""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_table_lists_exactly_the_variables_config_reads() -> None:
    assert set(_documented_defaults()) == set(READ_BY_CONFIG)


@pytest.mark.parametrize("variable", sorted(READ_BY_CONFIG))
def test_the_documented_default_is_configs(variable: str) -> None:
    documented = _documented_defaults().get(variable)
    assert documented is not None, f"{variable} is missing from the README table"
    default = _default_of(READ_BY_CONFIG[variable])

    literal = re.match(r"`([^`]*)`", documented)
    if literal is None:
        # "— (required)", "derived", "CDN URL of that version": nothing set,
        # Config leaves it empty or works it out.
        assert default in (None, ""), f"{variable}: README gives no value, Config has {default!r}"
        return
    assert literal.group(1) == _as_env(default)
    # And the documented value, set explicitly, changes nothing.
    explicit = Config.from_env(
        {"DESCOPE_PROJECT_ID": PROJECT_ID, variable: literal.group(1)}, dotenv_path=None
    )
    assert explicit == Config(DESCOPE_PROJECT_ID=PROJECT_ID)


def test_every_script_the_readme_mentions_exists_and_runs() -> None:
    mentioned = set(re.findall(r"\bscripts/[\w.-]+", README))
    assert {"scripts/demo.sh", "scripts/test.sh"} <= mentioned
    for script in sorted(mentioned):
        path = ROOT / script
        assert path.is_file(), f"README mentions {script}, which does not exist"
        if path.suffix == ".sh":
            assert os.access(path, os.X_OK), f"{script} is not executable"


def test_every_linked_document_exists() -> None:
    for target in re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README):
        assert (ROOT / target).is_file(), f"README links {target}, which does not exist"
