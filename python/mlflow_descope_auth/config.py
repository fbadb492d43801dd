"""Configuration: ``Config``, read from the environment (and ``.env``), or
built in Python and installed with ``set_config`` before the app is created.

Environment variables (contract §2; the real environment wins over ``.env``):

==============================  ==========================  ====================
variable                        ``Config`` field            default
==============================  ==========================  ====================
DESCOPE_PROJECT_ID              DESCOPE_PROJECT_ID          required
DESCOPE_BASE_URL                DESCOPE_BASE_URL            derived from the id
DESCOPE_FLOW_ID                 DESCOPE_FLOW_ID             ``sign-up-or-in``
DESCOPE_REDIRECT_URL            DESCOPE_REDIRECT_URL        ``/``
DESCOPE_WEB_COMPONENT_VERSION   DESCOPE_WEB_COMPONENT_...   ``4.3.2``
DESCOPE_WEB_COMPONENT_URL       DESCOPE_WEB_COMPONENT_URL   CDN URL of the version
DESCOPE_ADMIN_ROLES             ADMIN_ROLES                 ``admin,mlflow-admin``
DESCOPE_DEFAULT_PERMISSION      DEFAULT_PERMISSION          ``READ``
DESCOPE_USERNAME_CLAIM          USERNAME_CLAIM              ``sub``
DESCOPE_MANAGEMENT_KEY          DESCOPE_MANAGEMENT_KEY      none
DESCOPE_TENANT                  DESCOPE_TENANT              none
DESCOPE_COOKIE_SECURE           COOKIE_SECURE               ``auto``
DESCOPE_JWT_LEEWAY_SECONDS      JWT_LEEWAY_SECONDS          ``5``
DESCOPE_HTTP_TIMEOUT_SECONDS    HTTP_TIMEOUT_SECONDS        ``5``
MLFLOW_BACKEND_STORE_URI        MLFLOW_BACKEND_STORE_URI    ``sqlite:///mlflow.db``
MLFLOW_ARTIFACT_ROOT            MLFLOW_ARTIFACT_ROOT        ``./mlartifacts``
==============================  ==========================  ====================

Every invalid value raises ``ConfigurationError`` (a ``ValueError``) when the
``Config`` is built, naming the variable and the allowed values. The
management key never appears in a repr or a message.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from mlflow_descope_auth.exceptions import ConfigurationError

if TYPE_CHECKING:
    from mlflow_descope_auth._core import Core

logger = logging.getLogger(__name__)

__all__ = ["Config", "get_config", "reset_config", "set_config"]

LEVELS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
DEFAULT_WEB_COMPONENT_VERSION = "4.3.2"
WEB_COMPONENT_CDN = "https://unpkg.com/@descope/web-component@{version}/dist/index.js"
DEFAULT_BASE_URL = "https://api.descope.com"
REDACTED = "[redacted]"

_PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64}")
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Where a login lands: a path of this site or an http(s) URL. No other scheme
# (javascript:, data:), no protocol-relative //host, no whitespace or quotes.
_REDIRECT = re.compile(r"(https?://[^\s/?#\\\"'<>]+|/)[^\s\"'<>\x00-\x1f\x7f]*")

CookieSecure = Union[bool, str]


def _fail(variable: str, field: str, requirement: str) -> ConfigurationError:
    where = variable if variable == field else f"{variable} (Config.{field})"
    return ConfigurationError(f"{where} {requirement}")


def base_url_for(project_id: str) -> str:
    """Descope's API host for a project, as Descope's SDKs derive it: a project
    id of 32+ characters embeds its region (``Peuc1...`` -> ``api.euc1``)."""
    if len(project_id) >= 32:
        return f"https://api.{project_id[1:5]}.descope.com"
    return DEFAULT_BASE_URL


def _roles(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        roles = [item.strip() for item in value.split(",") if item.strip()]
        if not roles:
            # "," or " , " is a typo, not a wish for no admin role: say so.
            raise _fail(
                "DESCOPE_ADMIN_ROLES",
                "ADMIN_ROLES",
                "must list at least one role name, comma-separated (for example admin)",
            )
        return roles
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise _fail(
            "DESCOPE_ADMIN_ROLES",
            "ADMIN_ROLES",
            "must be a comma-separated string or a list of role names",
        )
    return [item.strip() for item in items if item.strip()]


def _cookie_secure(value: CookieSecure) -> CookieSecure:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise _fail("DESCOPE_COOKIE_SECURE", "COOKIE_SECURE", "must be auto, true or false")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the plugin. Field names follow the original product's."""

    DESCOPE_PROJECT_ID: str = ""
    DESCOPE_FLOW_ID: str = "sign-up-or-in"
    DESCOPE_REDIRECT_URL: str = "/"
    DESCOPE_WEB_COMPONENT_VERSION: str = DEFAULT_WEB_COMPONENT_VERSION
    DESCOPE_WEB_COMPONENT_URL: str | None = None
    DESCOPE_BASE_URL: str | None = None
    DESCOPE_MANAGEMENT_KEY: str | None = None
    DESCOPE_TENANT: str | None = None
    MLFLOW_BACKEND_STORE_URI: str = "sqlite:///mlflow.db"
    MLFLOW_ARTIFACT_ROOT: str = "./mlartifacts"
    ADMIN_ROLES: list[str] = dataclasses.field(default_factory=lambda: ["admin", "mlflow-admin"])
    DEFAULT_PERMISSION: str = "READ"
    USERNAME_CLAIM: str = "sub"
    SESSION_COOKIE_NAME: str = "DS"
    REFRESH_COOKIE_NAME: str = "DSR"
    COOKIE_SECURE: CookieSecure = "auto"
    JWT_LEEWAY_SECONDS: int = 5
    HTTP_TIMEOUT_SECONDS: float = 5.0

    def __post_init__(self) -> None:
        self._check_project()
        self._check_urls()
        self._check_permissions()
        self._check_names()
        self._check_numbers()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_project(self) -> None:
        project_id = (self.DESCOPE_PROJECT_ID or "").strip()
        if not project_id:
            raise ConfigurationError(
                "DESCOPE_PROJECT_ID environment variable is required: set it (or pass "
                "Config(DESCOPE_PROJECT_ID=...)) to your Descope project id"
            )
        if not _PROJECT_ID.fullmatch(project_id):
            raise _fail(
                "DESCOPE_PROJECT_ID",
                "DESCOPE_PROJECT_ID",
                "must be a Descope project id: letters, digits, '-' and '_' only",
            )
        self._set("DESCOPE_PROJECT_ID", project_id)
        tenant = (self.DESCOPE_TENANT or "").strip() or None
        self._set("DESCOPE_TENANT", tenant)
        key = (self.DESCOPE_MANAGEMENT_KEY or "").strip() or None
        self._set("DESCOPE_MANAGEMENT_KEY", key)

    def _check_urls(self) -> None:
        base_url = (self.DESCOPE_BASE_URL or "").strip() or base_url_for(self.DESCOPE_PROJECT_ID)
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base_url):
            raise _fail(
                "DESCOPE_BASE_URL", "DESCOPE_BASE_URL", "must be an http:// or https:// URL"
            )
        self._set("DESCOPE_BASE_URL", base_url.rstrip("/"))

        version = self.DESCOPE_WEB_COMPONENT_VERSION.strip()
        if not _VERSION.fullmatch(version):
            raise _fail(
                "DESCOPE_WEB_COMPONENT_VERSION",
                "DESCOPE_WEB_COMPONENT_VERSION",
                "must be a version such as 4.3.2 (digits, letters, '.', '-', '+')",
            )
        self._set("DESCOPE_WEB_COMPONENT_VERSION", version)
        script = (self.DESCOPE_WEB_COMPONENT_URL or "").strip()
        script = script or WEB_COMPONENT_CDN.format(version=version)
        if not re.fullmatch(r"(https?://|/)[^\s\"'<>]*", script) or script.startswith("//"):
            raise _fail(
                "DESCOPE_WEB_COMPONENT_URL",
                "DESCOPE_WEB_COMPONENT_URL",
                "must be an http:// or https:// URL, or a path starting with /",
            )
        self._set("DESCOPE_WEB_COMPONENT_URL", script)

        redirect = str(self.DESCOPE_REDIRECT_URL or "").strip()
        if not _REDIRECT.fullmatch(redirect) or redirect.startswith(("//", "/\\")):
            raise _fail(
                "DESCOPE_REDIRECT_URL",
                "DESCOPE_REDIRECT_URL",
                "must be a path starting with / (for example /#/experiments) or an "
                "http:// or https:// URL",
            )
        self._set("DESCOPE_REDIRECT_URL", redirect)

    def _check_permissions(self) -> None:
        self._set("ADMIN_ROLES", _roles(self.ADMIN_ROLES))
        level = str(self.DEFAULT_PERMISSION).strip().upper()
        if level not in LEVELS:
            raise _fail(
                "DESCOPE_DEFAULT_PERMISSION",
                "DEFAULT_PERMISSION",
                f"must be one of {', '.join(LEVELS)}",
            )
        self._set("DEFAULT_PERMISSION", level)
        self._set("COOKIE_SECURE", _cookie_secure(self.COOKIE_SECURE))

    def _check_names(self) -> None:
        claim = self.USERNAME_CLAIM.strip()
        if not claim:
            raise _fail(
                "DESCOPE_USERNAME_CLAIM",
                "USERNAME_CLAIM",
                "must name a claim (for example sub or email)",
            )
        self._set("USERNAME_CLAIM", claim)
        flow = self.DESCOPE_FLOW_ID.strip()
        if not flow or _CONTROL.search(flow):
            raise _fail("DESCOPE_FLOW_ID", "DESCOPE_FLOW_ID", "must name a Descope flow")
        self._set("DESCOPE_FLOW_ID", flow)
        for field in ("SESSION_COOKIE_NAME", "REFRESH_COOKIE_NAME"):
            if not _COOKIE_NAME.fullmatch(getattr(self, field)):
                raise ConfigurationError(
                    f"Config.{field} must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
                )

    def _check_numbers(self) -> None:
        leeway = self.JWT_LEEWAY_SECONDS
        if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= 3600:
            raise _fail(
                "DESCOPE_JWT_LEEWAY_SECONDS",
                "JWT_LEEWAY_SECONDS",
                "must be a whole number of seconds from 0 to 3600",
            )
        timeout = self.HTTP_TIMEOUT_SECONDS
        valid = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
        if not valid or not 0 < float(timeout) <= 600:
            raise _fail(
                "DESCOPE_HTTP_TIMEOUT_SECONDS",
                "HTTP_TIMEOUT_SECONDS",
                "must be a number of seconds above 0 and at most 600",
            )
        self._set("HTTP_TIMEOUT_SECONDS", float(timeout))

    def __repr__(self) -> str:
        fields = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "DESCOPE_MANAGEMENT_KEY" and value is not None:
                value = REDACTED
            fields.append(f"{field.name}={value!r}")
        return f"Config({', '.join(fields)})"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None = ".env",
    ) -> Config:
        """Reads the settings from ``environ`` (default ``os.environ``) over a
        ``.env`` file (default ``./.env``, when it exists). Empty values count
        as unset. ``os.environ`` is never modified."""
        values = _dotenv(dotenv_path)
        source = os.environ if environ is None else environ
        values.update({name: value for name, value in source.items() if name in _VARIABLES})
        kwargs: dict[str, Any] = {}
        for variable, (field, parse) in _VARIABLES.items():
            raw = values.get(variable)
            if raw is not None and raw.strip():
                kwargs[field] = parse(variable, field, raw.strip())
        return cls(**kwargs)

    def core_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``_core.Core`` (the project id goes first)."""
        return {
            "base_url": self.DESCOPE_BASE_URL,
            "leeway_seconds": self.JWT_LEEWAY_SECONDS,
            "http_timeout_seconds": self.HTTP_TIMEOUT_SECONDS,
            "admin_roles": list(self.ADMIN_ROLES),
            "default_permission": self.DEFAULT_PERMISSION,
            "username_claim": self.USERNAME_CLAIM,
            "tenant": self.DESCOPE_TENANT,
        }

    def build_core(self) -> Core:
        """A new compiled core for these settings (nothing is fetched yet)."""
        from mlflow_descope_auth._core import Core

        return Core(self.DESCOPE_PROJECT_ID, **self.core_kwargs())


def _text(variable: str, field: str, raw: str) -> str:
    return raw


def _integer(variable: str, field: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _fail(variable, field, "must be a whole number of seconds from 0 to 3600") from None


def _number(variable: str, field: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise _fail(
            variable, field, "must be a number of seconds above 0 and at most 600"
        ) from None


_VARIABLES: dict[str, tuple[str, Any]] = {
    "DESCOPE_PROJECT_ID": ("DESCOPE_PROJECT_ID", _text),
    "DESCOPE_BASE_URL": ("DESCOPE_BASE_URL", _text),
    "DESCOPE_FLOW_ID": ("DESCOPE_FLOW_ID", _text),
    "DESCOPE_REDIRECT_URL": ("DESCOPE_REDIRECT_URL", _text),
    "DESCOPE_WEB_COMPONENT_VERSION": ("DESCOPE_WEB_COMPONENT_VERSION", _text),
    "DESCOPE_WEB_COMPONENT_URL": ("DESCOPE_WEB_COMPONENT_URL", _text),
    "DESCOPE_MANAGEMENT_KEY": ("DESCOPE_MANAGEMENT_KEY", _text),
    "DESCOPE_TENANT": ("DESCOPE_TENANT", _text),
    "MLFLOW_BACKEND_STORE_URI": ("MLFLOW_BACKEND_STORE_URI", _text),
    "MLFLOW_ARTIFACT_ROOT": ("MLFLOW_ARTIFACT_ROOT", _text),
    "DESCOPE_ADMIN_ROLES": ("ADMIN_ROLES", _text),
    "DESCOPE_DEFAULT_PERMISSION": ("DEFAULT_PERMISSION", _text),
    "DESCOPE_USERNAME_CLAIM": ("USERNAME_CLAIM", _text),
    "DESCOPE_COOKIE_SECURE": ("COOKIE_SECURE", _text),
    "DESCOPE_JWT_LEEWAY_SECONDS": ("JWT_LEEWAY_SECONDS", _integer),
    "DESCOPE_HTTP_TIMEOUT_SECONDS": ("HTTP_TIMEOUT_SECONDS", _number),
}


def _dotenv(path: str | os.PathLike[str] | None) -> dict[str, str]:
    if path is None or not Path(path).is_file():
        return {}
    from dotenv import dotenv_values

    values = {
        name: value
        for name, value in dotenv_values(path).items()
        if value is not None and name in _VARIABLES
    }
    logger.debug("read %d setting(s) from %s", len(values), path)
    return values


_lock = threading.Lock()
_config: Config | None = None


def get_config() -> Config:
    """The installed configuration; read from the environment on first use."""
    global _config
    with _lock:
        if _config is None:
            _config = Config.from_env()
        return _config


def set_config(config: Config) -> None:
    """Installs ``config`` for everything created after this call."""
    global _config
    if not isinstance(config, Config):
        raise TypeError(f"set_config() needs a Config, not {type(config).__name__}")
    with _lock:
        _config = config


def reset_config() -> None:
    """Forgets the installed configuration (the next ``get_config`` reads the
    environment again). Meant for tests."""
    global _config
    with _lock:
        _config = None
