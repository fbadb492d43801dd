"""Config: defaults, environment and .env, and start-up errors that name the
setting and the allowed values without echoing a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlflow_descope_auth import Config, ConfigurationError, get_config, set_config
from mlflow_descope_auth.config import reset_config

PROJECT = "P2TestProject0001"


@pytest.fixture(autouse=True)
def _fresh_config() -> object:
    reset_config()
    yield
    reset_config()


def from_env(tmp_path: Path, env: dict[str, str], dotenv: str | None = None) -> Config:
    path = tmp_path / ".env"
    if dotenv is not None:
        path.write_text(dotenv)
    return Config.from_env(environ=env, dotenv_path=path)


def test_defaults_follow_the_contract() -> None:
    config = Config(DESCOPE_PROJECT_ID=PROJECT)

    assert config.DESCOPE_FLOW_ID == "sign-up-or-in"
    assert config.DESCOPE_REDIRECT_URL == "/"
    assert config.DESCOPE_BASE_URL == "https://api.descope.com"
    assert config.DESCOPE_WEB_COMPONENT_VERSION == "4.3.2"
    assert config.DESCOPE_WEB_COMPONENT_URL == (
        "https://unpkg.com/@descope/web-component@4.3.2/dist/index.js"
    )
    assert config.ADMIN_ROLES == ["admin", "mlflow-admin"]
    assert config.DEFAULT_PERMISSION == "READ"
    assert config.USERNAME_CLAIM == "sub"
    assert config.SESSION_COOKIE_NAME == "DS"
    assert config.REFRESH_COOKIE_NAME == "DSR"
    assert config.COOKIE_SECURE == "auto"
    assert config.JWT_LEEWAY_SECONDS == 5
    assert config.HTTP_TIMEOUT_SECONDS == 5.0
    assert config.DESCOPE_TENANT is None
    assert config.DESCOPE_MANAGEMENT_KEY is None


def test_seed_readme_example_works() -> None:
    config = Config(
        DESCOPE_PROJECT_ID="P2XXXXX",
        ADMIN_ROLES=["admin", "superuser", "mlflow-admin"],
        DEFAULT_PERMISSION="EDIT",
    )
    set_config(config)

    assert get_config() is config
    assert config.ADMIN_ROLES == ["admin", "superuser", "mlflow-admin"]


def test_missing_project_id_is_a_value_error_with_the_seed_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^DESCOPE_PROJECT_ID environment variable is required"):
        from_env(tmp_path, {})
    with pytest.raises(ConfigurationError):
        Config()


def test_long_project_id_embeds_the_region() -> None:
    project = "Peuc1" + "x" * 27
    assert Config(DESCOPE_PROJECT_ID=project).DESCOPE_BASE_URL == "https://api.euc1.descope.com"
    explicit = Config(DESCOPE_PROJECT_ID=project, DESCOPE_BASE_URL="http://127.0.0.1:8000/")
    assert explicit.DESCOPE_BASE_URL == "http://127.0.0.1:8000"


def test_environment_is_read_and_parsed(tmp_path: Path) -> None:
    env = {
        "DESCOPE_PROJECT_ID": PROJECT,
        "DESCOPE_ADMIN_ROLES": " owner , ,root ",
        "DESCOPE_DEFAULT_PERMISSION": "no_permissions",
        "DESCOPE_USERNAME_CLAIM": "email",
        "DESCOPE_TENANT": "T1",
        "DESCOPE_COOKIE_SECURE": "false",
        "DESCOPE_JWT_LEEWAY_SECONDS": "30",
        "DESCOPE_HTTP_TIMEOUT_SECONDS": "2.5",
        "DESCOPE_WEB_COMPONENT_VERSION": "3.54.0",
        "DESCOPE_BASE_URL": "",
        "UNRELATED": "x",
    }
    config = from_env(tmp_path, env)

    assert config.ADMIN_ROLES == ["owner", "root"]
    assert config.DEFAULT_PERMISSION == "NO_PERMISSIONS"
    assert config.USERNAME_CLAIM == "email"
    assert config.DESCOPE_TENANT == "T1"
    assert config.COOKIE_SECURE is False
    assert config.JWT_LEEWAY_SECONDS == 30
    assert config.HTTP_TIMEOUT_SECONDS == 2.5
    assert config.DESCOPE_BASE_URL == "https://api.descope.com"
    assert config.DESCOPE_WEB_COMPONENT_URL.endswith("@3.54.0/dist/index.js")


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = f"DESCOPE_PROJECT_ID={PROJECT}\nDESCOPE_FLOW_ID=from-file\nDESCOPE_TENANT=T9\n"
    config = from_env(tmp_path, {"DESCOPE_FLOW_ID": "from-env"}, dotenv)

    assert config.DESCOPE_PROJECT_ID == PROJECT
    assert config.DESCOPE_FLOW_ID == "from-env"
    assert config.DESCOPE_TENANT == "T9"
    assert "DESCOPE_TENANT" not in os.environ


def test_get_config_reads_the_working_directory_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"DESCOPE_PROJECT_ID={PROJECT}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DESCOPE_PROJECT_ID", raising=False)

    assert get_config().DESCOPE_PROJECT_ID == PROJECT


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DESCOPE_DEFAULT_PERMISSION", "ADMIN", "READ, EDIT, MANAGE, NO_PERMISSIONS"),
        ("DESCOPE_COOKIE_SECURE", "sometimes", "auto, true or false"),
        ("DESCOPE_JWT_LEEWAY_SECONDS", "five", "from 0 to 3600"),
        ("DESCOPE_JWT_LEEWAY_SECONDS", "-1", "from 0 to 3600"),
        ("DESCOPE_HTTP_TIMEOUT_SECONDS", "0", "above 0 and at most 600"),
        ("DESCOPE_HTTP_TIMEOUT_SECONDS", "nan", "above 0 and at most 600"),
        ("DESCOPE_BASE_URL", "api.descope.com", "http:// or https://"),
        ("DESCOPE_WEB_COMPONENT_URL", "javascript:alert(1)", "http:// or https://"),
        ("DESCOPE_WEB_COMPONENT_VERSION", "4.3.2<script>", "version"),
        ("DESCOPE_PROJECT_ID", "P2 bad/id", "letters, digits"),
        ("DESCOPE_REDIRECT_URL", "javascript:alert(1)", "path starting with /"),
        ("DESCOPE_REDIRECT_URL", "//evil.example/", "path starting with /"),
        ("DESCOPE_REDIRECT_URL", "/\\evil.example/", "path starting with /"),
        ("DESCOPE_REDIRECT_URL", "experiments", "path starting with /"),
        ("DESCOPE_REDIRECT_URL", '/"><script>', "path starting with /"),
        ("DESCOPE_ADMIN_ROLES", " , ", "at least one role"),
    ],
)
def test_invalid_values_name_the_variable_and_the_allowed_values(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    env = {"DESCOPE_PROJECT_ID": PROJECT, variable: value}
    with pytest.raises(ConfigurationError) as raised:
        from_env(tmp_path, env)

    assert str(raised.value).startswith(variable)
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    "redirect", ["/", "/#/experiments", "/mlflow/", "https://mlflow.example.com/#/models"]
)
def test_redirect_url_takes_a_path_or_an_http_url(redirect: str) -> None:
    config = Config(DESCOPE_PROJECT_ID=PROJECT, DESCOPE_REDIRECT_URL=redirect)

    assert redirect == config.DESCOPE_REDIRECT_URL


@pytest.mark.parametrize("roles", [None, 7, b"admin", [1, 2]])
def test_admin_roles_of_the_wrong_type_is_a_configuration_error(roles: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Config(DESCOPE_PROJECT_ID=PROJECT, ADMIN_ROLES=roles)  # type: ignore[arg-type]

    assert str(raised.value).startswith("DESCOPE_ADMIN_ROLES (Config.ADMIN_ROLES)")


def test_admin_roles_from_python_may_be_empty_or_a_string() -> None:
    assert Config(DESCOPE_PROJECT_ID=PROJECT, ADMIN_ROLES=[]).ADMIN_ROLES == []
    config = Config(DESCOPE_PROJECT_ID=PROJECT, ADMIN_ROLES="ops, admin,")  # type: ignore[arg-type]
    assert config.ADMIN_ROLES == ["ops", "admin"]


def test_management_key_never_appears_in_repr_or_errors(tmp_path: Path) -> None:
    secret = "K2supersecretmanagementkey"
    config = Config(DESCOPE_PROJECT_ID=PROJECT, DESCOPE_MANAGEMENT_KEY=secret)

    assert secret == config.DESCOPE_MANAGEMENT_KEY
    assert secret not in repr(config)
    assert "[redacted]" in repr(config)
    env = {
        "DESCOPE_PROJECT_ID": PROJECT,
        "DESCOPE_MANAGEMENT_KEY": secret,
        "DESCOPE_DEFAULT_PERMISSION": "x",
    }
    with pytest.raises(ConfigurationError) as raised:
        from_env(tmp_path, env)
    assert secret not in str(raised.value)


def test_set_config_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        set_config({"DESCOPE_PROJECT_ID": PROJECT})  # type: ignore[arg-type]


def test_core_is_built_from_the_config() -> None:
    config = Config(DESCOPE_PROJECT_ID=PROJECT, DESCOPE_BASE_URL="http://127.0.0.1:9")
    core = config.build_core()

    assert core.project_id == PROJECT
    assert core.base_url == "http://127.0.0.1:9"
