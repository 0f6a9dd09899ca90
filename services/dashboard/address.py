"""Where the running dashboard says it listens: <data dir>/dashboard.json, read by `slipway up` and tests."""

import json
import os
from pathlib import Path

HOST = "127.0.0.1"  # loopback only: reach it from elsewhere through a reverse proxy that terminates TLS
ADDRESS_FILE = "dashboard.json"


def address_file(data_dir: Path) -> Path:
    return data_dir / ADDRESS_FILE


def write_address(data_dir: Path, port: int) -> str:
    url = f"http://{HOST}:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    address_file(data_dir).write_text(json.dumps({"url": url, "port": port, "pid": os.getpid()}))
    return url


def read_address(data_dir: Path) -> str | None:
    try:
        url = json.loads(address_file(data_dir).read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if isinstance(url, str) else None


def remove_address(data_dir: Path) -> None:
    address_file(data_dir).unlink(missing_ok=True)
