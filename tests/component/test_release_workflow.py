"""The gatekeeper's release workflow against a real nats-server: releases that wait for people, for a slot,
past a deadline; approvals and rejections as signed commands, each refusal with its reason and an event."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import ApproveRelease, ListApprovals, RejectRelease
from contracts.governance import ApproveChangeRecord, CreateChangeRecord
from contracts.events import ArtifactVerified, DeploymentSucceeded
from contracts.identity import Role
from contracts.release import ReleaseSpec
from libs.client import publish_event, send_command
from libs.settings import Settings
from services.gatekeeper.app import build
from tests.conftest import running
from tests.support.people import People
from tests.support.policies import policy_for_tests
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"artifact bytes")
    return path


def verified(artifact: Path, version: str, service: str = "shop", **spec: object) -> ArtifactVerified:
    request = release_for(artifact, version, service=service, **spec)
    return ArtifactVerified.caused_by(
        request, "artifact-verifier", release=ReleaseSpec.model_validate(request.model_dump()), size_bytes=1
    )


async def approved_change(people: People, creator: str, approver: str, **window: object) -> str:
    now = datetime.now(UTC)
    window = {"starts_at": now - timedelta(minutes=5), "ends_at": now + timedelta(hours=2), **window}
    created = await people.send(creator, subjects.CMD_CREATE_CHANGE, CreateChangeRecord(summary="shop 2.0", **window))
    assert created.ok, created.message
    number = created.data["number"]
    if approver:
        given = await people.send(approver, subjects.CMD_APPROVE_CHANGE, ApproveChangeRecord(number=number, comment="ok"))
        assert given.ok, given.message
    return number


def of(release_id: str, kind: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, b: b.get("release_id") == release_id and b.get("type") == kind


async def test_a_major_release_waits_for_three_sign_offs_then_goes(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People
) -> None:
    people.add("olga", Role.OPERATIONS)
    people.add("sven", Role.SECURITY)
    people.add("bea", Role.BUSINESS)
    people.add("carl", Role.CAB_MEMBER)
    people.add("cmo", Role.CHANGE_MANAGER)
    async with running(build(settings)):
        # A major release into prod links its own change record (changes.yaml), approved by a change manager.
        number = await approved_change(people, "sam", "cmo")
        major = verified(artifact, "2.0.0", release_class="major", change=number,
                         known_issues=[{"summary": "slow first login", "workaround": "retry"}])
        await publish_event(settings.nats_url, major)
        [waiting] = await watcher.wait_for(of(major.release_id, "ReleaseWaiting"))
        assert waiting["waiting_for"] == "pending-approval" and waiting["release_class"] == "major"
        assert len(waiting["outstanding"]) == 3 and all("sign-off" in need for need in waiting["outstanding"])

        listed = await send_command(settings.nats_url, subjects.CMD_LIST_APPROVALS, ListApprovals())
        [row] = listed.data["approvals"]
        assert (row["release_id"], row["release_class"], len(row["needs"])) == (major.release_id, "major", 3)

        # A role the release does not wait for is refused, with the reason and an event; nothing changes.
        wrong = await people.send("carl", subjects.CMD_APPROVE, ApproveRelease(release_id=major.release_id, comment="ok"))
        assert not wrong.ok and "person:carl has cab-member" in wrong.message
        refused = await watcher.wait_type("CommandRefused", actor="person:carl")
        assert refused["about"] == major.release_id and refused["command"] == subjects.CMD_APPROVE

        for name in ("olga", "sven"):
            answer = await people.send(name, subjects.CMD_APPROVE, ApproveRelease(release_id=major.release_id,
                                                                                 comment=f"{name} signs off"))
            assert answer.ok and answer.data["state"] == "pending-approval", answer.message
        twice = await people.send("olga", subjects.CMD_APPROVE, ApproveRelease(release_id=major.release_id, comment="again"))
        assert not twice.ok and "person:olga has already approved" in twice.message
        assert not watcher.matching(of(major.release_id, "ReleaseApproved"))

        last = await people.send("bea", subjects.CMD_APPROVE, ApproveRelease(release_id=major.release_id, comment="go"))
        assert last.ok and last.data["state"] == "approved", last.message
        approved = await watcher.wait_type("ReleaseApproved", release_id=major.release_id)
        assert approved["approvers"] == ["person:bea", "person:olga", "person:sven"]
        recorded = watcher.matching(of(major.release_id, "ApprovalRecorded"))
        assert [(r["actor"], r["signed_command"]["signer"]) for r in recorded] == [
            ("person:olga", "person:olga"), ("person:sven", "person:sven"), ("person:bea", "person:bea")]


async def test_the_requester_can_never_approve_and_a_rejection_ends_the_release(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People
) -> None:
    people.add("olga", Role.OPERATIONS, Role.SECURITY, Role.BUSINESS)
    people.add("cmo", Role.CHANGE_MANAGER)
    async with running(build(settings)):
        mine = verified(artifact, "3.0.0", release_class="major", known_issues=[], requested_by="person:olga",
                        change=await approved_change(people, "sam", "cmo"))
        await publish_event(settings.nats_url, mine)
        await watcher.wait_for(of(mine.release_id, "ReleaseWaiting"))
        answer = await people.send("olga", subjects.CMD_APPROVE, ApproveRelease(release_id=mine.release_id, comment="me"))
        assert not answer.ok
        assert answer.message == f"refused: four eyes: person:olga requested release {mine.release_id} and may not approve it"
        await watcher.wait_type("CommandRefused", about=mine.release_id)

        no = await people.send("alice", subjects.CMD_REJECT, RejectRelease(release_id=mine.release_id,
                                                                          comment="not during the audit"))
        assert no.ok, no.message
        rejected = await watcher.wait_type("ReleaseRejected", release_id=mine.release_id)
        assert (rejected["actor"], rejected["comment"]) == ("person:alice", "not during the audit")
        late = await people.send("sam", subjects.CMD_APPROVE, ApproveRelease(release_id=mine.release_id, comment="hm"))
        assert not late.ok and "is not waiting: it was rejected" in late.message
        unknown = await people.send("sam", subjects.CMD_APPROVE, ApproveRelease(release_id="nope-1", comment="hm"))
        assert not unknown.ok and "no release nope-1 has reached the gatekeeper" in unknown.message
    assert not watcher.matching(of(mine.release_id, "ReleaseApproved"))


async def test_a_release_waits_for_a_slot_and_takes_it_when_the_deployment_ahead_ends(
    settings: Settings, watcher: EventWatcher, artifact: Path, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"policy_dir": policy_for_tests(tmp_path / "one-slot", concurrency=1)})
    first, second = verified(artifact, "1.0.0"), verified(artifact, "1.0.0", service="basket")
    async with running(build(settings)):
        await publish_event(settings.nats_url, first)
        await watcher.wait_type("ReleaseApproved", release_id=first.release_id)
        await publish_event(settings.nats_url, second)
        queued = await watcher.wait_type("ReleaseWaiting", release_id=second.release_id)
        assert queued["waiting_for"] == "waiting-for-slot" and "position 1 in the queue" in queued["summary"]
        await publish_event(settings.nats_url, DeploymentSucceeded.caused_by(first, "deployer", version="1.0.0",
                                                                             previous_version=None))
        await watcher.wait_type("ReleaseApproved", release_id=second.release_id)


async def test_a_release_that_waits_past_its_deadline_expires(
    settings: Settings, watcher: EventWatcher, artifact: Path, tmp_path: Path
) -> None:
    policy = policy_for_tests(tmp_path / "short", deadlines="approval: 1s\n")
    settings = settings.model_copy(update={"policy_dir": policy, "gate_tick_s": 0.2})
    major = verified(artifact, "4.0.0", release_class="major", known_issues=[], environment="staging")
    async with running(build(settings)):
        await publish_event(settings.nats_url, major)
        expired = await watcher.wait_type("ReleaseExpired", release_id=major.release_id, timeout=10)
    assert expired["waited_for"] == "pending-approval" and "deadline" in expired["reason"]


async def test_a_release_waits_for_its_change_record_and_is_refused_without_one(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People, tmp_path: Path
) -> None:
    # Policy may ask standard releases for change records too (changes.yaml).
    policy = policy_for_tests(tmp_path / "changes", changes="environments: [prod]\nclasses: [standard, major]\n")
    settings = settings.model_copy(update={"policy_dir": policy})
    people.add("cmo", Role.CHANGE_MANAGER)
    async with running(build(settings)):
        nameless = verified(artifact, "5.0.0")
        await publish_event(settings.nats_url, nameless)
        blocked = await watcher.wait_type("ReleaseBlocked", release_id=nameless.release_id)
        assert any("standard release to prod must name an approved change record" in r for r in blocked["reasons"])

        number = await approved_change(people, "sam", approver="")  # created, not approved yet
        named = verified(artifact, "5.0.1", change=number, service="basket")
        await publish_event(settings.nats_url, named)
        waiting = await watcher.wait_type("ReleaseWaiting", release_id=named.release_id)
        assert waiting["waiting_for"] == "waiting-for-change"
        assert f"change {number} is not approved" in waiting["summary"]
        given = await people.send("cmo", subjects.CMD_APPROVE_CHANGE, ApproveChangeRecord(number=number, comment="go"))
        assert given.ok, given.message
        await watcher.wait_type("ReleaseApproved", release_id=named.release_id)


async def test_policy_reload_refuses_a_broken_file_keeps_the_last_good_one_and_records_a_good_one(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People
) -> None:
    from contracts.commands import ReloadPolicy

    async with running(build(settings)):
        (settings.policy_dir / "concurrency.yaml").write_text("default: 100\nenvironmentz: {prod: 1}\n")
        broken = await people.send("alice", subjects.CMD_RELOAD_POLICY, ReloadPolicy(reason="typo test"))
        assert not broken.ok and "concurrency.yaml:2" in broken.message and "environmentz" in broken.message
        assert "the last good one stays" in broken.message
        await watcher.wait_type("CommandRefused", command=subjects.CMD_RELOAD_POLICY)
        # The last good policy still decides.
        still = verified(artifact, "6.0.0")
        await publish_event(settings.nats_url, still)
        await watcher.wait_type("ReleaseApproved", release_id=still.release_id)

        (settings.policy_dir / "concurrency.yaml").write_text("default: 50\n")
        good = await people.send("alice", subjects.CMD_RELOAD_POLICY, ReloadPolicy(reason="raise the limit"))
        assert good.ok, good.message
        reloaded = await watcher.wait_type("PolicyReloaded")
        assert (reloaded["actor"], reloaded["reason"]) == ("person:alice", "raise the limit")
        assert reloaded["fingerprint"] == good.data["fingerprint"] and "concurrency.yaml" in reloaded["files"]
        by_sre = await people.send("sam", subjects.CMD_RELOAD_POLICY, ReloadPolicy())
        assert not by_sre.ok and "role release-manager needed" in by_sre.message
