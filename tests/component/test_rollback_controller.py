"""The rollback-controller alone: failing verdicts become rollback requests; completions are timed."""

import sqlite3
from datetime import UTC, datetime, timedelta

from contracts import subjects
from contracts.commands import AbortRelease, CommandResult
from contracts.events import DeploymentStarted, DeploymentSucceeded, RollbackCompleted, RollbackRequested, StepVerdict
from libs.client import publish_event, publish_raw
from libs.settings import Settings
from services.rollback_controller.app import build
from tests.support.people import People
from tests.support.poll import eventually
from tests.conftest import running
from tests.support.watch import EventWatcher

REASONS = ["error rate 50.0% exceeds 5.0% (10/20)", "p99 latency 812 ms exceeds 500 ms"]


def verdict(release_id: str, verdict: str, reasons: list[str] | None = None, version: str = "2.0.0") -> StepVerdict:
    return StepVerdict(
        release_id=release_id, service="shop", environment="prod", actor="ci:test", source="health-watcher",
        deployment_id=release_id, step_index=1, version=version, stable_version="1.0.0", team="payments",
        verdict=verdict, reasons=reasons or REASONS, requests=20, errors=10, error_rate=0.5, p99_latency_ms=812.0,
    )


def requested_for(release_id: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, b: b.get("type") == "RollbackRequested" and b.get("release_id") == release_id


def rollback_row(settings: Settings, release_id: str) -> tuple | None:
    path = settings.database_url_for("rollback-controller").split("///", 1)[1]
    with sqlite3.connect(path, timeout=5) as db:
        return db.execute(
            "SELECT bad_version, reason, completed_at, restore_seconds FROM rollbacks WHERE release_id = ?", (release_id,)
        ).fetchone()


async def until_restored(settings: Settings, release_id: str, timeout: float = 10.0) -> tuple:
    def completed_row() -> tuple | None:
        row = rollback_row(settings, release_id)
        return row if row is not None and row[3] is not None else None

    return await eventually(completed_row, timeout, f"rollback of {release_id} completed")


async def test_failing_verdict_requests_a_rollback_and_completion_is_timed(
    settings: Settings, watcher: EventWatcher
) -> None:
    failing = verdict("shop-2.0.0", "fail")
    async with running(build(settings)):
        await publish_event(settings.nats_url, failing)
        body = await watcher.wait_type("RollbackRequested", release_id=failing.release_id)
        request = RollbackRequested.model_validate(body)
        assert request.failed_at == failing.occurred_at
        assert request.reason == f"2.0.0 failed step 2: {REASONS[0]}; {REASONS[1]}"
        assert (request.bad_version, request.restore_version, request.deployment_id) == ("2.0.0", "1.0.0", "shop-2.0.0")
        assert (request.causation_id, request.source) == (failing.event_id, "rollback-controller")
        bad_version, reason, completed_at, seconds = rollback_row(settings, failing.release_id)
        assert (bad_version, reason, completed_at, seconds) == ("2.0.0", request.reason, None, None)

        completed = RollbackCompleted.caused_by(
            request, "deployer", deployment_id=request.deployment_id, bad_version="2.0.0", restored_version="1.0.0",
            root_cause=request.reason, failed_at=request.failed_at,
            occurred_at=request.failed_at + timedelta(seconds=3, milliseconds=250),
        )
        await publish_event(settings.nats_url, completed)
        _, _, completed_at, seconds = await until_restored(settings, failing.release_id)
    assert seconds == (completed.occurred_at - request.failed_at).total_seconds() == 3.25
    assert datetime.fromisoformat(completed_at) == completed.occurred_at.replace(tzinfo=None)


async def test_passing_and_marginal_verdicts_do_not_roll_back(settings: Settings, watcher: EventWatcher) -> None:
    passing = verdict("shop-2.0.0", "pass", ["error rate 0.0%, p99 4 ms over 20 requests: within limits"])
    marginal = verdict("shop-2.0.1", "marginal", ["error rate 3.0% is close to the 5.0% limit"], version="2.0.1")
    marker = verdict("shop-3.0.0", "fail", version="3.0.0")
    async with running(build(settings)):
        await publish_event(settings.nats_url, passing)
        await publish_event(settings.nats_url, marginal)
        await publish_event(settings.nats_url, marker)
        await watcher.wait_for(requested_for(marker.release_id))
    assert watcher.matching(requested_for(passing.release_id)) == []
    assert watcher.matching(requested_for(marginal.release_id)) == []
    assert rollback_row(settings, passing.release_id) is None
    assert rollback_row(settings, marginal.release_id) is None
    assert rollback_row(settings, marker.release_id) is not None


async def test_a_redelivered_failing_verdict_requests_one_rollback(settings: Settings, watcher: EventWatcher) -> None:
    failing = verdict("shop-2.0.0", "fail")
    marker = verdict("shop-3.0.0", "fail", version="3.0.0")
    async with running(build(settings)):
        await publish_event(settings.nats_url, failing)
        await watcher.wait_for(requested_for(failing.release_id))
        await publish_raw(settings.nats_url, failing.subject, failing.model_dump_json().encode(), {"Nats-Msg-Id": "again"})
        await publish_event(settings.nats_url, marker)
        await watcher.wait_for(requested_for(marker.release_id))
    assert len(watcher.matching(requested_for(failing.release_id))) == 1
    assert not watcher.matching(lambda s, _b: s.startswith("slipway.dlq."))


async def test_a_second_failing_verdict_for_the_same_release_adds_no_request(
    settings: Settings, watcher: EventWatcher
) -> None:
    async with running(build(settings)):
        await publish_event(settings.nats_url, verdict("twice", "fail"))
        await watcher.wait_for(requested_for("twice"))
        await publish_event(settings.nats_url, verdict("twice", "fail", ["p99 latency 900 ms exceeds 500 ms"]))
        await publish_event(settings.nats_url, verdict("marker", "fail"))
        await watcher.wait_for(requested_for("marker"))
    assert len(watcher.matching(requested_for("twice"))) == 1
    assert not watcher.matching(lambda s, _b: s.startswith("slipway.dlq."))


def started(release_id: str, version: str = "2.0.0") -> DeploymentStarted:
    return DeploymentStarted(
        release_id=release_id, service="shop", environment="prod", actor="ci:test", source="deployer", version=version,
        stable_version="1.0.0", strategy="canary", steps=[10, 50], router_url="http://127.0.0.1:1",
        commit_sha="abc1234", committed_at=datetime.now(UTC), team="payments",
    )


def in_flight(settings: Settings, release_id: str) -> bool:
    path = settings.database_url_for("rollback-controller").split("///", 1)[1]
    with sqlite3.connect(path, timeout=5) as db:
        row = db.execute("SELECT outcome FROM releases WHERE release_id = ?", (release_id,)).fetchone()
    return row is not None and row[0] is None


async def abort(people: People, release_id: str, name: str = "dev") -> CommandResult:
    # dev is a developer of team payments, the team of the releases `started` makes; sam is an SRE.
    return await people.send(name, subjects.CMD_ABORT_RELEASE,
                             AbortRelease(release_id=release_id, reason="customers report errors"))


async def test_a_person_aborts_a_release_in_flight_once(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    release = started("shop-2.0.0")
    async with running(build(settings)):
        await publish_event(settings.nats_url, release)
        await eventually(lambda: in_flight(settings, release.release_id), 10, "the release known to be in flight")
        answer = await abort(people, release.release_id)
        assert answer.ok, answer.message
        [body] = await watcher.wait_for(requested_for(release.release_id))
        request = RollbackRequested.model_validate(body)
        assert request.reason == "aborted by person:dev: customers report errors"
        assert (request.actor, request.source, request.deployment_id) == ("person:dev", "rollback-controller", "shop-2.0.0")
        assert request.signed_command is not None and request.signed_command.signer == "person:dev"
        assert (request.bad_version, request.restore_version) == ("2.0.0", "1.0.0")
        assert rollback_row(settings, release.release_id)[:2] == ("2.0.0", request.reason)

        second = await abort(people, release.release_id, "sam")
        assert (second.ok, second.message) == (
            False, f"release shop-2.0.0 is already being rolled back: {request.reason}",
        )
        # A failing verdict after the abort adds no second request either.
        await publish_event(settings.nats_url, verdict(release.release_id, "fail"))
        unknown = await abort(people, "nope")
        assert (unknown.ok, unknown.message) == (False, "no release nope in flight is known to the rollback-controller")
        marker = verdict("marker", "fail")
        await publish_event(settings.nats_url, marker)
        await watcher.wait_for(requested_for(marker.release_id))
    assert len(watcher.matching(requested_for(release.release_id))) == 1


async def test_a_release_rolled_back_by_a_verdict_or_deployed_may_not_be_aborted(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    failing, deployed = started("failing"), started("deployed", version="2.0.1")
    async with running(build(settings)):
        await publish_event(settings.nats_url, failing)
        await publish_event(settings.nats_url, deployed)
        await publish_event(settings.nats_url, verdict(failing.release_id, "fail"))
        [request] = await watcher.wait_for(requested_for(failing.release_id))
        refused = await abort(people, failing.release_id)
        assert (refused.ok, refused.message) == (
            False, f"release failing is already being rolled back: {request['reason']}",
        )

        await eventually(lambda: in_flight(settings, deployed.release_id), 10, "the release known to be in flight")
        await publish_event(settings.nats_url, DeploymentSucceeded.caused_by(
            deployed, "deployer", version="2.0.1", previous_version="1.0.0"))
        await eventually(lambda: not in_flight(settings, deployed.release_id), 10, "the release known to be over")
        over = await abort(people, deployed.release_id)
        assert (over.ok, over.message) == (False, "release deployed is over: it succeeded")
    assert watcher.matching(requested_for(deployed.release_id)) == []


async def test_a_release_that_succeeded_with_its_old_pool_warm_may_be_aborted_until_the_warm_time_ends(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    warm, cold = started("warm"), started("cold", version="2.0.1")
    async with running(build(settings)):
        for release, seconds in ((warm, 600), (cold, -1)):
            await publish_event(settings.nats_url, release)
            await publish_event(settings.nats_url, DeploymentSucceeded.caused_by(
                release, "deployer", version=release.version, previous_version="1.0.0",
                warm_until=datetime.now(UTC) + timedelta(seconds=seconds)))
            await eventually(lambda: rollback_known_over(settings, release.release_id), 10, "the release known over")
        # sam (an SRE) acts on every team's releases: the team may not be learnt yet, the consumers run apart.
        answer = await abort(people, warm.release_id, "sam")
        assert answer.ok, answer.message
        [body] = await watcher.wait_for(requested_for(warm.release_id))
        assert (body["bad_version"], body["restore_version"], body["actor"]) == ("2.0.0", "1.0.0", "person:sam")
        refused = await abort(people, cold.release_id, "sam")
        assert not refused.ok and "its old pool was kept warm only until" in refused.message, refused.message


def rollback_known_over(settings: Settings, release_id: str) -> bool:
    path = settings.database_url_for("rollback-controller").split("///", 1)[1]
    with sqlite3.connect(path, timeout=5) as db:
        row = db.execute("SELECT outcome FROM releases WHERE release_id = ?", (release_id,)).fetchone()
    return row is not None and row[0] == "succeeded"
