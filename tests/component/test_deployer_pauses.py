"""The deployer under an incident's pause, driven by the events the gatekeeper and health-watcher would send:
an accepted step holds its weights until the pause is lifted, a failing one still rolls back."""

from pathlib import Path

import httpx

from contracts import subjects
from contracts.commands import ResumeRelease
from contracts.envelope import new_event_id
from contracts.events import RollbackRequested, RolloutPaused, RolloutResumed, StepStarted
from libs.client import publish_event
from libs.settings import Settings
from services.deployer import store
from services.deployer.app import build
from services.deployer.domain import Pause
from services.deployer.pauses import ON_PAUSE
from tests.component.test_deployer import (  # noqa: F401 - artifacts, http and no_leftover_processes are fixtures
    approve, artifacts, canary_over_live, held_at, hold_of, http, in_deployer_db, no_leftover_processes, outcome,
    processed_by_deployer, routes, step_seen, verdict_for,
)
from tests.conftest import running
from tests.support.people import People
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


def pause_event(kind: type[RolloutPaused] | type[RolloutResumed], step: StepStarted, incident_id: str):  # noqa: ANN201
    return kind(release_id=step.release_id, service=step.service, environment=step.environment, source="gatekeeper",
                actor="person:sam", incident_id=incident_id, incidents=[incident_id],
                reason=f"incident {incident_id} (error) open in prod")


async def pause_of(settings: Settings, release_id: str) -> Pause | None:
    return await in_deployer_db(settings, lambda tx: store.get_pause(tx.session, release_id))


async def test_a_paused_canary_holds_its_weights_until_resumed_and_a_failing_step_still_rolls_back(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient, people: People  # noqa: F811
) -> None:
    incident = f"inc-{new_event_id().lower()}"
    async with running(build(settings)):
        rid, first, router, _ = await canary_over_live(settings, watcher, artifacts)

        await publish_event(settings.nats_url, pause_event(RolloutPaused, first, incident))
        await eventually(lambda: pause_of(settings, rid), 10, "the deployer recording the pause")
        passed = verdict_for(first)
        await publish_event(settings.nats_url, passed)
        hold = await held_at(settings, rid, 0)
        assert (hold.reasons, hold.verdict_event_id) == ([f"incident {incident} (error) open in prod"], passed.event_id)
        [alert] = await watcher.wait_for(lambda s, b: s.startswith("slipway.alert.warning.") and b.get("release_id") == rid)
        assert alert["summary"] == f"shop 2.0.0 in prod holds at step 1 after a pass verdict: paused for incident {incident}"
        assert await routes(http, router) == {"2.0.0": 10, "1.0.0": 90}
        refused = await people.send("dev", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="go"))
        assert (refused.ok, refused.message) == (
            False, f"release {rid} is paused for incident {incident}: it goes on when the incident is resolved")
        assert not watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "StepStarted"
                                    and b.get("step_index") == 1)

        resumed = pause_event(RolloutResumed, first, incident)
        await publish_event(settings.nats_url, resumed)
        second = await step_seen(watcher, rid, 1)
        assert (second.weight, second.causation_id, second.actor) == (50, resumed.event_id, "person:sam")
        assert await routes(http, router) == {"2.0.0": 50, "1.0.0": 50}
        assert await hold_of(settings, rid) is None and await pause_of(settings, rid) is None

        # Paused again at the last step: a failing verdict is not held, the rollback goes through.
        await publish_event(settings.nats_url, pause_event(RolloutPaused, second, incident))
        await eventually(lambda: pause_of(settings, rid), 10, "the deployer recording the second pause")
        failing = verdict_for(second, "fail")
        await publish_event(settings.nats_url, failing)
        await publish_event(settings.nats_url, RollbackRequested.caused_by(
            failing, "rollback-controller", deployment_id=rid, bad_version="2.0.0", restore_version="1.0.0",
            reason="step 2 failed", failed_at=failing.occurred_at))
        done = await outcome(watcher, rid)
        assert done["type"] == "RollbackCompleted", done
        assert await routes(http, router) == {"1.0.0": 100}
        assert await hold_of(settings, rid) is None and await pause_of(settings, rid) is None


async def test_a_pause_lifted_before_the_verdict_lets_the_verdict_move_the_release_on(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path]  # noqa: F811
) -> None:
    incident = f"inc-{new_event_id().lower()}"
    async with running(build(settings)):
        approved = approve(release_for(artifacts["1.0.0"], "1.0.0"))
        await publish_event(settings.nats_url, approved)
        step = await step_seen(watcher, approved.release_id, 0)
        await publish_event(settings.nats_url, pause_event(RolloutPaused, step, incident))
        resumed = pause_event(RolloutResumed, step, incident)
        await publish_event(settings.nats_url, resumed)
        await eventually(lambda: processed_by_deployer(settings, resumed.event_id, ON_PAUSE), 10, "the deployer lifting the pause")
        assert await pause_of(settings, approved.release_id) is None
        await publish_event(settings.nats_url, verdict_for(step))
        done = await outcome(watcher, approved.release_id)
        assert done["type"] == "DeploymentSucceeded", done
