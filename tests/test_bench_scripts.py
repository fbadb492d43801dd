"""The benchmark scripts still run and report (issue 7); their figures are not checked here.

Each script runs once in a tiny configuration, in its own process group, and
must exit 0 with a well-formed JSON report and no errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def run_script(name: str, *args: str, tmp_path: Path, timeout: float) -> dict[str, Any]:
    """Runs a benchmark script; its report, printed last and also written with `--json`."""
    written = tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS / name), *args, f"--json={written}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        # Whatever the script left behind (it stops its servers itself).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 0, stderr[-4000:]
    report: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    assert json.loads(written.read_text()) == report
    return report


def test_bench_memory_reports_samples_within_the_bounds(tmp_path: Path) -> None:
    report = run_script(
        "bench_memory.py",
        "--tokens=300",
        "--sample-every=100",
        "--small-entries=50",
        "--small-bytes=131072",
        tmp_path=tmp_path,
        timeout=240,
    )
    assert report["tokens"] == 300
    default, small = report["configs"]
    for config in (default, small):
        assert config["errors"] == 0
        assert [s["tokens"] for s in config["samples"]] == [0, 100, 200, 300]
        assert config["within_bounds"] is True
        assert all(s["rss_kib"] > 0 for s in config["samples"])
    # 300 tokens fit the default cache; the small one stops at its bound.
    assert default["samples"][-1]["cache_entries"] == 300
    assert 0 < small["samples"][-1]["cache_entries"] <= 50
    assert small["samples"][-1]["cache_bytes"] <= 131072


@pytest.mark.timeout(600)
def test_bench_e2e_reports_every_server_without_errors(tmp_path: Path) -> None:
    client = "wrk" if shutil.which("wrk") else "python"
    report = run_script(
        "bench_e2e.py",
        "--duration=1",
        "--warmup=0",
        "--rounds=1",
        "--workers=1",
        "--connections=2",
        f"--client={client}",
        tmp_path=tmp_path,
        timeout=540,
    )
    assert report["config"]["client"] == client
    servers = report["summary"]["servers"]
    assert set(servers) == {"descope-auth", "plain", "basic-auth"}
    assert report["summary"]["errors"] == 0
    assert all(entry["errors"] == 0 for entry in servers.values())
    # basic-auth hashes the password on every request and may finish none in a second.
    assert servers["descope-auth"]["requests"] > 0
    assert servers["plain"]["requests"] > 0
    assert report["summary"]["ratios"]["rps_descope_over_plain"] > 0


def test_bench_overhead_reports_both_apps_without_errors(tmp_path: Path) -> None:
    report = run_script(
        "bench_overhead.py",
        "--rounds=2",
        "--requests=5",
        tmp_path=tmp_path,
        timeout=300,
    )
    assert report["errors"] == 0
    assert len(report["rounds"]) == 2
    assert set(report["us_per_request_median"]) == {"descope-auth", "plain"}
    assert all(value > 0 for value in report["us_per_request_median"].values())
    assert report["ratio_descope_over_plain_median"] > 0
