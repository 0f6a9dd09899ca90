"""The gatekeeper alone against a real nats-server and its own SQLite file."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import FreezeEnvironment, LiftFreeze, ListFreezes, SignedCommand
from contracts.identity import Role
from contracts.events import ArtifactVerified
from contracts.release import ReleaseSpec
from libs.client import connected, publish_event, publish_raw, send_command
from libs.settings import Settings
from services.gatekeeper.app import build
from tests.conftest import running
from tests.support.people import People
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"artifact bytes")
    return path


def verified(artifact: Path, version: str = "1.0.0", environment: str = "prod", service: str = "shop") -> ArtifactVerified:
    # Policy lets one deployment of a service into an environment at a time, and no deployer ends one
    # here: a test that needs a second approval in the same place uses another service.
    request = release_for(artifact, version, environment=environment, service=service)
    return ArtifactVerified.caused_by(
        request, "artifact-verifier", release=ReleaseSpec.model_validate(request.model_dump()), size_bytes=1
    )


def decided(release_id: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, b: b.get("release_id") == release_id and b.get("type") in ("ReleaseApproved", "ReleaseBlocked")


def waiting(release_id: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, b: b.get("release_id") == release_id and b.get("type") == "ReleaseWaiting"


async def test_verified_release_is_approved_with_reasons(settings: Settings, watcher: EventWatcher, artifact: Path) -> None:
    event = verified(artifact)
    async with running(build(settings)):
        await publish_event(settings.nats_url, event)
        [approved] = await watcher.wait_for(decided(event.release_id))
    assert approved["type"] == "ReleaseApproved"
    # Every rule that applied says why; the tests' catalogue gives shop a low-risk profile, pre-approved.
    assert "approvals: no approval needed: pre-approved by policy" in approved["reasons"]
    assert approved["risk"]["level"] == "low" and {f["factor"] for f in approved["risk"]["factors"]} >= {"tier", "reach"}
    assert {r["rule"] for r in approved["rules"]} >= {"risk", "approvals", "windows", "concurrency"}
    assert approved["causation_id"] == event.event_id
    assert approved["source"] == "gatekeeper"
    assert ReleaseSpec.model_validate(approved["release"]) == event.release


async def test_freeze_blocks_releases_until_lifted(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People
) -> None:
    now = datetime.now(UTC)
    command = FreezeEnvironment(
        environment="prod", starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1),
        reason="black friday",
    )
    people.add("bob", Role.RELEASE_MANAGER)
    async with running(build(settings)):
        result = await people.send("alice", subjects.CMD_FREEZE, command)
        assert result.ok, result.message
        freeze_id = result.data["freeze_id"]
        declared = await watcher.wait_type("FreezeDeclared", freeze_id=freeze_id)
        assert (declared["environment"], declared["actor"], declared["reason"]) == ("prod", "person:alice", "black friday")
        assert SignedCommand.model_validate(declared["signed_command"]).signer == "person:alice"

        during = verified(artifact, "1.0.0")
        elsewhere = verified(artifact, "1.0.0", environment="staging")
        await publish_event(settings.nats_url, during)
        await publish_event(settings.nats_url, elsewhere)
        # The committed policy queues a release behind a freeze (windows.yaml freeze_action: queue).
        [queued] = await watcher.wait_for(waiting(during.release_id))
        assert queued["waiting_for"] == "queued-for-window"
        reason = queued["summary"]
        assert freeze_id in reason and "person:alice" in reason and "black friday" in reason
        assert datetime.fromisoformat(queued["until"]) == command.ends_at
        assert not watcher.matching(decided(during.release_id))
        [other] = await watcher.wait_for(decided(elsewhere.release_id))
        assert other["type"] == "ReleaseApproved"  # a freeze on prod does not stop staging

        listed = await send_command(settings.nats_url, subjects.CMD_LIST_FREEZES, ListFreezes(environment="prod"))
        assert listed.ok
        [row] = listed.data["freezes"]
        assert (row["freeze_id"], row["active"], row["actor"]) == (freeze_id, True, "person:alice")
        none_on_staging = await send_command(settings.nats_url, subjects.CMD_LIST_FREEZES, ListFreezes(environment="staging"))
        assert none_on_staging.data["freezes"] == []

        lifted = await people.send("bob", subjects.CMD_LIFT_FREEZE, LiftFreeze(freeze_id=freeze_id))
        assert lifted.ok, lifted.message
        freeze_lifted = await watcher.wait_type("FreezeLifted", freeze_id=freeze_id)
        assert freeze_lifted["actor"] == "person:bob"
        again = await people.send("bob", subjects.CMD_LIFT_FREEZE, LiftFreeze(freeze_id=freeze_id))
        assert not again.ok and freeze_id in again.message
        [went] = await watcher.wait_for(decided(during.release_id))  # the queued release goes once it is lifted
        assert went["type"] == "ReleaseApproved"

        after = verified(artifact, "1.0.1", service="basket")
        await publish_event(settings.nats_url, after)
        [approved] = await watcher.wait_for(decided(after.release_id))
        assert approved["type"] == "ReleaseApproved"
        listed = await send_command(settings.nats_url, subjects.CMD_LIST_FREEZES, ListFreezes())
        assert listed.data["freezes"] == []


async def test_freeze_given_in_another_timezone_covers_the_same_instant(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People
) -> None:
    # 14:00+02:00 is 12:00 UTC: storing the wall clock without its offset would shift the window.
    plus_two = timezone(timedelta(hours=2))
    now = datetime.now(UTC)
    command = FreezeEnvironment(
        environment="prod", starts_at=(now - timedelta(minutes=10)).astimezone(plus_two),
        ends_at=(now + timedelta(minutes=30)).astimezone(plus_two), reason="release train",
    )
    async with running(build(settings)):
        result = await people.send("alice", subjects.CMD_FREEZE, command)
        assert result.ok, result.message
        listed = await send_command(settings.nats_url, subjects.CMD_LIST_FREEZES, ListFreezes(environment="prod"))
        [row] = listed.data["freezes"]
        assert row["active"] is True
        assert datetime.fromisoformat(row["ends_at"]) == command.ends_at
        event = verified(artifact)
        await publish_event(settings.nats_url, event)
        [decision] = await watcher.wait_for(waiting(event.release_id))
    assert decision["waiting_for"] == "queued-for-window"
    assert result.data["freeze_id"] in decision["summary"]


async def test_invalid_freeze_is_refused_with_the_problem_and_the_service_keeps_answering(
    settings: Settings, people: People
) -> None:
    now = datetime.now(UTC)
    backwards = FreezeEnvironment.model_construct(
        environment="prod", starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=1), reason="oops",
    )
    async with running(build(settings)):
        answer = await people.send("alice", subjects.CMD_FREEZE, backwards)
        assert answer.ok is False
        assert "ends_at must be after starts_at" in answer.message

        async with connected(settings.nats_url) as nc:
            not_json = await nc.request(subjects.CMD_FREEZE, b"{not json", timeout=5)
            assert json.loads(not_json.data)["ok"] is False

        over = FreezeEnvironment(
            environment="prod", starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1),
            reason="too late",
        )
        refused = await people.send("alice", subjects.CMD_FREEZE, over)
        assert not refused.ok
        assert "already be over" in refused.message

        unknown = await people.send("alice", subjects.CMD_LIFT_FREEZE, LiftFreeze(freeze_id="frz-nope"))
        assert not unknown.ok and "frz-nope" in unknown.message

        listed = await send_command(settings.nats_url, subjects.CMD_LIST_FREEZES, ListFreezes())
        assert listed.ok
        assert listed.data["freezes"] == []  # nothing invalid was stored


async def test_redelivered_event_is_decided_once(settings: Settings, watcher: EventWatcher, artifact: Path) -> None:
    first = verified(artifact, "1.0.0")
    marker = verified(artifact, "1.0.1", service="basket")
    async with running(build(settings)):
        await publish_event(settings.nats_url, first)
        await watcher.wait_type("ReleaseApproved", release_id=first.release_id)
        # Same event_id, different Nats-Msg-Id: JetStream stores it again, only the inbox can tell.
        await publish_raw(settings.nats_url, first.subject, first.model_dump_json().encode(), {"Nats-Msg-Id": "other"})
        await publish_event(settings.nats_url, marker)
        await watcher.wait_type("ReleaseApproved", release_id=marker.release_id)
    assert len(watcher.matching(decided(first.release_id))) == 1
    assert len(watcher.matching(decided(marker.release_id))) == 1


async def test_a_release_is_decided_once_whatever_the_event_id(
    settings: Settings, watcher: EventWatcher, artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = verified(artifact, "1.0.0")
    # A second ArtifactVerified of the same release (an upstream retry): a new event id, same release id.
    again = first.model_copy(update={"event_id": "01SECONDVERIFICATION000000"})
    marker = verified(artifact, "1.0.1", service="basket")
    async with running(build(settings)):
        await publish_event(settings.nats_url, first)
        await watcher.wait_for(decided(first.release_id))
        await publish_event(settings.nats_url, again)
        await publish_event(settings.nats_url, marker)  # one consumer, in order: after the marker, `again` was handled
        await watcher.wait_for(decided(marker.release_id))
    [decision] = watcher.matching(decided(first.release_id))
    assert decision["causation_id"] == first.event_id
    assert f"release {first.release_id} was already decided: ignoring ArtifactVerified {again.event_id}" in caplog.text


async def test_a_release_naming_no_strategy_is_approved_with_the_recommended_one_and_says_so(
    settings: Settings, watcher: EventWatcher, artifact: Path
) -> None:
    event = verified(artifact, service="unnamed-strategy")
    event = event.model_copy(update={"release": event.release.model_copy(update={"strategy": None})})
    async with running(build(settings)):
        await publish_event(settings.nats_url, event)
        [approved] = await watcher.wait_for(decided(event.release_id))
    assert approved["type"] == "ReleaseApproved", approved
    # The tests' catalogue: every payments service is tier 4, internal, few users, with no delivery profile.
    assert (approved["strategy_source"], approved["release"]["strategy"]["kind"]) == ("recommended", "all-at-once")
    assert approved["strategy_reasons"][0] == ("unnamed-strategy names no strategy: all-at-once is recommended because "
                                               "it is experimental (tier 4) and few users see it: speed over caution")
    assert approved["strategy_reasons"][-1].startswith("assumed, as its delivery profile does not say: ")
