"""A CI job that retries its release request while the release is between steps."""

import re
from pathlib import Path

import pytest

from contracts.envelope import new_event_id
from examples.build_sample import build as build_sample
from libs.client import publish_event
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = pytest.mark.e2e
TERMINAL = {"DeploymentSucceeded", "RollbackCompleted", "DeploymentFailed", "ReleaseBlocked", "ArtifactRejected"}


def of_release(release_id: str, types: set[str]):  # noqa: ANN201 - a watcher predicate
    return lambda _s, body: body.get("release_id") == release_id and body.get("type") in types


async def test_a_retry_mid_release_is_a_duplicate_and_the_release_and_the_next_one_go_on(
    stack: Stack, tmp_path: Path
) -> None:
    v1 = build_sample("1.0.0", tmp_path / "artifacts")
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    first = release_for(v1, "1.0.0", strategy={"kind": "canary", "steps": [{"weight": 20}, {"weight": 60}],
                                               "analysis_interval_s": 2.0})
    retry = first.model_copy(update={"event_id": new_event_id(), "actor": "ci:retry"})
    after = release_for(v2, "2.0.0", strategy={"kind": "all-at-once", "analysis_interval_s": 2.0})
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, first, ci_of(stack))
        await watcher.wait_type("StepStarted", 60, release_id=first.release_id, step_index=0)
        await publish_event(stack.nats_url, retry, ci_of(stack))
        duplicate = await watcher.wait_type("ReleaseRequestDuplicated", 30, causation_id=retry.event_id)
        [outcome] = await watcher.wait_for(of_release(first.release_id, TERMINAL), 90)

        await publish_event(stack.nats_url, after, ci_of(stack))
        [next_outcome] = await watcher.wait_for(of_release(after.release_id, TERMINAL), 90)
    assert duplicate["original_event_id"] == first.event_id
    assert outcome["type"] == "DeploymentSucceeded", outcome
    assert next_outcome["type"] == "DeploymentSucceeded", next_outcome
    # Distinct event ids: the relay may publish a row twice, a second deployment would mint new ids.
    for kind, count in (("ArtifactVerified", 1), ("ReleaseApproved", 1), ("DeploymentStarted", 1), ("StepStarted", 2)):
        events = {b["event_id"] for b in watcher.matching(of_release(first.release_id, {kind}))}
        assert len(events) == count, (kind, events)
    assert not watcher.matching(lambda subject, _b: subject.startswith("slipway.dlq."))
    assert stack.dead_service() is None


def test_a_ci_job_that_retries_through_the_cli_gets_the_first_requests_outcome(stack: Stack, tmp_path: Path) -> None:
    """The retry of a finished release exits as that release did; another spec under its id is refused,
    and neither changes what `slipway status` says of the release."""
    from tests.e2e.conftest import slipway

    artifact = build_sample("1.0.0", tmp_path / "artifacts")
    release = release_for(artifact, "1.0.0", strategy={"kind": "all-at-once", "analysis_interval_s": 1.0})

    def request(event: object, name: str) -> tuple[int, str]:
        path = tmp_path / name
        path.write_text(event.model_dump_json())  # type: ignore[attr-defined]
        done = slipway("release", "request", "--raw-json", str(path), "--nats-url", stack.nats_url, "--timeout", "90",
                       data_dir=stack.data_dir)
        return done.returncode, done.stdout + done.stderr

    first_code, first_out = request(release, "first.json")
    assert first_code == 0 and "deployed" in first_out, first_out
    retry_code, retry_out = request(release.model_copy(update={"event_id": new_event_id()}), "retry.json")
    assert retry_code == 0 and "ReleaseRequestDuplicated" in retry_out and "deployed" in retry_out, retry_out
    other = release.model_copy(update={"event_id": new_event_id(), "version": "1.0.1"})
    other_code, other_out = request(other, "other.json")
    assert other_code == 1 and release.release_id in other_out and "rejected" in other_out, other_out
    status = slipway("status", "--release-id", release.release_id, "--nats-url", stack.nats_url, data_dir=stack.data_dir)
    shown = status.stdout + status.stderr
    # The release's row: still 1.0.0 and succeeded (its history below also lists the refused 1.0.1 request).
    assert status.returncode == 0 and re.search(r"│\s*1\.0\.0\s*│\s*succeeded\s*│", shown), shown
    for kind in ("DeploymentStarted", "ReleaseRequestDuplicated", "DeploymentSucceeded"):  # the release's history
        assert kind in shown, shown
