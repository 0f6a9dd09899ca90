"""Turning a release file plus flags into a ReleaseRequested, without NATS."""

import hashlib
from pathlib import Path

import pytest
import yaml

from contracts.release import (
    AllAtOnceStrategy, BlueGreenStrategy, CanaryStrategy, PilotScope, RegionalScope, RollingStrategy,
)
from slipway.releases import ReleaseInputError, ReleaseInvalid, apply_overrides, build_release, load_release_file

SHA = "3b7e9c1d5a2f4e6b8c0d1e3f5a7b9c2d4e6f8a0b"
DIGEST = "sha256:" + "ab" * 32

RELEASE_YAML = f"""
service: shop
environment: prod
version: 1.4.2
team: payments
artifact:
  uri: https://artifacts.example.com/shop/shop-1.4.2.pyz
  digest: {DIGEST}
commit:
  sha: {SHA}
  committed_at: "2026-11-27T09:30:00+00:00"
release_class: standard
strategy:
  kind: canary
  steps:
    - weight: 10
    - weight: 50
  analysis_interval_s: 5
rollback_triggers:
  max_error_rate: 0.05
  max_p99_latency_ms: 300
requested_by: ci:github-actions
"""


def no_git(args: list[str]) -> str | None:
    raise AssertionError(f"git should not be asked: {args}")


@pytest.fixture
def release_file(tmp_path: Path) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(RELEASE_YAML)
    return path


def test_builds_from_the_file(release_file: Path) -> None:
    event = build_release(release_file, {}, git=no_git, env={})
    assert (event.service, event.environment, event.version, event.team) == ("shop", "prod", "1.4.2", "payments")
    assert event.artifact.digest == DIGEST
    assert isinstance(event.strategy, CanaryStrategy)
    assert event.traffic_steps() == [10, 50]
    assert event.rollback_triggers.max_p99_latency_ms == 300
    assert event.release_id.startswith("shop-1.4.2-")
    assert event.actor == "ci:github-actions"
    assert event.source == "cli"
    assert event.type == "ReleaseRequested"


def test_flags_override_the_file(release_file: Path) -> None:
    overrides = {"version": "1.5.0", "environment": "staging", "steps": "5,25,75", "interval": 2.5,
                 "max_error_rate": 0.01, "requested_by": "alice", "release_id": "shop-custom"}
    event = build_release(release_file, overrides, git=no_git, env={})
    assert (event.version, event.environment, event.requested_by) == ("1.5.0", "staging", "alice")
    assert event.traffic_steps() == [5, 25, 75]
    assert event.strategy.analysis_interval_s == 2.5
    assert event.rollback_triggers.max_error_rate == 0.01
    assert event.rollback_triggers.max_p99_latency_ms == 300  # untouched file value survives
    assert event.release_id == "shop-custom"


def test_all_at_once_flag_replaces_a_canary(release_file: Path) -> None:
    event = build_release(release_file, {"strategy": "all-at-once"}, git=no_git, env={})
    assert isinstance(event.strategy, AllAtOnceStrategy)
    assert event.traffic_steps() == [100]


def test_blue_green_flags_replace_a_canary_and_size_the_pool(release_file: Path) -> None:
    overrides = {"strategy": "blue-green", "keep_warm": 30, "instances": 3}
    event = build_release(release_file, overrides, git=no_git, env={})
    assert isinstance(event.strategy, BlueGreenStrategy)
    assert (event.strategy.keep_warm_s, event.instances) == (30, 3)


def test_rolling_flags(release_file: Path) -> None:
    overrides = {"strategy": "rolling", "max_surge": 2, "max_unavailable": 1, "instances": 4}
    event = build_release(release_file, overrides, git=no_git, env={})
    assert isinstance(event.strategy, RollingStrategy)
    assert (event.strategy.max_surge, event.strategy.max_unavailable, event.instances) == (2, 1, 4)


def test_scope_flags_choose_regional_waves_or_a_pilot_group_and_pool_sizes_default_to_the_declaration(
    release_file: Path
) -> None:
    event = build_release(release_file, {"scope": "regional", "bake": 5}, git=no_git, env={})
    assert (event.scope, event.instances) == (RegionalScope(bake_s=5), None)
    assert build_release(release_file, {"scope": "pilot"}, git=no_git, env={}).scope == PilotScope()
    with pytest.raises(ReleaseInvalid, match="scope"):
        build_release(release_file, {"scope": "everywhere"}, git=no_git, env={})


def test_digest_is_computed_for_a_local_artifact(tmp_path: Path) -> None:
    artifact = tmp_path / "shop.pyz"
    artifact.write_bytes(b"zipapp bytes")
    overrides = {"service": "shop", "environment": "prod", "version": "2.0.0", "team": "payments",
                 "artifact": str(artifact), "strategy": "all-at-once", "commit": "abc1234",
                 "committed_at": "2026-01-02T03:04:05Z"}
    event = build_release(None, overrides, git=no_git, env={"USER": "bob"})
    assert event.artifact.digest == "sha256:" + hashlib.sha256(b"zipapp bytes").hexdigest()
    assert event.artifact.uri == str(artifact.resolve())
    assert event.requested_by == "bob"


def test_commit_comes_from_git_when_not_given(release_file: Path) -> None:
    answers = {"rev-parse": "a" * 40, "show": "2026-02-03T04:05:06+01:00"}
    data = load_release_file(release_file)
    data.pop("commit")
    release_file.write_text(yaml.safe_dump(data))
    event = build_release(release_file, {}, git=lambda args: answers[args[0]], env={})
    assert event.commit.sha == "a" * 40
    assert event.commit.committed_at.isoformat() == "2026-02-03T04:05:06+01:00"


def test_no_commit_and_no_git_is_a_clear_error(release_file: Path) -> None:
    data = load_release_file(release_file)
    data.pop("commit")
    release_file.write_text(yaml.safe_dump(data))
    with pytest.raises(ReleaseInputError, match="commit.sha .*--commit"):
        build_release(release_file, {}, git=lambda args: None, env={})


def test_validation_errors_name_the_fields(release_file: Path) -> None:
    overrides = {"digest": "md5:1234", "team": "Payments Team", "steps": "50,10"}
    with pytest.raises(ReleaseInvalid) as caught:
        build_release(release_file, overrides, git=no_git, env={})
    fields = {field for field, _ in caught.value.errors}
    assert "artifact.digest" in fields
    assert "team" in fields
    assert any(field.startswith("strategy") for field in fields)
    assert "sha256" in dict(caught.value.errors)["artifact.digest"]


def test_missing_fields_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReleaseInvalid) as caught:
        build_release(None, {"commit": "abc1234", "committed_at": "2026-01-01T00:00:00Z"}, git=no_git, env={})
    fields = {field for field, _ in caught.value.errors}
    assert {"service", "environment", "version", "team", "artifact", "requested_by"} <= fields
    assert "strategy" not in fields, "left out, the gatekeeper uses the recommended one"


def test_missing_local_artifact_is_a_clear_error(release_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ReleaseInputError, match="artifact not found"):
        build_release(release_file, {"artifact": str(tmp_path / "nope.pyz")}, git=no_git, env={})


def test_invalid_yaml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: shop\nartifact: {uri: x\n  digest: [\n")
    with pytest.raises(ReleaseInputError, match=r"not valid YAML at line \d+"):
        load_release_file(bad)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- service: shop\n")
    with pytest.raises(ReleaseInputError, match="must be a mapping"):
        load_release_file(listed)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReleaseInputError, match="cannot read release file"):
        load_release_file(tmp_path / "absent.yaml")


def test_json_files_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    path.write_text('{"service": "shop", "strategy": {"kind": "canary", "steps": [{"weight": 10}]}}')
    merged = apply_overrides(load_release_file(path), {"steps": "20,40"})
    assert merged["strategy"] == {"kind": "canary", "steps": [{"weight": 20}, {"weight": 40}]}


def test_bad_steps_flag_is_a_clear_error() -> None:
    with pytest.raises(ReleaseInputError, match="--steps"):
        apply_overrides({}, {"steps": "ten,fifty"})


def test_overriding_artifact_or_commit_drops_the_file_values_that_belong_to_the_old_ones(
    release_file: Path, tmp_path: Path
) -> None:
    artifact = tmp_path / "other.pyz"
    artifact.write_bytes(b"other bytes")
    times = {("show", "-s", "--format=%cI", "def5678"): "2026-03-04T05:06:07+00:00"}
    event = build_release(release_file, {"artifact": str(artifact), "commit": "def5678"},
                          git=lambda args: times[tuple(args)], env={})
    assert event.artifact.digest == "sha256:" + hashlib.sha256(b"other bytes").hexdigest()
    assert event.commit.sha == "def5678"
    assert event.commit.committed_at.isoformat() == "2026-03-04T05:06:07+00:00"


def test_yaml_scalars_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(RELEASE_YAML.replace("version: 1.4.2", "version: 1.10").replace(f"sha: {SHA}", "sha: 1234567")
                    .replace('"2026-11-27T09:30:00+00:00"', "2026-11-27T09:30:00+00:00") + "event_id: fixed\n")
    assert "event_id" not in load_release_file(path)
    event = build_release(path, {}, git=no_git, env={})
    assert event.version == "1.10"
    assert event.commit.sha == "1234567"
    assert event.traffic_steps() == [10, 50] and event.rollback_triggers.max_error_rate == 0.05
    assert event.event_id != "fixed"
