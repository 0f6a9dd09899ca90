"""The headless browser the dashboard's test and bench drive: Debian's chromium, never a downloaded one."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers run it as root), and nothing reaching out: no QUIC, updates, sync or background fetches.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_missing() -> str | None:
    """Why no browser can be driven here, or None when one can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (`make test` installs Debian's chromium when run as root with apt)"
    try:
        import playwright  # noqa: F401 - a dev dependency
    except ImportError:
        return "playwright (a dev dependency: pip install -e '.[dev]') is not installed"
    return None
