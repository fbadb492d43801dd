"""Bad configuration stops `mlflow server` once, before any worker serves (contract §1, §2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from e2e_servers import SERVER_MODES, descope_env, free_port, server_command, stop_process_group
from mlflow_descope_auth.testing import DescopeEmulator


def run_until_exit(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        stop_process_group(process)
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize("mode", SERVER_MODES)
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"DESCOPE_PROJECT_ID": ""},
            "ValueError: DESCOPE_PROJECT_ID environment variable is required",
        ),
        ({"DESCOPE_DEFAULT_PERMISSION": "ADMIN"}, "DESCOPE_DEFAULT_PERMISSION"),
    ],
)
def test_bad_configuration_stops_the_server_before_it_serves(
    tmp_path: Path, mode: str, overrides: dict[str, str], message: str
) -> None:
    with DescopeEmulator(project_id="P2PluginStartup001") as emu:
        env = descope_env(emu, **overrides)
    port = free_port()
    command = server_command(port, tmp_path, mode=mode, workers=1, static_prefix="")
    returncode, output = run_until_exit(command, env, tmp_path)

    assert returncode != 0
    assert message in output
    assert "Traceback" not in output
    assert output.count("ValueError:") == 1
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
