"""Run the Descope emulator standalone: `python -m mlflow_descope_auth.testing`.

Prints the base URL, the project id and the environment variables that
point the plugin at it, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Optional, TextIO

from mlflow_descope_auth.testing.emulator import DescopeEmulator

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlflow_descope_auth.testing",
        description="A local Descope emulator on loopback, for tests and offline demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--project-id", default=None, help="project id (default: random P2...)")
    parser.add_argument(
        "--demo-users",
        action="store_true",
        help="create viewer, editor, admin and nobody, and a demo access key",
    )
    parser.add_argument(
        "--rotate-refresh-tokens", action="store_true", help="rotate refresh tokens on refresh"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def _announce(emulator: DescopeEmulator, demo_key: Optional[str], out: TextIO) -> None:
    lines = [
        f"Descope emulator listening on {emulator.base_url}",
        f"project id: {emulator.project_id}",
        "",
        *(f"{name}={value}" for name, value in emulator.environment().items()),
    ]
    if demo_key is not None:
        logins = ", ".join(user.login_id for user in emulator.users())
        lines += [
            "",
            f"demo users (pick one on the login page): {logins}",
            # A credential of this throwaway emulator only, printed on purpose for the demo.
            f"demo access key (role mlflow-editor): {demo_key}",
        ]
    lines += ["", "Press Ctrl-C to stop."]
    out.write("\n".join(lines) + "\n")
    out.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        emulator = DescopeEmulator(
            args.project_id,
            host=args.host,
            port=args.port,
            rotate_refresh_tokens=args.rotate_refresh_tokens,
        )
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2

    stop = threading.Event()

    def request_stop(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        emulator.start()
    except OSError as error:
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {error}\n")
        return 1
    try:
        demo_key = None
        if args.demo_users:
            emulator.add_demo_users()
            demo_key = emulator.create_access_key("demo-ci", roles=["mlflow-editor"])
        _announce(emulator, demo_key, sys.stdout)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    sys.stdout.write("Descope emulator stopped.\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
