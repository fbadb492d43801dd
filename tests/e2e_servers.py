"""Starting and stopping real MLflow servers for the end-to-end tests.

Servers are real `mlflow server --app-name descope-auth` processes on
127.0.0.1 with a free port, each in its own process group so that stopping
one stops everything it spawned. Descope is the local emulator
(`mlflow_descope_auth.testing`), started by the tests themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

MLFLOW = Path(sys.executable).with_name("mlflow")
SERVER_MODES = ("uvicorn", "gunicorn")
START_TIMEOUT = 120.0
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env() -> dict[str, str]:
    """The caller's environment without its DESCOPE_*/MLFLOW_* settings, job
    execution off (it starts worker processes no test needs), output unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESCOPE_", "MLFLOW_"))}
    env.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", PYTHONUNBUFFERED="1")
    return env


def descope_env(emulator: Any, **overrides: str) -> dict[str, str]:
    """The environment of a server that trusts `emulator`, without the caller's DESCOPE_*."""
    env = server_env()
    env.update(
        DESCOPE_PROJECT_ID=emulator.project_id,
        DESCOPE_BASE_URL=emulator.base_url,
        DESCOPE_WEB_COMPONENT_URL=emulator.web_component_url,
        DESCOPE_HTTP_TIMEOUT_SECONDS="3",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def server_command(
    port: int,
    workdir: Path,
    *,
    mode: str,
    workers: int,
    static_prefix: str = "",
    sgi_opts: str = "",
    app_name: str | None = "descope-auth",
) -> list[str]:
    """``mlflow server`` on loopback with its own store; no ``--app-name`` when None."""
    command = [str(MLFLOW), "server"]
    if app_name is not None:
        command += ["--app-name", app_name]
    command += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{workdir}/mlflow.db",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--workers",
        str(workers),
    ]
    if mode == "gunicorn":
        command += ["--gunicorn-opts", f"--timeout 120 --graceful-timeout 5 {sgi_opts}".strip()]
    elif sgi_opts:
        command += ["--uvicorn-opts", sgi_opts]
    if static_prefix:
        command += ["--static-prefix", static_prefix]
    return command


@dataclass
class RunningServer:
    """One `mlflow server` process group and where to reach it."""

    mode: str
    base_url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{self.prefix}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group (the CLI, its workers, anything they spawned); SIGKILL stragglers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    # Workers may outlive the CLI process that led the group; sweep the group.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def start_server(
    workdir: Path,
    env: dict[str, str],
    *,
    mode: str = "uvicorn",
    workers: int = 1,
    static_prefix: str = "",
    sgi_opts: str = "",
    app_name: str | None = "descope-auth",
    wait: bool = True,
) -> RunningServer:
    """`sgi_opts` go to gunicorn or uvicorn (`--gunicorn-opts`/`--uvicorn-opts`);
    `app_name` None starts MLflow without `--app-name`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(
                port,
                workdir,
                mode=mode,
                workers=workers,
                static_prefix=static_prefix,
                sgi_opts=sgi_opts,
                app_name=app_name,
            ),
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(
        mode=mode,
        base_url=f"http://127.0.0.1:{port}",
        prefix=static_prefix.rstrip("/"),
        process=process,
        log_path=log_path,
        workdir=workdir,
    )
    if wait:
        try:
            wait_healthy(server)
        except BaseException:
            server.stop()
            raise
    return server


def wait_healthy(server: RunningServer, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited early:\n{server.log()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url("/health"), timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server did not become healthy:\n{server.log()}")


@dataclass
class ServerPool:
    """Starts servers on demand and stops all of them at teardown."""

    root: Path
    servers: list[RunningServer] = field(default_factory=list)

    def start(self, env: dict[str, str], **options: Any) -> RunningServer:
        workdir = self.root / f"server{len(self.servers)}"
        server = start_server(workdir, env, **options)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()


def set_cookies(response: requests.Response) -> list[str]:
    """Every `Set-Cookie` header of a response, unjoined."""
    return list(response.raw.headers.getlist("Set-Cookie"))


def cookie_attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, {attribute lower-case: value}) of one `Set-Cookie` header."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.lower()] = val
    return name, value, attributes
