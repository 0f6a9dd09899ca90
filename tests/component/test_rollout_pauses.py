"""The gatekeeper pauses the rollouts in flight where a halting incident opens and resumes them when the last one
is resolved: against a real nats-server and SQLite, once per pause even across a restart."""

from pathlib import Path

from contracts import subjects
from contracts.events import DeploymentSucceeded
from contracts.governance import IncidentSeverity, OpenIncident, ResolveIncident
from libs.client import publish_event
from libs.settings import Settings
from services.gatekeeper.app import build
from tests.component.test_release_workflow import artifact, verified  # noqa: F401 - artifact is a fixture
from tests.conftest import running
from tests.support.people import People
from tests.support.watch import EventWatcher


def of_type(kind: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, body: body.get("type") == kind


async def open_incident(people: People, environment: str, severity: IncidentSeverity) -> str:
    opened = await people.send("sam", subjects.CMD_OPEN_INCIDENT, OpenIncident(
        environment=environment, severity=severity, summary=f"{severity.value} in {environment}"))
    assert opened.ok, opened.message
    return opened.data["incident_id"]


async def resolve(people: People, incident_id: str) -> None:
    resolved = await people.send("sam", subjects.CMD_RESOLVE_INCIDENT, ResolveIncident(incident_id=incident_id))
    assert resolved.ok, resolved.message


async def test_an_incident_pauses_rollouts_in_its_environment_and_the_last_resolve_resumes_them(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People  # noqa: F811
) -> None:
    settings = settings.model_copy(update={"gate_tick_s": 0.2})
    shop, basket = verified(artifact, "2.0.0"), verified(artifact, "2.0.0", service="basket")
    elsewhere = verified(artifact, "2.0.0", service="search", environment="staging")
    async with running(build(settings)):
        for release in (shop, basket, elsewhere):
            await publish_event(settings.nats_url, release)
            await watcher.wait_type("ReleaseApproved", release_id=release.release_id)  # in flight from here on

        minor = await open_incident(people, "prod", IncidentSeverity.WARNING)  # below halt_at: error
        first = await open_incident(people, "prod", IncidentSeverity.ERROR)
        paused = await watcher.wait_for(of_type("RolloutPaused"), count=2)
        assert sorted(p["release_id"] for p in paused) == sorted([shop.release_id, basket.release_id])
        for pause in paused:
            assert (pause["incident_id"], pause["incidents"], pause["actor"], pause["environment"]) == \
                (first, [first], "person:sam", "prod")
            assert pause["reason"].startswith(f"incident {first} (error) open in prod: error in prod; the rollout holds")
        second = await open_incident(people, "prod", IncidentSeverity.CRITICAL)
        await watcher.wait_type("IncidentOpened", incident_id=second)

    # A restarted gatekeeper knows what it paused: no second RolloutPaused, and it still resumes them.
    async with running(build(settings)):
        # basket finished while paused: there is nothing left to resume for it.
        await publish_event(settings.nats_url, DeploymentSucceeded.caused_by(
            basket, "deployer", version="2.0.0", previous_version=None))
        await resolve(people, first)
        await resolve(people, minor)
        await watcher.wait_type("IncidentResolved", incident_id=minor)
        assert not watcher.matching(of_type("RolloutResumed")), "resumed while a critical incident was still open"
        await resolve(people, second)
        resumed = await watcher.wait_type("RolloutResumed", release_id=shop.release_id)
    assert (resumed["incident_id"], resumed["incidents"], resumed["actor"]) == \
        (second, [first, second], "person:sam")
    assert resumed["reason"] == f"no incident halts prod any more: {second} was resolved by person:sam"
    assert len(watcher.matching(of_type("RolloutPaused"))) == 2
    assert [r["release_id"] for r in watcher.matching(of_type("RolloutResumed"))] == [shop.release_id]
