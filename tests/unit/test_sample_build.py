"""The sample-app build bakes behaviour into a runnable zipapp with a stable digest."""

import json
import zipfile
from pathlib import Path

import pytest

from examples.build_sample import build, sha256_of
from examples.sample_app.app import FailureSchedule


def test_build_bakes_config_into_zipapp(tmp_path: Path) -> None:
    artifact = build("2.0.0", tmp_path, error_rate=0.5, extra_latency_ms=200)
    assert artifact == tmp_path / "sample-app-2.0.0.pyz"
    assert artifact.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(artifact) as archive:
        assert "__main__.py" in archive.namelist()
        config = json.loads(archive.read("sample_app/sample_config.json"))
    assert config == {"version": "2.0.0", "error_rate": 0.5, "extra_latency_ms": 200}


def test_same_inputs_give_same_digest_and_different_inputs_differ(tmp_path: Path) -> None:
    first = sha256_of(build("1.0.0", tmp_path / "a"))
    again = sha256_of(build("1.0.0", tmp_path / "b"))
    faulty = sha256_of(build("1.0.0", tmp_path / "c", error_rate=0.1))
    assert first == again
    assert first != faulty
    assert len(first) == 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"error_rate": 1.5}, "error_rate"), ({"extra_latency_ms": -1}, "extra_latency_ms")],
)
def test_build_rejects_bad_behaviour(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build("1.0.0", tmp_path, **kwargs)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_failure_schedule_fails_exactly_floor_n_times_rate(rate: float) -> None:
    schedule = FailureSchedule(rate)
    failures = 0
    for n in range(1, 101):
        failures += schedule.next_fails()
        assert failures == int(n * rate)
