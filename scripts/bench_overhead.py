"""What the plugin adds to one request, in-process, without sockets or workers.

Two child processes each build MLflow's FastAPI app the way `mlflow server`
does under uvicorn (one through `mlflow_descope_auth.app.create_app`, one
plain), on their own SQLite store, and create one experiment. The parent then
asks them in turn (descope, plain, descope, ...) to send N
`GET /api/2.0/mlflow/experiments/get` through Starlette's `TestClient` (the
descope one with a READ user's session as Bearer) and report the time taken;
every response must be 200. Alternating short rounds lets a noisy, shared
machine weigh on both alike; the report gives the median per-request time of
each and the median of the round-by-round ratios.

This complements `bench_e2e.py` (real servers, real sockets): there, the
difference drowns in the load of a shared machine; here it is a few
microseconds against a few milliseconds.

Usage: python scripts/bench_overhead.py [--rounds 10] [--requests 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXPERIMENT_PATH = "/api/2.0/mlflow/experiments/get"
KINDS = ("descope-auth", "plain")


def child(kind: str) -> None:
    """Build the app, then serve `<count>` commands from stdin with timings on stdout."""
    from starlette.testclient import TestClient

    if kind == "descope-auth":
        from mlflow_descope_auth.app import create_app

        app = create_app()
    else:
        from mlflow.server import app as flask_app
        from mlflow.server.fastapi_app import create_fastapi_app

        app = create_fastapi_app(flask_app)
    read_auth = os.environ.pop("BENCH_READ_AUTHORIZATION", "")
    edit_auth = os.environ.pop("BENCH_EDIT_AUTHORIZATION", "")
    with TestClient(app, base_url="http://127.0.0.1:5000") as client:
        created = client.post(
            "/api/2.0/mlflow/experiments/create",
            json={"name": "bench"},
            headers={"Authorization": edit_auth} if edit_auth else {},
        )
        created.raise_for_status()
        url = f"{EXPERIMENT_PATH}?experiment_id={created.json()['experiment_id']}"
        headers = {"Authorization": read_auth} if read_auth else {}
        print("ready", flush=True)
        for line in sys.stdin:
            count = int(line)
            non200 = 0
            started = time.perf_counter()
            for _ in range(count):
                if client.get(url, headers=headers).status_code != 200:
                    non200 += 1
            elapsed = time.perf_counter() - started
            print(json.dumps({"seconds": elapsed, "non200": non200}), flush=True)


def spawn(kind: str, root: Path, emulator: Any) -> subprocess.Popen[str]:
    workdir = root / kind
    (workdir / "artifacts").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESCOPE_", "MLFLOW_"))}
    env.update(
        _MLFLOW_SERVER_FILE_STORE=f"sqlite:///{workdir}/mlflow.db",
        _MLFLOW_SERVER_SERVE_ARTIFACTS="true",
        _MLFLOW_SERVER_ARTIFACT_DESTINATION=str(workdir / "artifacts"),
        _MLFLOW_SERVER_ARTIFACT_ROOT="mlflow-artifacts:/",
        _MLFLOW_SGI_NAME="uvicorn",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    if kind == "descope-auth":
        editor = emulator.create_user("bench-editor", roles=["mlflow-editor"])
        reader = emulator.create_user("bench-viewer", roles=["mlflow-viewer"])
        env.update(
            DESCOPE_PROJECT_ID=emulator.project_id,
            DESCOPE_BASE_URL=emulator.base_url,
            DESCOPE_WEB_COMPONENT_URL=emulator.web_component_url,
            BENCH_EDIT_AUTHORIZATION="Bearer " + emulator.mint_session(editor.user_id),
            BENCH_READ_AUTHORIZATION="Bearer " + emulator.mint_session(reader.user_id),
        )
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", kind],
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(workdir / "child.log").open("w"),
        text=True,
        start_new_session=True,
    )
    return process


def ask(process: subprocess.Popen[str], line: str) -> str:
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("the child's pipes are closed")
    process.stdin.write(line + "\n")
    process.stdin.flush()
    return process.stdout.readline()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300, help="per round and app")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0

    from mlflow_descope_auth.testing import DescopeEmulator

    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        DescopeEmulator(session_ttl=6 * 3600) as emulator,
    ):
        children = {kind: spawn(kind, Path(tmp), emulator) for kind in KINDS}
        try:
            for kind, process in children.items():
                assert process.stdout is not None
                if process.stdout.readline().strip() != "ready":
                    log = (Path(tmp) / kind / "child.log").read_text()
                    raise RuntimeError(f"{kind} did not start:\n{log}")
            for process in children.values():  # warm-up
                ask(process, str(max(1, args.requests // 5)))
            rounds = []
            for _ in range(args.rounds):
                rounds.append(
                    {
                        kind: json.loads(ask(process, str(args.requests)))
                        for kind, process in children.items()
                    }
                )
        finally:
            for process in children.values():
                if process.stdin is not None:
                    process.stdin.close()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)
                    process.wait()

    per_request = {
        kind: [round_[kind]["seconds"] / args.requests * 1e6 for round_ in rounds] for kind in KINDS
    }
    report = {
        "config": {"rounds": args.rounds, "requests": args.requests},
        "rounds": rounds,
        "us_per_request_median": {kind: statistics.median(v) for kind, v in per_request.items()},
        "ratio_descope_over_plain_median": statistics.median(
            d / p for d, p in zip(per_request["descope-auth"], per_request["plain"])
        ),
        "added_us_median": statistics.median(
            d - p for d, p in zip(per_request["descope-auth"], per_request["plain"])
        ),
        "errors": sum(round_[kind]["non200"] for round_ in rounds for kind in KINDS),
    }
    medians = report["us_per_request_median"]
    print(
        f"per request: descope-auth {medians['descope-auth']:.0f} us, plain "
        f"{medians['plain']:.0f} us; added {report['added_us_median']:.0f} us, ratio "
        f"{report['ratio_descope_over_plain_median']:.3f}; errors {report['errors']}",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
