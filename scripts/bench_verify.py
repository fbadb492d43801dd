"""Verification speed, all in one run on the same token and machine:

1. `openssl speed rsa2048`: this machine's RSA-2048 verify rate (the floor);
2. the criterion bench `benches/verify.rs`: the Rust signature check, a full
   cold verification and a verified-session cache hit;
3. Python: `get_descope_client().validate_session` (the Descope-SDK-shaped
   dict), `Core.validate_session` (the plugin's path, a `Session`) cached and
   uncached, against the official `descope` SDK's `validate_session`.

4. the gate's per-request cost (`Gate.evaluate` on an authenticated
   `GET /api/2.0/mlflow/experiments/get` with a cached Bearer session, the
   route table of MLflow 3.17.2 from benches/fixtures/mlflow-routes.tsv),
   and the pieces it is made of.

Usage: python scripts/bench_verify.py [--skip-cargo] [--seconds N] [--gate-only]
(run from the repository root, in the venv where the package is installed).
The key set is served by a throw-away loopback server this script starts
and stops; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "tests" / "keys"
PROJECT = "P2BenchProject0001"
CRITERION = ("rsa2048_signature_only", "verify_cold", "verify_cached")


def openssl_verify_us(seconds: int) -> float:
    """Microseconds per RSA-2048 verify, from `openssl speed`."""
    output = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), "rsa2048"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in output.splitlines():
        if line.startswith("rsa 2048 bits") or line.startswith("rsa  2048 bits"):
            verifies_per_second = float(line.split()[-1])
            return 1e6 / verifies_per_second
    raise RuntimeError("openssl speed printed no rsa 2048 line")


def criterion_us(skip_cargo: bool, seconds: int) -> dict[str, float]:
    """Mean microseconds per iteration of each criterion bench."""
    if not skip_cargo:
        subprocess.run(
            [
                "cargo",
                "bench",
                "--bench",
                "verify",
                "--",
                "--warm-up-time",
                "1",
                "--measurement-time",
                str(seconds),
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    results = {}
    for name in CRITERION:
        estimates = ROOT / "target" / "criterion" / name / "new" / "estimates.json"
        results[name] = json.loads(estimates.read_text())["mean"]["point_estimate"] / 1000
    return results


@contextmanager
def key_set_server() -> Iterator[str]:
    """Serves tests/keys/jwks.json at /v2/keys/<project> on 127.0.0.1."""
    body = (KEYS / "jwks.json").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def token() -> str:
    """The same claims as benches/verify.rs, signed with the RSA test key."""
    import jwt

    now = int(time.time())
    claims = {
        "sub": "U2benchuser0000000000000000",
        "iss": f"https://api.descope.com/{PROJECT}",
        "iat": now,
        "exp": now + 3600,
        "drn": "DS",
        "amr": ["email"],
        "roles": ["mlflow-editor"],
        "permissions": ["mlflow:read"],
        "tenants": {"T1": {"roles": ["mlflow-viewer"], "permissions": []}},
        "email": "bench@example.com",
        "name": "Bench User",
    }
    key = (KEYS / "rsa2048.pem").read_bytes()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-rsa-1"})


def per_call_us(call: Callable[[], object], seconds: float) -> float:
    """Best-of-five microseconds per call, each round about seconds/5 long."""
    timer = timeit.Timer(call)
    loops, _ = timer.autorange()
    rounds = timer.repeat(repeat=5, number=max(1, int(loops * seconds / 5 / 0.2)))
    return min(rounds) / max(1, int(loops * seconds / 5 / 0.2)) * 1e6


def python_us(seconds: float) -> dict[str, float]:
    from descope import DescopeClient as SdkClient

    from mlflow_descope_auth import Config, get_descope_client, set_config
    from mlflow_descope_auth._core import Core

    jwt_token = token()
    jwks = json.loads((KEYS / "jwks.json").read_text())
    with key_set_server() as base_url:
        set_config(Config(DESCOPE_PROJECT_ID=PROJECT, DESCOPE_BASE_URL=base_url))
        ours = get_descope_client()
        uncached = Core(PROJECT, base_url=base_url, session_cache_entries=0)
        sdk = SdkClient(PROJECT, public_key=jwks["keys"][0], base_url=base_url)
        for warm in (ours.validate_session, ours.core.validate_session, uncached.validate_session):
            warm(jwt_token)
        same_user = sdk.validate_session(jwt_token)["userId"]
        assert same_user == ours.validate_session(jwt_token)["userId"]
        calls = {
            "ours_client_cached": lambda: ours.validate_session(jwt_token),
            "ours_core_cached": lambda: ours.core.validate_session(jwt_token),
            "ours_core_uncached": lambda: uncached.validate_session(jwt_token),
            "sdk": lambda: sdk.validate_session(jwt_token),
        }
        return {name: per_call_us(call, seconds) for name, call in calls.items()}


def route_table() -> Any:
    """MLflow 3.17.2's route table, from the fixture the Rust route bench uses."""
    from mlflow_descope_auth._core import RouteTable

    tiers: dict[str, list[tuple[str, str, str, str]]] = {"first-match": [], "most-specific": []}
    fixture = ROOT / "benches" / "fixtures" / "mlflow-routes.tsv"
    for line in fixture.read_text().splitlines():
        if line and not line.startswith("#"):
            tier, method, pattern, level, name = line.split("\t")
            tiers[tier].append((method, pattern, level, name))
    return RouteTable(tiers["most-specific"], first_match=tiers["first-match"])


def gate_us(seconds: float) -> dict[str, float]:
    """Per-request cost of the gate on an allowed, cached, Bearer-authenticated read."""
    from mlflow_descope_auth._core import Core
    from mlflow_descope_auth.gate import Gate, GateSettings, RequestInfo

    jwt_token = token()
    method, path = "GET", "/api/2.0/mlflow/experiments/get"
    headers = [
        ("Host", "127.0.0.1:5000"),
        ("User-Agent", "python-requests/2.32"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "keep-alive"),
        ("Authorization", f"Bearer {jwt_token}"),
    ]
    with key_set_server() as base_url:
        core = Core(PROJECT, base_url=base_url)
        table = route_table()
        core.set_routes(table)
        gate = Gate(core, table, GateSettings())

        def build() -> RequestInfo:
            return RequestInfo.build(
                method=method,
                path=path,
                query_string="experiment_id=1",
                headers=headers,
                scheme="http",
            )

        info = build()
        outcome = gate.evaluate(info)
        if not outcome.allowed or outcome.identity is None:
            raise RuntimeError(f"the gate refused the benchmark request: {outcome}")
        session = core.validate_session(jwt_token)
        calls = {
            "gate_build_and_evaluate": lambda: gate.evaluate(build()),
            "gate_evaluate": lambda: gate.evaluate(info),
            "request_info_build": build,
            "route_lookup": lambda: table.lookup(method, path),
            "core_authorize": lambda: core.authorize(session, method, path),
            "session_meets": lambda: session.meets("READ"),
            "core_validate_session_cached": lambda: core.validate_session(jwt_token),
        }
        return {name: per_call_us(call, seconds) for name, call in calls.items()}


def print_gate(figures: dict[str, float]) -> None:
    width = max(len(name) for name in figures)
    for name, micros in figures.items():
        print(f"{name:<{width}}  {micros:8.3f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cargo", action="store_true", help="reuse the last criterion run")
    parser.add_argument("--seconds", type=int, default=3, help="measuring time per figure")
    parser.add_argument("--gate-only", action="store_true", help="only the gate's figures")
    options = parser.parse_args()
    if options.gate_only:
        print_gate(gate_us(options.seconds))
        return 0

    openssl = openssl_verify_us(options.seconds)
    rust = criterion_us(options.skip_cargo, options.seconds)
    python = python_us(options.seconds)

    rows = [
        ("openssl speed rsa2048: one verify", openssl, ""),
        (
            "Rust: RSA signature only",
            rust["rsa2048_signature_only"],
            f"{rust['rsa2048_signature_only'] / openssl:.2f}x openssl",
        ),
        (
            "Rust: full verify, cache bypassed",
            rust["verify_cold"],
            f"{rust['verify_cold'] / openssl:.2f}x openssl (target <= 2x)",
        ),
        ("Rust: verified-session cache hit", rust["verify_cached"], "target well under 1 us"),
        ("Python: descope SDK validate_session", python["sdk"], ""),
        (
            "Python: our validate_session (SDK-shaped dict)",
            python["ours_client_cached"],
            f"{python['sdk'] / python['ours_client_cached']:.1f}x faster than the SDK",
        ),
        (
            "Python: Core.validate_session, cached",
            python["ours_core_cached"],
            f"{python['sdk'] / python['ours_core_cached']:.1f}x faster than the SDK",
        ),
        (
            "Python: Core.validate_session, cache off",
            python["ours_core_uncached"],
            f"{python['sdk'] / python['ours_core_uncached']:.1f}x faster than the SDK",
        ),
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, micros, note in rows:
        print(f"{name:<{width}}  {micros:10.3f} us  {note}")
    print()
    print_gate(gate_us(options.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
