"""Build sample-app zipapps with their behaviour baked in.

A release in the demo is a real artifact: one self-contained ``.pyz`` per version, whose sha256 the
artifact verifier can check. Faulty releases are built with a non-zero error rate or extra latency.

    python -m examples.build_sample --version 2.0.0 --error-rate 0.5 --latency-ms 200 --out dist/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import zipapp
from pathlib import Path

APP_SOURCE_DIR = Path(__file__).resolve().parent / "sample_app"
PACKAGE_NAME = "sample_app"
INTERPRETER = "/usr/bin/env python3"
# Fixed file times make the zip bytes (and so the sha256) depend only on the inputs, so rebuilding
# the same version yields the same digest. 2000-01-01 is safely inside the zip date range.
FIXED_MTIME = 946_684_800
MAIN_PY = "from sample_app.app import main\n\nmain()\n"


def _validate(version: str, error_rate: float, extra_latency_ms: int) -> None:
    if not version or "/" in version or version.startswith("."):
        raise ValueError(f"version {version!r} cannot be used in an artifact file name")
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be between 0.0 and 1.0, got {error_rate}")
    if extra_latency_ms < 0:
        raise ValueError(f"extra_latency_ms must not be negative, got {extra_latency_ms}")


def _stage(staging: Path, version: str, error_rate: float, extra_latency_ms: int) -> None:
    package = staging / PACKAGE_NAME
    package.mkdir()
    for name in ("__init__.py", "app.py", "flags.py"):
        shutil.copyfile(APP_SOURCE_DIR / name, package / name)
    config = {"version": version, "error_rate": error_rate, "extra_latency_ms": extra_latency_ms}
    (package / "sample_config.json").write_text(json.dumps(config, sort_keys=True), "utf-8")
    (staging / "__main__.py").write_text(MAIN_PY, "utf-8")
    for path in [package, *package.iterdir(), staging / "__main__.py"]:
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def build(
    version: str, out_dir: Path, *, error_rate: float = 0.0, extra_latency_ms: int = 0
) -> Path:
    """Write ``out_dir/sample-app-<version>.pyz`` and return its path."""
    _validate(version, error_rate, extra_latency_ms)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"sample-app-{version}.pyz"
    with tempfile.TemporaryDirectory(prefix="sample-app-build-") as tmp:
        staging = Path(tmp)
        _stage(staging, version, error_rate, extra_latency_ms)
        # Write next to the target and rename, so a reader never sees a half-written artifact.
        partial = target.with_name(target.name + ".partial")
        zipapp.create_archive(staging, partial, interpreter=INTERPRETER)
        os.replace(partial, target)
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as artifact:
        for chunk in iter(lambda: artifact.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a slipway sample-app zipapp")
    parser.add_argument("--version", required=True)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    path = build(
        args.version, args.out, error_rate=args.error_rate, extra_latency_ms=args.latency_ms
    )
    print(path)
    print(f"sha256:{sha256_of(path)}")


if __name__ == "__main__":
    main()
