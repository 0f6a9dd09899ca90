"""People steering releases on the deployer (real NATS, a real SQLite file, the in-memory deploy target): pause,
resume and promote as signed commands, on every strategy, with their events, refusals and a restart in between."""

from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import PauseRelease, PromoteRelease, ResumeRelease
from contracts.envelope import new_event_id
from contracts.events import RolloutPaused, RolloutResumed, StepStarted
from contracts.identity import Role
from libs.client import publish_event
from libs.settings import Settings
from libs.store import Database
from services.deployer import steering_store, store
from services.deployer.app import build
from services.deployer.memory_target import MemoryTarget
from services.deployer.pauses import ON_PAUSE
from tests.component.test_deployer import processed_by_deployer
from tests.component.test_deployer_pauses import pause_event
from tests.component.test_deployer_plans import (  # noqa: F401 - artifact and target are fixtures
    CANARY, ROLLING, artifact, blue_green, outcome, ship, step_seen, target,
)
from tests.conftest import running
from tests.support.deployer_events import approve, rollback_of, verdict_for
from tests.support.people import People
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

IMMUTABLE = {"kind": "immutable", "analysis_interval_s": 1.0}


async def in_db(settings: Settings, read):  # noqa: ANN001, ANN201
    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            return await read(tx.session)
    finally:
        await db.dispose()


async def release_over_live(settings: Settings, watcher: EventWatcher, artifact: Path, strategy: dict) -> StepStarted:
    """1.0.0 live as two instances and a release of 2.0.0 by `strategy` at its first step."""
    await ship(settings, watcher, artifact, "1.0.0", instances=2)
    approved = approve(release_for(artifact, "2.0.0", strategy=strategy, instances=2))
    await publish_event(settings.nats_url, approved)
    return await step_seen(watcher, approved.release_id, 0)


async def test_a_paused_canary_holds_after_a_passing_verdict_across_a_restart_until_resumed_then_is_promoted(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget, people: People  # noqa: F811
) -> None:
    async with running(build(settings, target=target)):
        first = await release_over_live(settings, watcher, artifact, {**CANARY, "steps": [
            {"weight": 10}, {"weight": 30}, {"weight": 60}]})
        rid = first.release_id
        paused = await people.send("dev", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="look first"))
        assert paused.ok and "paused at step 1 of 3" in paused.message, paused.message
        event = await watcher.wait_type("ReleasePaused", release_id=rid)
        assert (event["actor"], event["step_index"], event["reason"]) == ("person:dev", 0, "look first")
        assert event["signed_command"]["signer"] == "person:dev"
        again = await people.send("sam", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="me too"))
        assert not again.ok and "is already paused by person:dev" in again.message, again.message

        passed = verdict_for(first)
        await publish_event(settings.nats_url, passed)
        hold = await eventually(lambda: in_db(settings, lambda s: store.get_hold(s, rid)), 10, "the step held")
        assert (hold.verdict_event_id, hold.reasons) == (passed.event_id, ["look first"])
        assert target.split("shop", "prod") == {"2.0.0": 10, "1.0.0": 90}

    # The pause is the deployer's record: a restarted deployer still holds the step and lets the person go on.
    async with running(build(settings, target=target)):
        assert (await in_db(settings, lambda s: steering_store.get_person_pause(s, rid))).held_verdict_event_id == (
            passed.event_id)
        assert not watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "StepStarted"
                                    and b.get("step_index") == 1)
        resumed = await people.send("sam", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="fine"))
        assert resumed.ok and resumed.message.endswith("step 2 of 3 started"), resumed.message
        second = await step_seen(watcher, rid, 1)
        assert (second.weight, second.actor) == (30, "person:sam")
        assert target.split("shop", "prod") == {"2.0.0": 30, "1.0.0": 70}
        assert await in_db(settings, lambda s: steering_store.get_person_pause(s, rid)) is None

        promoted = await people.send("dev", subjects.CMD_PROMOTE_RELEASE, PromoteRelease(release_id=rid, comment="ok"))
        assert promoted.ok and "(1 step(s) not judged): 2.0.0 now takes all traffic" in promoted.message, promoted.message
        announced = await watcher.wait_type("ReleasePromoted", release_id=rid)
        assert (announced["actor"], announced["step_index"], announced["skipped_steps"]) == ("person:dev", 1, 1)
        done = await outcome(watcher, rid)
        assert (done["type"], done["actor"], done["causation_id"]) == (
            "DeploymentSucceeded", "person:dev", announced["event_id"])
        assert target.weights[("shop", "prod")][-1] == {"2.0.0": 100}, "straight to all traffic, no 60% on the way"
        await eventually(lambda: target.live_instances("1.0.0") == [], 5, "the old pool retired")
        # The step it was promoted at is still being analysed: its verdict changes nothing now.
        await publish_event(settings.nats_url, verdict_for(second))
        ended = await people.send("dev", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="late"))
        assert (ended.ok, ended.message) == (False, f"release {rid} succeeded: there is nothing to pause")


@pytest.mark.parametrize("strategy", [CANARY, blue_green(keep_warm_s=0.5), ROLLING, IMMUTABLE],
                         ids=lambda strategy: strategy["kind"])
async def test_every_strategy_can_be_paused_resumed_and_promoted_at_its_first_step(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget, people: People,  # noqa: F811
    strategy: dict,
) -> None:
    async with running(build(settings, target=target)):
        first = await release_over_live(settings, watcher, artifact, strategy)
        rid = first.release_id
        assert (await people.send("sam", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="x"))).ok
        lifted = await people.send("sam", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="y"))
        assert lifted.ok and "pause lifted at step 1" in lifted.message, lifted.message
        assert (await people.send("sam", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="z"))).ok
        promoted = await people.send("sam", subjects.CMD_PROMOTE_RELEASE, PromoteRelease(release_id=rid, comment="go"))
        assert promoted.ok, promoted.message
        assert (await outcome(watcher, rid))["type"] == "DeploymentSucceeded"
        await eventually(lambda: target.live_instances("1.0.0") == [], 10, "the old pool retired")
        assert target.split("shop", "prod") == {"2.0.0": 100} and target.live_instances("2.0.0") == [0, 1]
        assert sorted(s for s in target.started if s[0] == "2.0.0") == [("2.0.0", 0), ("2.0.0", 1)], "started once"
        kinds = [b["type"] for b in watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") in (
            "ReleasePaused", "ReleaseResumed", "ReleasePromoted"))]
        assert kinds == ["ReleasePaused", "ReleaseResumed", "ReleasePaused", "ReleasePromoted"]


async def test_a_paused_release_still_rolls_back_on_a_failing_verdict_and_steering_refusals_say_why(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget, people: People  # noqa: F811
) -> None:
    people.add("eve", Role.DEVELOPER, teams=("search",))
    async with running(build(settings, target=target)):
        unknown = await people.send("sam", subjects.CMD_PROMOTE_RELEASE, PromoteRelease(release_id="nope", comment="x"))
        assert (unknown.ok, unknown.message) == (False, "no release nope is known to the deployer")
        first = await release_over_live(settings, watcher, artifact, CANARY)
        rid = first.release_id
        not_theirs = await people.send("eve", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="x"))
        assert not not_theirs.ok and "only releases of their own teams (search)" in not_theirs.message
        refused = await watcher.wait_type("CommandRefused", about=rid)
        assert refused["command"] == subjects.CMD_PAUSE_RELEASE and refused["actor"] == "person:eve"
        not_held = await people.send("dev", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="x"))
        assert (not_held.ok, not_held.message) == (
            False, f"release {rid} is not held: step 1 of 2 is still being judged")

        assert (await people.send("dev", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="x"))).ok
        await publish_event(settings.nats_url, verdict_for(first, "fail"))
        await publish_event(settings.nats_url, rollback_of(first))
        done = await outcome(watcher, rid)
        assert done["type"] == "RollbackCompleted" and target.split("shop", "prod") == {"1.0.0": 100}
        assert await in_db(settings, lambda s: steering_store.get_person_pause(s, rid)) is None
        late = await people.send("dev", subjects.CMD_PROMOTE_RELEASE, PromoteRelease(release_id=rid, comment="x"))
        assert (late.ok, late.message) == (False, f"release {rid} was rolled back: there is nothing to promote")


async def test_a_step_held_by_a_person_and_an_incident_goes_on_only_once_both_pauses_are_lifted(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget, people: People  # noqa: F811
) -> None:
    incident = f"inc-{new_event_id().lower()}"
    async with running(build(settings, target=target)):
        first = await release_over_live(settings, watcher, artifact, CANARY)
        rid = first.release_id
        assert (await people.send("dev", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="mine"))).ok
        await publish_event(settings.nats_url, pause_event(RolloutPaused, first, incident))
        await eventually(lambda: in_db(settings, lambda s: store.get_pause(s, rid)), 10, "the incident's pause")
        passed = verdict_for(first)
        await publish_event(settings.nats_url, passed)
        hold = await eventually(lambda: in_db(settings, lambda s: store.get_hold(s, rid)), 10, "the step held")
        assert hold.reasons == [f"incident {incident} (error) open in prod", "mine"]

        # The incident ends first: the person's pause still holds the step.
        lifted = pause_event(RolloutResumed, first, incident)
        await publish_event(settings.nats_url, lifted)
        await eventually(lambda: processed_by_deployer(settings, lifted.event_id, ON_PAUSE), 10, "the lift read")
        assert await in_db(settings, lambda s: store.get_pause(s, rid)) is None
        assert not watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "StepStarted"
                                    and b.get("step_index") == 1)
        resumed = await people.send("dev", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="go"))
        assert resumed.ok and resumed.message.endswith("step 2 of 2 started"), resumed.message
        assert (await step_seen(watcher, rid, 1)).weight == 50

        # Paused by both again: the person resumes first, the incident's end moves the step on.
        second = StepStarted.model_validate(await watcher.wait_type("StepStarted", release_id=rid, step_index=1))
        assert (await people.send("dev", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="again"))).ok
        await publish_event(settings.nats_url, pause_event(RolloutPaused, second, incident))
        await eventually(lambda: in_db(settings, lambda s: store.get_pause(s, rid)), 10, "the second incident pause")
        await publish_event(settings.nats_url, verdict_for(second))
        await eventually(lambda: in_db(settings, lambda s: store.get_hold(s, rid)), 10, "the last step held")
        early = await people.send("dev", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="mine"))
        assert early.ok and early.message.endswith("an incident's pause still holds it"), early.message
        refused = await people.send("dev", subjects.CMD_PROMOTE_RELEASE, PromoteRelease(release_id=rid, comment="x"))
        assert not refused.ok and f"paused for incident {incident}" in refused.message, refused.message
        await publish_event(settings.nats_url, pause_event(RolloutResumed, second, incident))
        assert (await outcome(watcher, rid))["type"] == "DeploymentSucceeded"


async def test_a_canary_step_that_asks_for_a_person_waits_after_its_verdict_even_across_a_restart(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget, people: People  # noqa: F811
) -> None:
    async with running(build(settings, target=target)):
        first = await release_over_live(settings, watcher, artifact, {**CANARY, "steps": [
            {"weight": 10, "pause": True}, {"weight": 50}]})
        rid = first.release_id
        passed = verdict_for(first)
        await publish_event(settings.nats_url, passed)
        paused = await watcher.wait_type("ReleasePaused", release_id=rid)
        assert (paused["actor"], paused["step_index"], paused["causation_id"]) == ("deployer", 0, passed.event_id)
        assert f"slipway resume {rid}" in paused["reason"] and paused.get("signed_command") is None
        assert target.split("shop", "prod") == {"2.0.0": 10, "1.0.0": 90}

    async with running(build(settings, target=target)):
        hold = await in_db(settings, lambda s: steering_store.get_person_pause(s, rid))
        assert (hold.actor, hold.held_verdict_event_id) == ("deployer", passed.event_id)
        assert not watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "StepStarted"
                                    and b.get("step_index") == 1), "the passing verdict did not move it on"
        again = await people.send("dev", subjects.CMD_PAUSE_RELEASE, PauseRelease(release_id=rid, reason="me too"))
        assert not again.ok and "is already paused by deployer" in again.message, again.message
        resumed = await people.send("dev", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="looks right"))
        assert resumed.ok and resumed.message.endswith("step 2 of 2 started"), resumed.message
        second = await step_seen(watcher, rid, 1)
        assert (second.weight, second.actor) == (50, "person:dev")
        await publish_event(settings.nats_url, verdict_for(second))  # the last step asks nobody: it completes
        assert (await outcome(watcher, rid))["type"] == "DeploymentSucceeded"
