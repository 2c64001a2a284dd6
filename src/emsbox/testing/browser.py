"""How browser tests and benchmarks start Chromium: Debian's package, through Playwright."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# The closed test network refuses Chromium's background connections; these flags stop them.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
