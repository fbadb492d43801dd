"""Writes the route table of the installed MLflow (uvicorn, no static prefix)
to benches/fixtures/, for the Rust benchmark and the Rust tests that check the
real table without Python.

    python scripts/export_route_fixture.py

One line per entry, tab-separated: tier (first-match or most-specific),
method, pattern, level, name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mlflow_descope_auth import route_table as rt


def main() -> None:
    warnings.simplefilter("ignore")
    import mlflow
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import create_fastapi_app

    routes = rt.build_routes(flask_app, create_fastapi_app(flask_app), static_prefix="")
    lines = [
        "\t".join(
            (
                "first-match" if route.source == rt.NATIVE else "most-specific",
                route.method,
                route.pattern,
                route.level,
                route.name,
            )
        )
        for route in routes
    ]
    target = Path(__file__).parent.parent / "benches" / "fixtures" / "mlflow-routes.tsv"
    header = f"# route table of MLflow {mlflow.__version__}; made by {Path(__file__).name}\n"
    target.write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} routes to {target}")


if __name__ == "__main__":
    main()
