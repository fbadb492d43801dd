"""The Descope emulator binds only loopback, stops without leaks, and runs standalone."""

from __future__ import annotations

import importlib.metadata
import ipaddress
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from mlflow_descope_auth.testing import DescopeEmulator

# Hosts the emulator must refuse to bind.
NOT_LOOPBACK = [
    "0.0.0.0",  # noqa: S104 -- asserted to be refused, never bound
    "::",
    "192.168.1.10",
    "10.0.0.1",
    "example.com",
    "",
    "::ffff:127.0.0.1",
]


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_non_loopback_hosts_are_refused(host):
    with pytest.raises(ValueError, match="loopback"):
        DescopeEmulator(host=host)


def test_default_binds_127_0_0_1_on_a_free_port():
    with DescopeEmulator() as emu:
        host, port = emu.bound_address

        assert host == "127.0.0.1"
        assert port == emu.port > 0
        assert emu.base_url == f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2"])
def test_other_loopback_names_bind_loopback(host):
    with DescopeEmulator(host=host) as emu:
        bound_host, _ = emu.bound_address
        assert ipaddress.ip_address(bound_host).is_loopback
        assert requests.get(emu.base_url + "/emulator/health", timeout=10).ok


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_ipv6_loopback_binds_and_serves():
    with DescopeEmulator(host="::1") as emu:
        assert emu.bound_address[0] == "::1"
        assert emu.base_url.startswith("http://[::1]:")
        assert requests.get(emu.base_url + "/emulator/health", timeout=10).ok


def test_twenty_start_stop_cycles_leak_no_threads_or_ports():
    threads_before = set(threading.enumerate())

    for _ in range(20):
        emu = DescopeEmulator().start()
        emu.create_user("x")
        port = emu.port
        # A keep-alive connection left open must not keep stop() waiting.
        idle = requests.Session()
        assert idle.get(emu.base_url + "/emulator/health", timeout=10).ok
        emu.stop()
        assert set(threading.enumerate()) == threads_before
        idle.close()

        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=2),
        ):
            pass
        with socket.socket() as rebind:
            rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            rebind.bind(("127.0.0.1", port))

    assert set(threading.enumerate()) == threads_before


def test_stop_is_idempotent_and_a_stopped_emulator_cannot_restart():
    emu = DescopeEmulator().start()
    emu.stop()
    emu.stop()

    assert not emu.running
    with pytest.raises(RuntimeError):
        emu.start()


def test_base_url_before_start_is_an_error():
    with pytest.raises(RuntimeError):
        _ = DescopeEmulator().base_url


# ---- pytest plugin -------------------------------------------------------------


def test_plugin_is_registered_as_a_pytest11_entry_point():
    entry_points = importlib.metadata.entry_points(group="pytest11")

    plugin = {entry.name: entry.value for entry in entry_points}
    assert plugin["mlflow_descope_auth"] == "mlflow_descope_auth.testing.pytest_plugin"


def test_plugin_imports_without_the_testing_extra():
    code = (
        "import sys\n"
        "sys.modules['cryptography'] = None\n"
        "sys.modules['jwt'] = None\n"
        "import mlflow_descope_auth.testing.pytest_plugin\n"
        "import mlflow_descope_auth.testing\n"
        "assert 'mlflow_descope_auth.testing.emulator' not in sys.modules\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_function_fixture_gives_a_running_emulator(descope_emulator):
    assert descope_emulator.running
    assert requests.get(descope_emulator.base_url + "/emulator/health", timeout=10).ok


@pytest.mark.descope_emulator(project_id="P2MarkerProject", issuer_style="project")
def test_function_fixture_takes_options_from_the_marker(descope_emulator):
    assert descope_emulator.project_id == "P2MarkerProject"
    assert descope_emulator.issuer == "P2MarkerProject"


def test_session_fixture_gives_a_running_emulator(descope_emulator_session):
    assert descope_emulator_session.running


# ---- command line ------------------------------------------------------------


def _start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlflow_descope_auth.testing", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 30) -> list[str]:
    """Lines of the process's stdout up to the one containing `marker`."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"no {marker!r} in output: {seen}")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_its_address_serves_and_stops_on_signal(stop_signal):
    process = _start_cli("--demo-users", "--project-id", "P2CliProject")
    try:
        lines = _read_until(process, "Press Ctrl-C")
        settings = dict(line.split("=", 1) for line in lines if line.startswith("DESCOPE_"))
        base_url = settings["DESCOPE_BASE_URL"]

        assert settings["DESCOPE_PROJECT_ID"] == "P2CliProject"
        assert base_url.startswith("http://127.0.0.1:")
        assert any("viewer, editor, admin, nobody" in line for line in lines)
        key_line = next(line for line in lines if "demo access key" in line)
        key = key_line.rsplit(" ", 1)[1]
        exchanged = requests.post(
            base_url + "/v1/auth/accesskey/exchange",
            json={},
            headers={"Authorization": f"Bearer P2CliProject:{key}"},
            timeout=10,
        )
        assert exchanged.status_code == 200

        os.kill(process.pid, stop_signal)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with pytest.raises(requests.ConnectionError):
        requests.get(base_url + "/emulator/health", timeout=2)


def test_cli_refuses_a_non_loopback_host():
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_descope_auth.testing", "--host", NOT_LOOPBACK[0]],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "loopback" in result.stderr
