"""`scripts/demo.sh`, the README's demo command, run as a user runs it.

The script sets up .venv (already done wherever the test suite runs, so it
is quick), starts the emulator and `mlflow server`, prints where to go, and
on Ctrl-C stops everything it started. This test holds it to each of those.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from e2e_servers import BROWSER_ACCEPT, free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo.sh"
# Generous: without a prepared .venv the script first builds the wheel.
READY_TIMEOUT = 600.0
URL_LINE = re.compile(r"Open (http://127\.0\.0\.1:(\d+)/) in a browser")
EMULATOR_LINE = re.compile(r"local emulator at http://127\.0\.0\.1:(\d+)\)")
EXPORT_LINE = re.compile(
    r"export MLFLOW_TRACKING_URI=(\S+) MLFLOW_TRACKING_TOKEN=(\S+)$", re.MULTILINE
)
SESSION_CURL = re.compile(
    r"curl -s -X POST -H 'Authorization: Bearer (\S+)' \\\n\s+"
    r"-d '(\{.*\})' (http://127\.0\.0\.1:\d+/emulator/flow/\S+/login)$",
    re.MULTILINE,
)


@dataclass
class Demo:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.output())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"demo.sh never printed {pattern.pattern!r}:\n{self.output()}")


def _read_into(stream: Iterator[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _restore_sigint() -> None:
    # A shell cannot trap a signal that was ignored when it started (as it is
    # for background jobs); give the script the SIGINT a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    env = dict(os.environ, DEMO_PORT=str(free_port()), TMPDIR=str(tmp_path))
    # The caller's own settings must not leak into the demo.
    env.update(DESCOPE_PROJECT_ID="P2NotTheDemo", MLFLOW_STATIC_PREFIX="/not-the-demo")
    process = subprocess.Popen(
        ["bash", str(DEMO)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_restore_sigint,
    )
    running = Demo(process)
    assert process.stdout is not None
    threading.Thread(target=_read_into, args=(process.stdout, running.lines), daemon=True).start()
    try:
        yield running
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, session id, start time) of a live process, read from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[3]), fields[19]


def _processes() -> dict[int, tuple[int, int, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def _descendants(root: int) -> dict[int, tuple[int, int, str]]:
    table = _processes()
    family = {root}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _sid, _start) in table.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    family.discard(root)
    return {pid: table[pid] for pid in family}


def _port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (connections in TIME_WAIT
    do not count, as for any server that sets SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(900)
def test_demo_serves_the_login_and_the_api_then_ctrl_c_stops_everything(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_line = demo.wait_for(URL_LINE, READY_TIMEOUT)
    base_url, port = url_line.group(1).rstrip("/"), int(url_line.group(2))
    emulator_port = int(demo.wait_for(EMULATOR_LINE, 5).group(1))
    tracking_uri, token = demo.wait_for(EXPORT_LINE, 5).groups()
    assert tracking_uri == base_url

    assert requests.get(f"{base_url}/health", timeout=10).status_code == 200
    page = requests.get(
        f"{base_url}/", headers={"Accept": BROWSER_ACCEPT}, timeout=30, allow_redirects=False
    )
    assert page.status_code == 302
    assert page.headers["Location"] == "/auth/login?next=%2F"
    login = requests.get(f"{base_url}/auth/login", timeout=30)
    assert login.status_code == 200
    assert login.headers["Content-Type"].startswith("text/html")
    assert "<descope-wc" in login.text

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    with pytest.raises(MlflowException, match=r"401|UNAUTHENTICATED"):
        MlflowClient(tracking_uri=tracking_uri).search_experiments()
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    names = [e.name for e in MlflowClient(tracking_uri=tracking_uri).search_experiments()]
    assert "Default" in names

    # The printed curl line gives a viewer's session JWT: it reads, it cannot create.
    project, body, flow_url = demo.wait_for(SESSION_CURL, 5).groups()
    tokens = requests.post(
        flow_url, data=body, headers={"Authorization": f"Bearer {project}"}, timeout=30
    )
    assert tokens.status_code == 200, tokens.text
    viewer = {"Authorization": f"Bearer {tokens.json()['sessionJwt']}"}
    search = requests.get(
        f"{base_url}/api/2.0/mlflow/experiments/search?max_results=1", headers=viewer, timeout=30
    )
    assert search.status_code == 200, search.text
    create = requests.post(
        f"{base_url}/api/2.0/mlflow/experiments/create",
        json={"name": "viewer-tries"},
        headers=viewer,
        timeout=30,
    )
    assert create.status_code == 403, create.text

    children = _descendants(demo.process.pid)
    sessions = {sid for _parent, sid, _start in children.values()} | {demo.process.pid}
    assert any("mlflow" in Path(f"/proc/{pid}/cmdline").read_text() for pid in children)

    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=60) == 0, demo.output()

    left = {
        pid: stat
        for pid, stat in _processes().items()
        if stat[1] in sessions or (pid in children and children[pid][2] == stat[2])
    }
    assert left == {}, demo.output()
    assert _port_is_free(port)
    assert _port_is_free(emulator_port)
    assert list(tmp_path.glob("mlflow-descope-demo.*")) == []
    assert "demo: stopped" in demo.output()
