"""People's commands against the services that own them, on a real nats-server with a registry in tmp_path.

Each refusal is answered with its reason, recorded as CommandRefused, and changes nothing else.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import subjects
from contracts.commands import AbortRelease, CommandResult, FreezeEnvironment, ListFreezes, SignedCommand, VerifyAudit
from contracts.events import DeploymentStarted, FreezeDeclared
from libs.client import connected, publish_event, send_command
from libs.settings import Settings
from services.gatekeeper.app import build as gatekeeper
from services.metrics_collector.app import build as collector
from services.rollback_controller.app import build as rollback_controller
from tests.conftest import running
from tests.support.people import People
from tests.support.poll import eventually
from tests.support.watch import EventWatcher


def freeze(reason: str = "black friday") -> FreezeEnvironment:
    now = datetime.now(UTC)
    return FreezeEnvironment(environment="prod", starts_at=now, ends_at=now + timedelta(hours=1), reason=reason)


async def freezes(settings: Settings) -> list[dict[str, Any]]:
    listed = await send_command(settings.nats_url, subjects.CMD_LIST_FREEZES, ListFreezes())
    return listed.data["freezes"]


async def refused(watcher: EventWatcher, command_id: str | None = None, **fields: Any) -> dict[str, Any]:
    if command_id is not None:
        fields["command_id"] = command_id
    return await watcher.wait_type("CommandRefused", **fields)


async def refused_freeze(settings: Settings, watcher: EventWatcher, answer: Any, reason: str,
                         signed: SignedCommand | None = None, actor: str = "unverified") -> dict[str, Any]:
    """The gatekeeper said why, recorded it, declared no freeze and stored none."""
    assert (answer.ok, answer.message) == (False, f"refused: {reason}")
    event = await refused(watcher, signed.command_id if signed else None, reason=reason)
    assert (event["command"], event["actor"], event["source"]) == (subjects.CMD_FREEZE, actor, "gatekeeper")
    assert event["environment"] == "prod"
    if signed is not None:
        assert event["about"] is None and "release_id" not in event  # it named no release, and none is made up
        assert event["claimed_signer"] == signed.signer
        assert SignedCommand.model_validate(event["signed_command"]) == signed
    assert await freezes(settings) == []
    assert not watcher.matching(lambda _s, b: b.get("type") == "FreezeDeclared")
    return event


async def test_an_unsigned_command_is_refused(settings: Settings, watcher: EventWatcher, people: People) -> None:
    async with running(gatekeeper(settings)), connected(settings.nats_url) as nc:
        reply = await nc.request(subjects.CMD_FREEZE, freeze().model_dump_json().encode(), timeout=5)
        event = await refused_freeze(
            settings, watcher, CommandResult.model_validate_json(reply.data),
            "unsigned: freeze is a person's command and must come as a SignedCommand (`slipway` signs it with "
            "your identity; see `slipway identity`)",
        )
        assert event["signed_command"] is None and event["about"] is None  # an unsigned freeze names nothing


async def test_a_bad_signature_is_refused(settings: Settings, watcher: EventWatcher, people: People) -> None:
    signed = people.sign("alice", subjects.CMD_FREEZE, freeze())
    tampered = signed.model_copy(update={"command": freeze("nothing to see").model_dump_json()})
    async with running(gatekeeper(settings)):
        answer = await people.send_signed(tampered)
        await refused_freeze(settings, watcher, answer,
                             "bad signature: it does not verify with person:alice's registered key", tampered)


async def test_a_replayed_command_id_is_refused(settings: Settings, watcher: EventWatcher, people: People) -> None:
    signed = people.sign("alice", subjects.CMD_FREEZE, freeze())
    async with running(gatekeeper(settings)):
        first = await people.send_signed(signed)
        assert first.ok, first.message
        [stored] = await freezes(settings)
        again = await people.send_signed(signed)
        assert again.ok is False
        assert again.message.startswith(f"refused: replayed command_id {signed.command_id}: this service received it at ")
        event = await refused(watcher, signed.command_id)
        assert (event["actor"], event["reason"]) == ("person:alice", again.message.removeprefix("refused: "))
        assert await freezes(settings) == [stored]
    assert len(watcher.matching(lambda _s, b: b.get("type") == "FreezeDeclared")) == 1


async def test_a_command_older_than_the_window_is_refused(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    issued = datetime.now(UTC) - timedelta(seconds=settings.command_window_s + 60)
    signed = people.sign("alice", subjects.CMD_FREEZE, freeze(), issued_at=issued)
    async with running(gatekeeper(settings)):
        answer = await people.send_signed(signed)
        assert answer.message.startswith(f"refused: too old: issued at {issued.isoformat()}, ")
        assert answer.message.endswith("s ago; commands are accepted for 120 s")
        await refused_freeze(settings, watcher, answer, answer.message.removeprefix("refused: "), signed,
                             actor="person:alice")


async def test_a_revoked_key_is_refused_from_the_moment_of_revocation(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    async with running(gatekeeper(settings)):
        before = await people.send("alice", subjects.CMD_FREEZE, freeze("before"))
        assert before.ok, before.message
        [kept] = await freezes(settings)
        revoked = people.store.revoke("person:alice")
        assert revoked.revoked_at is not None
        signed = people.sign("alice", subjects.CMD_FREEZE, freeze("after"))  # with the key she still holds
        answer = await people.send_signed(signed)
        reason = f"person:alice's key was revoked at {revoked.revoked_at.isoformat()}: it is refused since then"
        assert (answer.ok, answer.message) == (False, f"refused: {reason}")
        event = await refused(watcher, signed.command_id, reason=reason)
        assert event["actor"] == "person:alice"
        assert await freezes(settings) == [kept]
    assert len(watcher.matching(lambda _s, b: b.get("type") == "FreezeDeclared")) == 1


async def test_a_role_that_does_not_allow_the_command_is_refused(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    signed = people.sign("dev", subjects.CMD_FREEZE, freeze())
    async with running(gatekeeper(settings)):
        answer = await people.send_signed(signed)
        await refused_freeze(settings, watcher, answer,
                             "role release-manager needed for freeze; person:dev has developer", signed,
                             actor="person:dev")


async def test_without_a_registry_people_s_commands_are_refused(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    unconfigured = settings.model_copy(update={"identity_registry": None})
    async with running(gatekeeper(unconfigured)):
        answer = await people.send("alice", subjects.CMD_FREEZE, freeze())
        await refused_freeze(settings, watcher, answer, "no identity registry is configured "
                             "(SLIPWAY_IDENTITY_REGISTRY): people's commands are refused")


def started(release_id: str, team: str) -> DeploymentStarted:
    return DeploymentStarted(
        release_id=release_id, service="shop", environment="prod", actor="ci:test", source="deployer",
        version="2.0.0", stable_version="1.0.0", strategy="canary", steps=[10, 50], router_url="http://127.0.0.1:1",
        commit_sha="abc1234", committed_at=datetime.now(UTC), team=team,
    )


async def test_a_developer_may_not_abort_another_team_s_release_but_an_sre_may(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    release = started("checkout-2.0.0", team="checkout")
    abort = AbortRelease(release_id=release.release_id, reason="errors")
    async with running(rollback_controller(settings)):
        await publish_event(settings.nats_url, release)
        # The release is in flight once the controller answers anything but "no release ... is known".
        async def answered() -> Any:
            answer = await people.send("dev", subjects.CMD_ABORT_RELEASE, abort)
            return None if "is known" in answer.message else answer

        answer = await eventually(answered, 10, "the release known to the rollback-controller")
        reason = ("person:dev may abort_release only releases of their own teams (payments); release checkout-2.0.0 "
                  "is of team checkout (role sre acts on every team)")
        assert (answer.ok, answer.message) == (False, f"refused: {reason}")
        event = await refused(watcher, reason=reason)
        assert (event["about"], event["environment"], event["correlation_id"]) == ("checkout-2.0.0", "prod", "checkout-2.0.0")
        assert (event["actor"], event["command"]) == ("person:dev", subjects.CMD_ABORT_RELEASE)
        assert not watcher.matching(lambda _s, b: b.get("type") == "RollbackRequested")

        # Addressed to a team the release is not of (the subject the server checked a developer's rights on),
        # the command is refused by the owning service even from someone who could act on every team.
        misaddressed = people.sign("sam", f"{subjects.CMD_ABORT_RELEASE}.payments.shop", abort)
        answer = await people.send_signed(misaddressed)
        assert not answer.ok and "sent for team payments" in answer.message and "of team checkout" in answer.message
        assert not watcher.matching(lambda _s, b: b.get("type") == "RollbackRequested")

        by_sre = people.sign("sam", f"{subjects.CMD_ABORT_RELEASE}.checkout.shop", abort)
        done = await people.send_signed(by_sre)
        assert done.ok, done.message
        request = await watcher.wait_type("RollbackRequested", release_id=release.release_id)
        assert request["actor"] == "person:sam"
        assert request["reason"] == "aborted by person:sam: errors"
        assert SignedCommand.model_validate(request["signed_command"]) == by_sre


async def test_the_audit_keeps_the_signed_command_and_detects_a_forged_one(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    async with running(gatekeeper(settings)), running(collector(settings)):
        answer = await people.send("alice", subjects.CMD_FREEZE, freeze())
        assert answer.ok, answer.message
        declared = FreezeDeclared.model_validate(await watcher.wait_type("FreezeDeclared"))
        assert declared.actor == "person:alice" and declared.signed_command is not None

        async def audit(records: int) -> Any:
            result = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
            return result if result.data["records"] >= records else None

        intact = await eventually(lambda: audit(1), 10, "the declaration logged")
        assert intact.ok, intact.message
        assert (intact.data["signed_commands"], intact.data["unverified_count"]) == (1, 0)

        # Someone with access to the bus publishes a declaration that claims alice's signature.
        forged_proof = declared.signed_command.model_copy(update={"command": freeze("forged").model_dump_json()})
        forged = declared.model_copy(update={"event_id": "01FORGEDDECLARATION0000000", "signed_command": forged_proof})
        await publish_event(settings.nats_url, forged)
        broken = await eventually(lambda: audit(2), 10, "the forged declaration logged")
        assert broken.ok is False
        [bad] = broken.data["unverified_commands"]
        assert (bad["type"], bad["event_id"]) == ("FreezeDeclared", forged.event_id)
        assert bad["reason"] == "bad signature: it does not verify with person:alice's registered key"
        assert broken.data["first_bad_seq"] is None  # the chain itself is intact: it logged what was sent
        assert f"record {bad['seq']} (FreezeDeclared {forged.event_id})" in broken.message

        # A genuine signature carried over to an event it did not cause is caught too.
        moved = declared.model_copy(update={"event_id": "01MOVEDDECLARATION00000000", "environment": "staging"})
        await publish_event(settings.nats_url, moved)
        both = await eventually(lambda: audit(3), 10, "the moved declaration logged")
        assert [u["event_id"] for u in both.data["unverified_commands"]] == [forged.event_id, moved.event_id]
        assert both.data["unverified_commands"][1]["reason"] == (
            "the signed command names environment 'prod', the event 'staging'"
        )


@pytest.mark.parametrize("body", [b"", b"{not json", b'{"signature": "x"}'])
async def test_unreadable_requests_are_refused_and_the_service_keeps_answering(
    settings: Settings, watcher: EventWatcher, people: People, body: bytes
) -> None:
    async with running(gatekeeper(settings)), connected(settings.nats_url) as nc:
        reply = json.loads((await nc.request(subjects.CMD_FREEZE, body, timeout=5)).data)
        assert reply["ok"] is False and reply["message"].startswith(("refused: unsigned", "refused: invalid"))
        await refused(watcher, reason=reply["message"].removeprefix("refused: "))
        assert (await people.send("alice", subjects.CMD_FREEZE, freeze())).ok


async def test_a_deeply_nested_request_is_refused_as_unsigned(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    async with running(gatekeeper(settings)), connected(settings.nats_url) as nc:
        reply = json.loads((await nc.request(subjects.CMD_FREEZE, b"[" * 50_000, timeout=5)).data)
        assert reply["ok"] is False and reply["message"].startswith("refused: unsigned: freeze")
        assert (await people.send("alice", subjects.CMD_FREEZE, freeze())).ok
