"""The deployer alone, driven by the events the gatekeeper, health-watcher and rollback-controller would send.

It runs real sample-app processes and a real router through the local driver under
``settings.data_dir / "run"``; every test stops them all at the end.
"""

import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from contracts import subjects
from contracts.commands import CommandResult, ResumeRelease
from contracts.identity import Role
from contracts.envelope import new_event_id
from contracts.events import RollbackRequested, StepStarted
from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from libs.store import Database, Transaction
from services.deployer import store
from services.deployer.app import build
from services.deployer.domain import Hold
from services.deployer.handlers import ON_APPROVED
from services.deployer.local import processes
from services.deployer.local.driver import InstanceHandle, RouterHandle, stop_all
from services.deployer.local.target import as_instance, as_router
from tests.support.poll import eventually
from tests.conftest import running
from tests.support.deployer_events import approve, verdict_for
from tests.support.people import People
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

T = TypeVar("T")
CANARY = {"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}], "analysis_interval_s": 1.0}
OUTCOMES = ("DeploymentSucceeded", "DeploymentFailed", "RollbackCompleted")


@pytest.fixture(autouse=True)
def no_leftover_processes(settings: Settings) -> Iterator[None]:
    try:
        yield
    finally:
        stop_all(settings.data_dir / "run")


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, Path]:
    return {
        "1.0.0": build_sample("1.0.0", tmp_path / "dist"),
        "2.0.0": build_sample("2.0.0", tmp_path / "dist"),
    }


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        yield client


async def step_seen(watcher: EventWatcher, release_id: str, step_index: int) -> StepStarted:
    body = await watcher.wait_type("StepStarted", release_id=release_id, step_index=step_index)
    return StepStarted.model_validate(body)


async def outcome(watcher: EventWatcher, release_id: str) -> dict:
    [body] = await watcher.wait_for(lambda _s, b: b.get("release_id") == release_id and b.get("type") in OUTCOMES)
    return body


async def deploy_live(settings: Settings, watcher: EventWatcher, artifact: Path, version: str,
                      environment: str = "prod") -> StepStarted:
    """A first, all-at-once deployment taken to success; returns its (only) step."""
    approved = approve(release_for(artifact, version, environment=environment))
    await publish_event(settings.nats_url, approved)
    step = await step_seen(watcher, approved.release_id, 0)
    await publish_event(settings.nats_url, verdict_for(step))
    done = await outcome(watcher, approved.release_id)
    assert done["type"] == "DeploymentSucceeded", done
    return step


async def canary_over_live(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path]
) -> tuple[str, StepStarted, RouterHandle, dict[str, InstanceHandle]]:
    """1.0.0 live, then a CANARY of 2.0.0 at its first step: its release id, that step and what runs."""
    await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
    approved = approve(release_for(artifacts["2.0.0"], "2.0.0", strategy=CANARY))
    await publish_event(settings.nats_url, approved)
    first = await step_seen(watcher, approved.release_id, 0)
    router, instances = await recorded(settings)
    return approved.release_id, first, router, instances


async def served_by(http: httpx.AsyncClient, url: str, count: int = 10) -> list[tuple[int, str]]:
    result = []
    for n in range(count):
        response = await http.get(f"{url}/orders/{n}")
        result.append((response.status_code, response.headers.get("x-slipway-served-by", "")))
    return result


async def routes(http: httpx.AsyncClient, router: RouterHandle) -> dict[str, int]:
    backends = (await http.get(f"{router.admin_url}/routes")).json()["backends"]
    return {b["version"]: b["weight"] for b in backends}


async def recorded(settings: Settings) -> tuple[RouterHandle, dict[str, InstanceHandle]]:
    """What the deployer's own SQLite file says runs where."""
    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            [(_, _, router)] = await store.all_routers(tx.session)
            instances = {i.version: as_instance(i.handle) for i in await store.all_instances(tx.session)}
    finally:
        await db.dispose()
    return as_router(router), instances


async def until_dead(pid: int, timeout: float = 10.0) -> None:
    await eventually(lambda: not processes.is_alive(pid), timeout, f"process {pid} exiting")


async def test_first_deployment_all_at_once_succeeds_and_serves(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    approved = approve(release_for(artifacts["1.0.0"], "1.0.0"))
    async with running(build(settings)):
        await publish_event(settings.nats_url, approved)
        started = await watcher.wait_type("DeploymentStarted", release_id=approved.release_id)
        step = await step_seen(watcher, approved.release_id, 0)
        assert (started["version"], started["stable_version"], started["strategy"], started["steps"]) == (
            "1.0.0", None, "all-at-once", [100],
        )
        assert started["causation_id"] == approved.event_id
        assert (step.weight, step.step_count, step.version, step.stable_version, step.team) == (
            100, 1, "1.0.0", None, "payments",
        )
        assert step.router_url == started["router_url"]
        assert step.metrics_url.endswith("/metrics")
        triggers = approved.release.rollback_triggers
        assert (step.analysis_interval_s, step.max_error_rate, step.min_requests) == (
            1.0, triggers.max_error_rate, triggers.min_requests,
        )

        await publish_event(settings.nats_url, verdict_for(step))
        succeeded = await watcher.wait_type("DeploymentSucceeded", release_id=approved.release_id)
        assert (succeeded["version"], succeeded["previous_version"]) == ("1.0.0", None)

        answers = await served_by(http, started["router_url"])
        assert answers == [(200, "1.0.0")] * 10
        body = (await http.get(f"{started['router_url']}/hello")).json()
        assert body == {"version": "1.0.0", "path": "/hello", "greeting": "hello"}  # no flag is on


async def test_canary_advances_on_pass_and_rolls_back_to_stable(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    async with running(build(settings)):
        await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
        approved = approve(release_for(artifacts["2.0.0"], "2.0.0", strategy=CANARY))
        await publish_event(settings.nats_url, approved)
        started = await watcher.wait_type("DeploymentStarted", release_id=approved.release_id)
        assert (started["stable_version"], started["strategy"], started["steps"]) == ("1.0.0", "canary", [10, 50])
        first = await step_seen(watcher, approved.release_id, 0)
        assert (first.weight, first.step_count, first.stable_version) == (10, 2, "1.0.0")
        router, instances = await recorded(settings)
        assert await routes(http, router) == {"2.0.0": 10, "1.0.0": 90}
        canary_pid = instances["2.0.0"].pid
        assert processes.is_alive(canary_pid)

        passed = verdict_for(first)
        await publish_event(settings.nats_url, passed)
        second = await step_seen(watcher, approved.release_id, 1)
        assert (second.weight, second.step_count, second.causation_id) == (50, 2, passed.event_id)
        assert await routes(http, router) == {"2.0.0": 50, "1.0.0": 50}

        # One deployment per service and environment at a time.
        rival = approve(release_for(artifacts["1.0.0"], "3.0.0"))
        await publish_event(settings.nats_url, rival)
        refused = await outcome(watcher, rival.release_id)
        assert refused["type"] == "DeploymentFailed"
        assert approved.release_id in refused["reason"] and "still in progress" in refused["reason"]

        failed_at = datetime.now(UTC)
        request = RollbackRequested.caused_by(
            second, "rollback-controller", deployment_id=second.deployment_id, bad_version="2.0.0",
            restore_version="1.0.0", reason="2.0.0 failed step 2: error rate 50.0% exceeds 5.0%", failed_at=failed_at,
        )
        await publish_event(settings.nats_url, request)
        completed = await outcome(watcher, approved.release_id)
        assert completed["type"] == "RollbackCompleted"
        assert (completed["bad_version"], completed["restored_version"]) == ("2.0.0", "1.0.0")
        assert completed["root_cause"] == request.reason
        assert datetime.fromisoformat(completed["failed_at"]) == failed_at
        assert completed["causation_id"] == request.event_id

        assert await served_by(http, router.url, 20) == [(200, "1.0.0")] * 20
        assert await routes(http, router) == {"1.0.0": 100}
        await until_dead(canary_pid)  # stopped once the rollback was announced: traffic came back first
        _, instances = await recorded(settings)
        assert set(instances) == {"1.0.0"}


async def test_restart_adopts_running_processes_and_restarts_dead_ones_on_the_same_port(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    async with running(build(settings)):
        await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
    router, instances = await recorded(settings)
    stable = instances["1.0.0"]
    # Stopping the deployer leaves what it runs running.
    assert processes.is_alive(router.pid) and processes.is_alive(stable.pid)

    async with running(build(settings)):
        adopted_router, adopted = await recorded(settings)
        assert adopted_router == router
        assert adopted == {"1.0.0": stable}
        assert await served_by(http, router.url, 5) == [(200, "1.0.0")] * 5

    # Dies while no deployer watches it.
    os.kill(stable.pid, signal.SIGKILL)
    await until_dead(stable.pid)
    assert (await http.get(f"{router.url}/down")).status_code == 502

    async with running(build(settings)):
        same_router, restarted = await recorded(settings)
        assert same_router == router
        revived = restarted["1.0.0"]
        assert revived.pid != stable.pid
        assert processes.is_alive(revived.pid)
        assert (revived.port, revived.artifact_path) == (stable.port, stable.artifact_path)
        pid_file = settings.data_dir / "run" / "pids" / "app.shop.prod.1_0_0.pid"
        assert int(pid_file.read_text()) == revived.pid
        assert await served_by(http, router.url, 5) == [(200, "1.0.0")] * 5


async def test_digest_mismatch_fails_the_deployment_and_the_next_release_still_deploys(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    tampered = approve(release_for(artifacts["1.0.0"], "1.0.0", digest="sha256:" + "0" * 64))
    good = approve(release_for(artifacts["1.0.0"], "1.0.0"))
    async with running(build(settings)):
        await publish_event(settings.nats_url, tampered)
        failed = await outcome(watcher, tampered.release_id)
        assert failed["type"] == "DeploymentFailed"
        assert failed["version"] == "1.0.0"
        assert "digest mismatch" in failed["reason"]
        assert "sha256:" + "0" * 64 in failed["reason"]
        assert not watcher.matching(lambda _s, b: b.get("release_id") == tampered.release_id
                                    and b.get("type") == "DeploymentStarted")

        await publish_event(settings.nats_url, good)
        started = await watcher.wait_type("DeploymentStarted", release_id=good.release_id)
        await step_seen(watcher, good.release_id, 0)
        assert await served_by(http, started["router_url"], 5) == [(200, "1.0.0")] * 5


async def test_an_approval_naming_an_artifact_outside_the_allowed_directories_fails_without_running_it(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"artifact_dirs": [artifacts["1.0.0"].parent]})
    outside = tmp_path / "elsewhere" / "app.pyz"
    outside.parent.mkdir()
    outside.write_bytes(artifacts["1.0.0"].read_bytes())  # the right digest, from a place not allowed
    approval = approve(release_for(outside, "1.0.0"))
    async with running(build(settings)):
        await publish_event(settings.nats_url, approval)
        failed = await outcome(watcher, approval.release_id)
    assert failed["type"] == "DeploymentFailed"
    assert "not allowed" in failed["reason"] and "SLIPWAY_ARTIFACT_DIRS" in failed["reason"]
    assert not watcher.matching(lambda _s, b: b.get("release_id") == approval.release_id
                                and b.get("type") == "DeploymentStarted")


async def test_a_dead_instance_is_restarted_on_its_port_recorded_and_alerted(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    async with running(build(settings)):
        step = await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
        router, instances = await recorded(settings)
        dead = instances["1.0.0"]
        os.kill(dead.pid, signal.SIGKILL)

        restarted = await watcher.wait_type("InstanceRestarted", release_id=step.release_id)
        alert_subject = subjects.alert_subject("warning", "payments", "shop")
        [alert] = await watcher.wait_for(lambda s, b: s == alert_subject and b.get("release_id") == step.release_id)
        assert (restarted["version"], restarted["source"]) == ("1.0.0", "deployer")
        assert str(dead.pid) in restarted["reason"]
        assert (alert["type"], alert["severity"], alert["team"]) == ("AlertRaised", "warning", "payments")
        _, instances = await recorded(settings)
        revived = instances["1.0.0"]
        assert revived.pid != dead.pid and revived.port == dead.port
        assert str(revived.pid) in restarted["reason"]
        assert await served_by(http, router.url, 5) == [(200, "1.0.0")] * 5


async def test_an_artifact_overwritten_after_verification_is_never_run(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with running(build(settings)):
        await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
    router, instances = await recorded(settings)
    stable = instances["1.0.0"]
    # The file the release named is replaced by other bytes, and the instance dies while no deployer runs.
    shutil.copyfile(build_sample("6.6.6", tmp_path / "swapped"), artifacts["1.0.0"])
    os.kill(stable.pid, signal.SIGKILL)
    await until_dead(stable.pid)

    async with running(build(settings)):
        _, instances = await recorded(settings)
        assert instances["1.0.0"].pid != stable.pid
        assert await served_by(http, router.url, 5) == [(200, "1.0.0")] * 5
        assert (await http.get(f"{router.url}/which")).json()["version"] == "1.0.0"
    copy = Path(stable.artifact_path)
    assert copy.parent == settings.data_dir / "deployer-artifacts"
    assert copy.stat().st_mode & 0o222 == 0, "the verified copy is read-only"


async def test_a_changed_copy_is_refused_alerted_and_not_run(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with running(build(settings)):
        step = await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
    router, instances = await recorded(settings)
    stable = instances["1.0.0"]
    copy = Path(stable.artifact_path)
    copy.chmod(0o644)
    shutil.copyfile(build_sample("6.6.6", tmp_path / "swapped"), copy)

    async with running(build(settings)):
        critical = subjects.alert_subject("critical", "payments", "shop")
        [alert] = await watcher.wait_for(lambda s, b: s == critical and b.get("release_id") == step.release_id)
        assert "changed on disk" in alert["summary"] and str(copy) in alert["summary"]
        await until_dead(stable.pid)
        assert processes.marked_groups(settings.data_dir.resolve() / "run") == {router.pid: "router.shop.prod"}
        assert (await http.get(f"{router.url}/orders/1")).status_code == 502


async def test_a_second_approval_of_the_same_release_changes_nothing(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path]
) -> None:
    approved = approve(release_for(artifacts["1.0.0"], "1.0.0"))
    retried = approved.model_copy(update={"event_id": new_event_id()})
    async with running(build(settings)):
        await publish_event(settings.nats_url, approved)
        step = await step_seen(watcher, approved.release_id, 0)
        await publish_event(settings.nats_url, retried)
        await eventually(lambda: processed_by_deployer(settings, retried.event_id), 10, "the retry handled")
        await publish_event(settings.nats_url, verdict_for(step))
        # The relay publishes in commit order: whatever the retry emitted is seen before this.
        assert (await outcome(watcher, approved.release_id))["type"] == "DeploymentSucceeded"

    of_release = [b for b in watcher.matching(lambda _s, b: b.get("release_id") == approved.release_id)]
    distinct = {(b["type"], b["event_id"]) for b in of_release}
    assert sorted(kind for kind, _ in distinct if kind in ("DeploymentStarted", "StepStarted", *OUTCOMES)) == [
        "DeploymentStarted", "DeploymentSucceeded", "StepStarted",
    ]


async def in_deployer_db(settings: Settings, read: Callable[[Transaction], Awaitable[T]]) -> T:
    """`read` in a transaction on the deployer's own SQLite file, as it stands now."""
    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            return await read(tx)
    finally:
        await db.dispose()


async def processed_by_deployer(settings: Settings, event_id: str, consumer: str = ON_APPROVED) -> bool:
    return await in_deployer_db(settings, lambda tx: tx.already_processed(consumer, event_id))


async def test_a_second_approval_of_a_failed_release_does_not_fail_it_again(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path]
) -> None:
    tampered = approve(release_for(artifacts["1.0.0"], "1.0.0", digest="sha256:" + "0" * 64))
    retried = tampered.model_copy(update={"event_id": new_event_id()})
    async with running(build(settings)):
        await publish_event(settings.nats_url, tampered)
        assert (await outcome(watcher, tampered.release_id))["type"] == "DeploymentFailed"
        await publish_event(settings.nats_url, retried)
        await eventually(lambda: processed_by_deployer(settings, retried.event_id), 10, "the retry handled")
        # Anything the retry emitted is published before the next release's events (commit order).
        later = approve(release_for(artifacts["1.0.0"], "1.0.0"))
        await publish_event(settings.nats_url, later)
        await step_seen(watcher, later.release_id, 0)

    failures = {b["event_id"] for b in watcher.matching(lambda _s, b: b.get("release_id") == tampered.release_id
                                                         and b.get("type") == "DeploymentFailed")}
    assert len(failures) == 1


async def hold_of(settings: Settings, release_id: str) -> Hold | None:
    return await in_deployer_db(settings, lambda tx: store.get_hold(tx.session, release_id))


async def held_at(settings: Settings, release_id: str, step_index: int) -> Hold:
    async def found() -> Hold | None:
        hold = await hold_of(settings, release_id)
        return hold if hold is not None and hold.step_index == step_index else None

    return await eventually(found, 10, f"release {release_id} held at step {step_index}")


async def resume(
    people: People, release_id: str, comment: str = "traffic is thin tonight; checked by hand"
) -> CommandResult:
    # dev is a developer of team payments, whose service the tests' releases are (tests.support.releases).
    return await people.send("dev", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=release_id, comment=comment))


async def test_a_held_release_is_resumed_by_a_person_step_by_step_until_it_succeeds(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient, people: People
) -> None:
    async with running(build(settings)):
        rid, first, router, instances = await canary_over_live(settings, watcher, artifacts)

        early = await resume(people, rid)
        assert (early.ok, early.message) == (False, f"release {rid} is not held: step 1 of 2 is still being judged")
        unknown = await resume(people, "nope")
        assert (unknown.ok, unknown.message) == (False, "no release nope is known to the deployer")

        held = verdict_for(first, "inconclusive")
        await publish_event(settings.nats_url, held)
        hold = await held_at(settings, rid, 0)
        assert (hold.reasons, hold.verdict_event_id) == (["inconclusive by test"], held.event_id)
        assert await routes(http, router) == {"2.0.0": 10, "1.0.0": 90}

        people.add("eve", Role.DEVELOPER, teams=("checkout",))
        not_theirs = await people.send("eve", subjects.CMD_RESUME_RELEASE, ResumeRelease(release_id=rid, comment="mine?"))
        reason = (f"person:eve may resume_release only releases of their own teams (checkout); release {rid} is of "
                  "team payments (role sre acts on every team)")
        assert (not_theirs.ok, not_theirs.message) == (False, f"refused: {reason}")
        assert (await watcher.wait_type("CommandRefused", about=rid))["reason"] == reason
        assert await hold_of(settings, rid) == hold and await routes(http, router) == {"2.0.0": 10, "1.0.0": 90}

        answer = await resume(people, rid)
        assert answer.ok, answer.message
        resumed = await watcher.wait_type("ReleaseResumed", release_id=rid)
        assert (resumed["actor"], resumed["comment"], resumed["step_index"], resumed["causation_id"]) == (
            "person:dev", "traffic is thin tonight; checked by hand", 0, held.event_id,
        )
        second = await step_seen(watcher, rid, 1)
        assert (second.weight, second.causation_id) == (50, resumed["event_id"])
        assert await routes(http, router) == {"2.0.0": 50, "1.0.0": 50}
        assert await hold_of(settings, rid) is None
        again = await resume(people, rid)
        assert (again.ok, again.message) == (False, f"release {rid} is not held: step 2 of 2 is still being judged")

        await publish_event(settings.nats_url, verdict_for(second, "inconclusive"))
        await held_at(settings, rid, 1)
        assert (await resume(people, rid, "last step, looks fine")).ok
        done = await outcome(watcher, rid)
        assert (done["type"], done["version"], done["previous_version"]) == ("DeploymentSucceeded", "2.0.0", "1.0.0")
        assert await routes(http, router) == {"2.0.0": 100}
        await until_dead(instances["1.0.0"].pid)
        over = await resume(people, rid)
        assert (over.ok, over.message) == (False, f"release {rid} succeeded: there is nothing to resume")
    assert len(watcher.matching(lambda _s, b: b.get("release_id") == rid and b.get("type") == "ReleaseResumed")) == 2


async def test_a_held_release_rolled_back_is_no_longer_held(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], people: People
) -> None:
    approved = approve(release_for(artifacts["1.0.0"], "1.0.0", strategy=CANARY))
    rid = approved.release_id
    async with running(build(settings)):
        await publish_event(settings.nats_url, approved)
        step = await step_seen(watcher, rid, 0)
        await publish_event(settings.nats_url, verdict_for(step, "inconclusive"))
        await held_at(settings, rid, 0)
        request = RollbackRequested.caused_by(
            step, "rollback-controller", deployment_id=rid, bad_version="1.0.0", restore_version=None,
            reason="aborted by ana: not tonight", failed_at=datetime.now(UTC),
        )
        await publish_event(settings.nats_url, request)
        assert (await outcome(watcher, rid))["type"] == "RollbackCompleted"
        assert await hold_of(settings, rid) is None
        refused = await resume(people, rid)
        assert (refused.ok, refused.message) == (False, f"release {rid} was rolled back: there is nothing to resume")


def takeover_of(router: RouterHandle, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    backends = [{"version": "6.6.6", "url": f"{router.url}/elsewhere", "weight": 100}]
    return {"url": f"{router.admin_url}/routes", "json": {"backends": backends}, "headers": headers}


async def test_a_restarted_deployer_adopts_its_router_and_only_it_can_still_change_the_routes(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    async with running(build(settings)):
        await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
    router, _ = await recorded(settings)
    token_file = settings.data_dir / "run" / "secrets" / "router.shop.prod.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.read_bytes() not in Path(f"/proc/{router.pid}/cmdline").read_bytes()

    async with running(build(settings)):
        adopted, _ = await recorded(settings)
        assert adopted == router  # the same process, not a restart
        assert (await http.put(**takeover_of(router))).status_code == 401
        assert (await http.put(**takeover_of(router, "guessed-" + "x" * 40))).status_code == 401
        assert await routes(http, router) == {"1.0.0": 100}
        approved = approve(release_for(artifacts["2.0.0"], "2.0.0", strategy=CANARY))
        await publish_event(settings.nats_url, approved)
        await step_seen(watcher, approved.release_id, 0)
        assert await routes(http, router) == {"2.0.0": 10, "1.0.0": 90}


async def test_a_refused_router_admin_call_is_recorded_and_alerted_once(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    def refusals_seen() -> list[dict]:
        return watcher.matching(lambda _s, b: b.get("type") == "RouterAdminRefused")

    async with running(build(settings)):
        step = await deploy_live(settings, watcher, artifacts["1.0.0"], "1.0.0")
        router, _ = await recorded(settings)
        assert (await http.put(**takeover_of(router, "w" * 43))).status_code == 401
        refused = await watcher.wait_type("RouterAdminRefused", release_id=step.release_id)
        critical = subjects.alert_subject("critical", "payments", "shop")
        [alert] = await watcher.wait_for(lambda s, b: s == critical and b.get("release_id") == step.release_id)
        assert (refused["service"], refused["environment"], refused["source"]) == ("shop", "prod", "deployer")
        assert (refused["refused"], refused["total_refused"], refused["admin_url"]) == (1, 1, router.admin_url)
        assert (refused["last_reason"], refused["last_remote_address"]) == ("wrong bearer token", "127.0.0.1")
        assert (alert["type"], alert["severity"], alert["team"]) == ("AlertRaised", "critical", "payments")
        assert "without the deployer's token were refused" in alert["summary"] and "w" * 43 not in alert["summary"]

        assert (await http.put(**takeover_of(router))).status_code == 401
        await watcher.wait_for(lambda _s, b: b.get("type") == "RouterAdminRefused" and b["total_refused"] == 2)

    # A restarted deployer reports only refusals it has not reported yet.
    async with running(build(settings)):
        assert (await http.put(**takeover_of(router))).status_code == 401
        await watcher.wait_for(lambda _s, b: b.get("type") == "RouterAdminRefused" and b["total_refused"] == 3)
        assert await routes(http, router) == {"1.0.0": 100}
    assert [(b["refused"], b["total_refused"], b["last_reason"][:2]) for b in refusals_seen()] == [
        (1, 1, "wr"), (1, 2, "no"), (1, 3, "no"),
    ]
