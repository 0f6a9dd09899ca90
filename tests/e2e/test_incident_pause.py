"""An incident opened during a canary pauses it at its next step; resolving the incident resumes it to the end.

The whole stack as separate processes; an SRE opens and resolves the incident through the CLI.
"""

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of, slipway
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = pytest.mark.e2e
TERMINAL = {"DeploymentSucceeded", "RollbackCompleted", "DeploymentFailed"}
STEPS = [10, 30, 60]


def of_release(release_id: str, kind: str, **fields: object):  # noqa: ANN201 - a watcher predicate
    return lambda _s, body: (body.get("release_id"), body.get("type")) == (release_id, kind) and all(
        body.get(k) == v for k, v in fields.items())


async def cli(stack: Stack, *args: str):  # noqa: ANN201
    return await asyncio.to_thread(slipway, *args, "--nats-url", stack.nats_url, data_dir=stack.data_dir, timeout=60)


def deployer_hold(stack: Stack, release_id: str) -> tuple | None:
    path = Settings(data_dir=stack.data_dir).database_url_for("deployer").split("///", 1)[1]
    with sqlite3.connect(path, timeout=5) as db:
        return db.execute("SELECT step_index, reasons FROM holds WHERE release_id = ?", (release_id,)).fetchone()


def weights(stack: Stack) -> dict[str, int]:
    """The shop router's weights per version, as it persisted them (what it serves)."""
    [state] = (stack.run_dir / "routers").glob("shop.prod.json")
    return {b["version"]: b["weight"] for b in json.loads(state.read_text())["backends"]}


async def test_an_incident_pauses_a_canary_at_its_next_step_and_resolving_it_resumes_it(
    stack: Stack, tmp_path: Path
) -> None:
    made = slipway("identity", "create", "sue", "--roles", "sre", data_dir=stack.data_dir)
    assert made.returncode == 0, made.stdout + made.stderr
    artifacts = tmp_path / "artifacts"
    stable = release_for(build_sample("1.0.0", artifacts), "1.0.0")
    canary = release_for(build_sample("2.0.0", artifacts), "2.0.0", strategy={
        "kind": "canary", "steps": [{"weight": w} for w in STEPS], "analysis_interval_s": 2.0})
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, stable, ci_of(stack))
        await watcher.wait_type("DeploymentSucceeded", 90, release_id=stable.release_id)

        await publish_event(stack.nats_url, canary, ci_of(stack))
        await watcher.wait_type("StepStarted", 60, release_id=canary.release_id, step_index=0)
        opened = await cli(stack, "incident", "open", "--environment", "prod", "--severity", "error",
                           "--summary", "checkout errors", "--as", "sue")
        assert opened.returncode == 0, opened.stdout + opened.stderr
        incident_id = opened.stdout.split()[-1]
        paused = await watcher.wait_type("RolloutPaused", 30, release_id=canary.release_id)
        assert (paused["incident_id"], paused["actor"]) == (incident_id, "person:sue"), paused

        # The step under way is still judged; its passing verdict holds the canary's weights instead of moving on.
        [alert] = await watcher.wait_for(lambda s, b: s.startswith("slipway.alert.warning.") and b.get(
            "release_id") == canary.release_id and f"paused for incident {incident_id}" in b.get("summary", ""), 60)
        held_step, reasons = await eventually(lambda: deployer_hold(stack, canary.release_id), 10, "the deployer's hold")
        assert held_step < len(STEPS) - 1, f"paused too late: held at the last step {held_step}"
        assert incident_id in reasons, reasons
        verdict = watcher.matching(of_release(canary.release_id, "StepVerdict", step_index=held_step))[0]
        assert verdict["verdict"] == "pass", verdict
        assert weights(stack) == {"2.0.0": STEPS[held_step], "1.0.0": 100 - STEPS[held_step]}

        status = await cli(stack, "status", "--release-id", canary.release_id)
        assert f"paused for incident {incident_id}" in " ".join(status.stdout.split()), status.stdout
        refused = await cli(stack, "release", "resume", canary.release_id, "--comment", "go anyway", "--as", "sue")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        # Nothing moved meanwhile: no later step, no promotion to 100%.
        assert not watcher.matching(of_release(canary.release_id, "StepStarted", step_index=held_step + 1))
        assert not [b for b in watcher.matching(lambda _s, b: b.get("release_id") == canary.release_id)
                    if b.get("type") in TERMINAL]
        assert weights(stack) == {"2.0.0": STEPS[held_step], "1.0.0": 100 - STEPS[held_step]}

        resolved = await cli(stack, "incident", "resolve", incident_id, "--comment", "config rolled back", "--as", "sue")
        assert resolved.returncode == 0, resolved.stdout + resolved.stderr
        resumed = await watcher.wait_type("RolloutResumed", 30, release_id=canary.release_id)
        assert (resumed["incident_id"], resumed["actor"]) == (incident_id, "person:sue"), resumed
        await watcher.wait_type("StepStarted", 30, release_id=canary.release_id, step_index=held_step + 1)
        [outcome] = await watcher.wait_for(lambda _s, b: b.get("release_id") == canary.release_id
                                           and b.get("type") in TERMINAL, 90)
        assert outcome["type"] == "DeploymentSucceeded", outcome

    def arrival(predicate) -> float:  # noqa: ANN001
        return next(at for (subject, body), at in zip(watcher.seen, watcher.arrived) if predicate(subject, body))

    resolved_at = arrival(lambda _s, b: b.get("type") == "IncidentResolved" and b.get("incident_id") == incident_id)
    next_step_at = arrival(of_release(canary.release_id, "StepStarted", step_index=held_step + 1))
    print(f"\ntime from IncidentResolved to the next StepStarted: {(next_step_at - resolved_at) * 1000:.0f} ms "
          f"(held at step {held_step + 1} of {len(STEPS)})")
    assert not watcher.matching(lambda subject, _b: subject.startswith("slipway.dlq."))
    assert stack.dead_service() is None
