"""Headless Chromium for the browser tests: Debian's `chromium`, never a download.

The flags keep Chromium from calling home (updates, sync, metrics, safe
browsing): the tests talk to loopback servers only.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
# Outside CI a machine without Chromium skips the browser tests; in CI
# (`CI=true`) they run and fail, so a missing install step cannot hide.
MISSING = CHROMIUM is None and os.environ.get("CI", "").lower() != "true"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-quic",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
]


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
