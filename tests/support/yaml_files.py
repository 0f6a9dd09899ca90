"""Copies of the shipped YAML (policies, environments) for a test to edit, and where a text stands in one."""

import shutil
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"


def copy_of(shipped: str, tmp_path: Path) -> Path:
    """infra/<shipped> copied under tmp_path, for a test to edit."""
    target = tmp_path / shipped
    shutil.copytree(INFRA / shipped, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}: the sample changed, update the test"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1)
                if text in line and not line.lstrip().startswith("#"))
