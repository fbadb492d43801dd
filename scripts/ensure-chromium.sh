#!/usr/bin/env bash
# Makes sure Debian's Chromium is there for the browser tests (Playwright drives
# it; browser downloads are impossible here). Installs it with apt-get when
# running as root; otherwise says how, and the browser tests skip (in CI they
# fail instead, see tests/browser.py).
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
    echo "ensure-chromium: no chromium; install it (apt-get install chromium) or set" \
        "CHROMIUM_PATH, else the browser tests are skipped"
fi
