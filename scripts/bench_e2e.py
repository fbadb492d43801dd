"""End-to-end throughput and latency of an authenticated read (issue #7, benchmark 3).

Starts, all on 127.0.0.1 with free ports and each in its own process group:

- the Descope emulator (in this process, a thread);
- `mlflow server --app-name descope-auth` (the plugin, trusting the emulator);
- plain `mlflow server` (no authentication at all);
- `mlflow server --app-name basic-auth` (MLflow's own; its user database and
  config in a temporary directory, MLflow's default settings otherwise).

All three get the same server mode (uvicorn or gunicorn), worker count and
environment. Each gets one experiment; then a fixed-concurrency load
generator sends `GET /api/2.0/mlflow/experiments/get?experiment_id=<id>` for a
fixed duration with valid credentials: a session JWT as `Authorization:
Bearer` for descope-auth (a READ user), `Authorization: Basic` for basic-auth
(a non-admin user, readable through basic-auth's default READ permission),
nothing for plain. Rounds are interleaved (descope, plain, basic, then plain,
basic, descope, ...: the order rotates each round) so that the noise of a
shared machine falls on all three alike; between two runs the measured
server is left to finish what it still had in flight. The ratios are taken
round by round, and the report gives their median.

The load generator is `wrk` when it is on PATH (Debian: `apt-get install
wrk`), else a Python one (`--client python`: one process per connection, each
with one keep-alive connection, so the client is not one GIL). Every response
must be 200; anything else, and every socket error, is counted as an error.

Usage: python scripts/bench_e2e.py [--server uvicorn|gunicorn] [--workers 2]
       [--duration 10] [--rounds 3] [--connections 16] [--json report.json]

The summary goes to stderr, the JSON report to stdout (and to --json).
Ctrl-C stops everything that was started.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

# The tests' server start, health wait and environment: the benchmark starts and
# stops servers exactly as the end-to-end tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from e2e_servers import RunningServer, server_env
from e2e_servers import start_server as start_e2e_server
from e2e_servers import wait_healthy as wait_e2e_healthy

START_TIMEOUT = 180.0
TARGETS = ("descope-auth", "plain", "basic-auth")
# MLflow's basic-auth with its credential cache on (`--basic-auth-cache-ttl`).
BASIC_CACHED = "basic-auth-cached"
APP_NAMES = {
    "descope-auth": "descope-auth",
    "plain": None,
    "basic-auth": "basic-auth",
    BASIC_CACHED: "basic-auth",
}
EXPERIMENT_PATH = "/api/2.0/mlflow/experiments/get"
ADMIN_USER = "admin"
BENCH_USER = "bench-reader"

WRK_SCRIPT = """
local threads = {}
local count = 0
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
if wrk.headers["Authorization"] == "" then wrk.headers["Authorization"] = nil end
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non200") end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "seconds": %.6f, "non200": %d, "socket_errors": %d, '
    .. '"p50_ms": %.4f, "p99_ms": %.4f, "mean_ms": %.4f}\\n',
    summary.requests, summary.duration / 1e6, bad,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Server:
    """One `mlflow server` under its benchmark name, and what the load sends it."""

    name: str
    running: RunningServer
    authorization: str = field(default="", repr=False)
    experiment_id: str = ""

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.running.process

    def stop(self) -> None:
        self.running.stop()


def start_server(name: str, workdir: Path, env: dict[str, str], args: argparse.Namespace) -> Server:
    """Started, not yet waited for (`wait_healthy`), so that servers boot side by side."""
    running = start_e2e_server(
        workdir,
        env,
        mode=args.server,
        workers=args.workers,
        app_name=APP_NAMES[name],
        wait=False,
    )
    return Server(name=name, running=running)


def wait_healthy(server: Server) -> None:
    try:
        wait_e2e_healthy(server.running, START_TIMEOUT)
    except RuntimeError as exc:
        raise RuntimeError(f"{server.name}: {exc}") from None


def basic_auth_config(path: Path, admin_password: str, cache_ttl: int) -> Path:
    """A basic-auth config of MLflow's defaults, its user database beside it."""
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{path.with_suffix('.db')}\n"
        f"admin_username = {ADMIN_USER}\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {cache_ttl}\n"
    )
    return path


def server_envs(emulator: Any, root: Path, cache_ttl: int) -> tuple[dict[str, dict[str, str]], str]:
    """The environment of each server, and basic-auth's admin password."""
    admin_password = secrets.token_urlsafe(16)
    config = basic_auth_config(root / "basic_auth.ini", admin_password, 0)
    cached = basic_auth_config(root / "basic_auth_cached.ini", admin_password, cache_ttl)
    envs = {
        "descope-auth": dict(
            server_env(),
            DESCOPE_PROJECT_ID=emulator.project_id,
            DESCOPE_BASE_URL=emulator.base_url,
            DESCOPE_WEB_COMPONENT_URL=emulator.web_component_url,
        ),
        "plain": server_env(),
        "basic-auth": dict(
            server_env(),
            MLFLOW_AUTH_CONFIG_PATH=str(config),
            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        ),
        BASIC_CACHED: dict(
            server_env(),
            MLFLOW_AUTH_CONFIG_PATH=str(cached),
            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        ),
    }
    return envs, admin_password


def create_experiment(server: Server, authorization: str) -> str:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(
        f"{server.base_url}/api/2.0/mlflow/experiments/create",
        json={"name": f"bench-{server.name}"},
        headers=headers,
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["experiment_id"])


def prepare(servers: dict[str, Server], emulator: Any, admin_password: str) -> None:
    """One experiment per server and the credentials the load is sent with."""
    editor = emulator.create_user("bench-editor", roles=["mlflow-editor"])
    reader = emulator.create_user("bench-viewer", roles=["mlflow-viewer"])
    ttl = 6 * 3600
    descope = servers["descope-auth"]
    descope.experiment_id = create_experiment(
        descope, "Bearer " + emulator.mint_session(editor.user_id, ttl=ttl)
    )
    descope.authorization = "Bearer " + emulator.mint_session(reader.user_id, ttl=ttl)

    plain = servers["plain"]
    plain.experiment_id = create_experiment(plain, "")

    admin = basic_header(ADMIN_USER, admin_password)
    for name in ("basic-auth", BASIC_CACHED):
        basic = servers.get(name)
        if basic is None:
            continue
        password = secrets.token_urlsafe(16)
        response = requests.post(
            f"{basic.base_url}/api/2.0/mlflow/users/create",
            json={"username": BENCH_USER, "password": password},
            headers={"Authorization": admin},
            timeout=30,
        )
        response.raise_for_status()
        basic.experiment_id = create_experiment(basic, admin)
        basic.authorization = basic_header(BENCH_USER, password)

    for server in servers.values():
        response = requests.get(
            f"{server.base_url}{EXPERIMENT_PATH}",
            params={"experiment_id": server.experiment_id},
            headers={"Authorization": server.authorization} if server.authorization else {},
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{server.name}: the benchmark request got {response.status_code}")


# --- Load generators ---------------------------------------------------------


def run_wrk(
    server: Server, args: argparse.Namespace, seconds: float, script: Path
) -> dict[str, Any]:
    url = f"{server.base_url}{EXPERIMENT_PATH}?experiment_id={server.experiment_id}"
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=30s",
        f"--script={script}",
        url,
    ]
    env = dict(os.environ, BENCH_AUTHORIZATION=server.authorization)
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"wrk printed no result:\n{output}")


def _python_worker(port: int, target: str, authorization: str, seconds: float, queue: Any) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    latencies: list[float] = []
    non200 = socket_errors = 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        sent = time.perf_counter()
        try:
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            socket_errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append(time.perf_counter() - sent)
        if response.status != 200:
            non200 += 1
    connection.close()
    queue.put((latencies, non200, socket_errors, time.perf_counter() - started))


def run_python(server: Server, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    target = f"{EXPERIMENT_PATH}?experiment_id={server.experiment_id}"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(
            target=_python_worker,
            args=(server.port, target, server.authorization, seconds, queue),
        )
        for _ in range(args.connections)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = sorted(latency for result in results for latency in result[0])
    elapsed = max(result[3] for result in results)
    if not latencies:
        latencies = [float("nan")]
    return {
        "requests": sum(len(result[0]) for result in results),
        "seconds": elapsed,
        "non200": sum(result[1] for result in results),
        "socket_errors": sum(result[2] for result in results),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def group_cpu_ticks(pgid: int) -> int:
    """User + system CPU ticks of every live process in a process group, from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The fields after the command name, which is in parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total


def settle(server: Server, timeout: float = 60.0) -> None:
    """Wait until `server` has worked off the requests the load generator left
    in flight (its processes use under 10% of a CPU for half a second): a slow
    server (basic-auth hashing passwords) would otherwise still burn CPU while
    its neighbour is measured."""
    quiet_ticks = os.sysconf("SC_CLK_TCK") * 0.5 * 0.10
    deadline = time.monotonic() + timeout
    before = group_cpu_ticks(server.process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = group_cpu_ticks(server.process.pid)
        if after - before <= quiet_ticks:
            return
        before = after


def measure(
    server: Server, args: argparse.Namespace, seconds: float, script: Path
) -> dict[str, Any]:
    if args.client == "wrk":
        result = run_wrk(server, args, seconds, script)
    else:
        result = run_python(server, args, seconds)
    settle(server)
    result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    result["errors"] = result["non200"] + result["socket_errors"]
    if result["requests"] == 0:
        # No response within the duration: there is no latency to report.
        result.update(p50_ms=None, p99_ms=None, mean_ms=None)
    # How busy the (shared) machine was: the figures mean little when this is
    # far above the number of CPUs.
    result["loadavg_1m"] = os.getloadavg()[0]
    return result


# --- Running it ----------------------------------------------------------------


@contextlib.contextmanager
def running_servers(
    emulator: Any, root: Path, args: argparse.Namespace
) -> Iterator[dict[str, Server]]:
    envs, admin_password = server_envs(emulator, root, args.basic_auth_cache_ttl)
    servers: dict[str, Server] = {}
    try:
        # Started together (they boot in parallel), then waited for.
        for name in targets(args):
            servers[name] = start_server(name, root / name, envs[name], args)
        for server in servers.values():
            wait_healthy(server)
        prepare(servers, emulator, admin_password)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def targets(args: argparse.Namespace) -> list[str]:
    return [*TARGETS, BASIC_CACHED] if args.basic_auth_cache_ttl > 0 else list(TARGETS)


def median_or_none(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    per_server = {}
    for name in rounds[0]:
        runs = [round_[name] for round_ in rounds]
        requests_total = sum(run["requests"] for run in runs)
        per_server[name] = {
            "rps_median": statistics.median(run["rps"] for run in runs),
            "rps_overall": requests_total / sum(run["seconds"] for run in runs),
            "p50_ms_median": median_or_none(run["p50_ms"] for run in runs),
            "p99_ms_median": median_or_none(run["p99_ms"] for run in runs),
            "loadavg_1m_max": max(run["loadavg_1m"] for run in runs),
            "requests": requests_total,
            "errors": sum(run["errors"] for run in runs),
        }

    def ratio(numerator: str, denominator: str, key: str) -> float | None:
        """The median over rounds of one round's ratio; None when a run served nothing."""
        pairs = [(round_[numerator][key], round_[denominator][key]) for round_ in rounds]
        if any(top is None or not bottom for top, bottom in pairs):
            return None
        return statistics.median(top / bottom for top, bottom in pairs)

    ratios = {
        "rps_descope_over_plain": ratio("descope-auth", "plain", "rps"),
        "rps_descope_over_basic": ratio("descope-auth", "basic-auth", "rps"),
        "p50_descope_over_plain": ratio("descope-auth", "plain", "p50_ms"),
        "p99_descope_over_plain": ratio("descope-auth", "plain", "p99_ms"),
    }
    if BASIC_CACHED in per_server:
        ratios["rps_descope_over_basic_cached"] = ratio("descope-auth", BASIC_CACHED, "rps")
    return {
        "servers": per_server,
        "ratios": ratios,
        "errors": sum(entry["errors"] for entry in per_server.values()),
    }


def milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def print_summary(report: dict[str, Any]) -> None:
    out = sys.stderr
    config = report["config"]
    print(
        f"\n{config['server']} x{config['workers']} workers, {config['client']} "
        f"{config['connections']} connections, {config['rounds']} rounds of "
        f"{config['duration']} s per server (interleaved)",
        file=out,
    )
    print(
        f"{'server':<18} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'load':>6}",
        file=out,
    )
    for name, entry in report["summary"]["servers"].items():
        p50, p99 = (
            "n/a" if value is None else f"{value:.2f}"
            for value in (entry["p50_ms_median"], entry["p99_ms_median"])
        )
        print(
            f"{name:<18} {entry['rps_median']:>9.1f} {p50:>8} {p99:>8} {entry['errors']:>7} "
            f"{entry['loadavg_1m_max']:>6.1f}",
            file=out,
        )
    for name, value in report["summary"]["ratios"].items():
        print(f"{name:<32} {'n/a' if value is None else f'{value:.3f}'}", file=out)
    print("targets: rps_descope_over_plain >= 0.95, rps_descope_over_basic > 1", file=out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("uvicorn", "gunicorn"), default="uvicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per server, unrecorded")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
    )
    parser.add_argument(
        "--basic-auth-cache-ttl",
        type=int,
        default=0,
        help="when > 0, also bench basic-auth with its credential cache on (seconds)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, through the `finally` that stops the servers.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    from mlflow_descope_auth.testing import DescopeEmulator

    with (
        tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp,
        DescopeEmulator(session_ttl=6 * 3600) as emulator,
    ):
        root = Path(tmp)
        script = root / "bench.lua"
        script.write_text(WRK_SCRIPT)
        with running_servers(emulator, root, args) as servers:
            if args.warmup > 0:
                for server in servers.values():
                    measure(server, args, args.warmup, script)
            rounds = []
            for number in range(args.rounds):
                results = {}
                # Rotated each round, so that no server is always measured
                # right after the same neighbour.
                names = targets(args)
                shift = number % len(names)
                for name in names[shift:] + names[:shift]:
                    results[name] = measure(servers[name], args, args.duration, script)
                    print(
                        f"round {number + 1} {name:<17} {results[name]['rps']:9.1f} rps "
                        f"p50 {milliseconds(results[name]['p50_ms'])} "
                        f"p99 {milliseconds(results[name]['p99_ms'])} "
                        f"errors {results[name]['errors']} "
                        f"load {results[name]['loadavg_1m']:.1f}",
                        file=sys.stderr,
                    )
                rounds.append(results)
    report = {
        "config": {
            "server": args.server,
            "workers": args.workers,
            "client": args.client,
            "connections": args.connections,
            "threads": args.threads if args.client == "wrk" else None,
            "duration": args.duration,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
        },
        "rounds": rounds,
        "summary": summarise(rounds),
    }
    print_summary(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0 if report["summary"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
