"""A person's signed command: canonical bytes, signature, window, revocation, rights. No NATS, no database."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import (
    SIGNATURE_DOMAIN, AbortRelease, FreezeEnvironment, LiftFreeze, ResumeRelease, SignedCommand,
)
from contracts.identity import Kind, Role
from contracts.rights import PEOPLE_COMMANDS, required_roles, role_refusal, team_refusal
from libs.identities import IdentityStore
from libs.command_signing import audit_refusal, command_refusal, sign_command

NOW = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=120)
LIFT = LiftFreeze(freeze_id="frz-1")


@pytest.fixture
def store(tmp_path: Path) -> IdentityStore:
    store = IdentityStore(tmp_path / "credentials")
    store.create(Kind.PERSON, "alice", (Role.RELEASE_MANAGER,), ("payments",))
    store.create(Kind.PERSON, "bob", (Role.DEVELOPER,), ("checkout",))
    store.create(Kind.SERVICE, "gatekeeper")
    return store


def signed_by(store: IdentityStore, name: str, subject: str = subjects.CMD_LIFT_FREEZE, command=LIFT,  # noqa: ANN001
              at: datetime = NOW, kind: Kind = Kind.PERSON) -> SignedCommand:
    return sign_command(subject, command, f"{kind.value}:{name}", store.seed(kind, name), issued_at=at)


def refusal(store: IdentityStore, signed: SignedCommand, subject: str = subjects.CMD_LIFT_FREEZE,
            now: datetime = NOW) -> str | None:
    return command_refusal(signed, subject, store.get(signed.signer), now, WINDOW)


def test_canonical_bytes_bind_every_part_in_order(store: IdentityStore) -> None:
    signed = signed_by(store, "alice")
    assert signed.signed_bytes() == SIGNATURE_DOMAIN + (
        f"{subjects.CMD_LIFT_FREEZE}\n{signed.command_id}\n2030-01-31T12:00:00+00:00\nperson:alice\n"
        '{"freeze_id":"frz-1"}'
    ).encode()


def test_a_signed_command_survives_the_wire_and_verifies(store: IdentityStore) -> None:
    sent = signed_by(store, "alice")
    received = SignedCommand.model_validate_json(sent.model_dump_json())
    assert refusal(store, received) is None
    assert LiftFreeze.model_validate_json(received.command) == LIFT


def test_the_same_instant_in_another_zone_is_the_same_signed_bytes(store: IdentityStore) -> None:
    signed = signed_by(store, "alice")
    elsewhere = signed.model_copy(update={"issued_at": NOW.astimezone(timezone(timedelta(hours=2)))})
    assert refusal(store, elsewhere) is None


@pytest.mark.parametrize("change", [
    {"command": '{"freeze_id":"frz-2"}'},
    {"command": '{"freeze_id": "frz-1"}'},  # the text is signed, not its meaning
    {"command_id": "01J00000000000000000000000"},
    {"issued_at": NOW + timedelta(seconds=1)},
])
def test_changing_any_signed_part_breaks_the_signature(store: IdentityStore, change: dict) -> None:
    tampered = signed_by(store, "alice").model_copy(update=change)
    assert refusal(store, tampered) == "bad signature: it does not verify with person:alice's registered key"


def test_a_signature_by_another_key_is_bad(store: IdentityStore) -> None:
    by_bob = signed_by(store, "bob")
    claimed_alice = by_bob.model_copy(update={"signer": "person:alice"})
    assert refusal(store, claimed_alice) == "bad signature: it does not verify with person:alice's registered key"


def test_a_command_sent_to_another_subject_than_signed_for_is_refused(store: IdentityStore) -> None:
    signed = signed_by(store, "alice")
    assert refusal(store, signed, subjects.CMD_FREEZE) == (
        f"bad signature: the command was signed for {subjects.CMD_LIFT_FREEZE}, not {subjects.CMD_FREEZE}"
    )


def test_unknown_signer_and_non_person_are_refused(store: IdentityStore) -> None:
    signed = signed_by(store, "alice").model_copy(update={"signer": "person:mallory"})
    assert refusal(store, signed) == "unknown identity person:mallory: it is not in the identity registry"
    service = signed_by(store, "gatekeeper", kind=Kind.SERVICE)
    assert refusal(store, service) == "service:gatekeeper is not a person: only people send these commands"


def test_revocation_time_decides(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    store.create(Kind.PERSON, "carol", (Role.SRE,))
    seed = store.seed(Kind.PERSON, "carol")  # revoking deletes the seed file
    signed = sign_command(subjects.CMD_ABORT_RELEASE, LIFT, "person:carol", seed, issued_at=NOW)
    revoked_at = NOW + timedelta(seconds=10)
    store.revoke("person:carol", at=revoked_at)
    check = lambda now: command_refusal(signed, subjects.CMD_ABORT_RELEASE, store.get("person:carol"), now, WINDOW)  # noqa: E731
    assert check(revoked_at - timedelta(microseconds=1)) is None
    assert check(revoked_at) == f"person:carol's key was revoked at {revoked_at.isoformat()}: it is refused since then"
    # The audit still accepts what was signed before the revocation, and only that.
    assert audit_refusal(signed, store.get("person:carol"), "person:carol") is None
    late = sign_command(subjects.CMD_ABORT_RELEASE, LIFT, "person:carol", seed, issued_at=revoked_at)
    assert audit_refusal(late, store.get("person:carol"), "person:carol") == (
        f"signed at {revoked_at.isoformat()}, after person:carol's key was revoked at {revoked_at.isoformat()}"
    )


def test_the_window_holds_either_way(store: IdentityStore) -> None:
    signed = signed_by(store, "alice")
    assert refusal(store, signed, now=NOW + WINDOW) is None
    assert refusal(store, signed, now=NOW - WINDOW) is None
    assert refusal(store, signed, now=NOW + WINDOW + timedelta(seconds=1)) == (
        "too old: issued at 2030-01-31T12:00:00+00:00, 121 s ago; commands are accepted for 120 s"
    )
    assert refusal(store, signed, now=NOW - WINDOW - timedelta(seconds=1)) == (
        "issued in the future: at 2030-01-31T12:00:00+00:00, 121 s ahead of this service's clock (more than 120 s)"
    )


def test_the_audit_refuses_an_actor_other_than_the_signer(store: IdentityStore) -> None:
    signed = signed_by(store, "alice")
    assert audit_refusal(signed, store.get("person:alice"), "person:bob") == (
        "the event names person:bob as its actor, but person:alice signed the command"
    )


def test_roles_allow_exactly_their_commands() -> None:
    assert PEOPLE_COMMANDS == {subjects.CMD_FREEZE, subjects.CMD_LIFT_FREEZE, subjects.CMD_RESUME_RELEASE,
                               subjects.CMD_ABORT_RELEASE, subjects.CMD_CREATE_CHANGE, subjects.CMD_APPROVE_CHANGE,
                               subjects.CMD_OPEN_INCIDENT, subjects.CMD_RESOLVE_INCIDENT, subjects.CMD_APPROVE,
                               subjects.CMD_REJECT, subjects.CMD_RECORD_PIR, subjects.CMD_RELOAD_POLICY,
                               subjects.CMD_CHECK_DRIFT, subjects.CMD_CHANGE_FLAG, subjects.CMD_PAUSE_RELEASE,
                               subjects.CMD_PROMOTE_RELEASE}
    # Whoever may resume or abort a release may also pause or promote it, for the same teams.
    for steering in (subjects.CMD_PAUSE_RELEASE, subjects.CMD_PROMOTE_RELEASE):
        assert set(required_roles(steering)) == set(required_roles(subjects.CMD_ABORT_RELEASE)) == {Role.SRE, Role.DEVELOPER}
    assert set(required_roles(subjects.CMD_RECORD_PIR)) == {Role.SRE, Role.DEVELOPER, Role.RELEASE_MANAGER,
                                                           Role.TEAM_LEAD}
    # Approving is open to every role policy may name as an authority; whether it counts is the policy's.
    assert Role.DEVELOPER not in required_roles(subjects.CMD_APPROVE)
    assert {Role.CAB_MEMBER, Role.TEAM_LEAD, Role.EXECUTIVE, Role.CHANGE_MANAGER} <= set(required_roles(subjects.CMD_APPROVE))
    assert required_roles(subjects.CMD_APPROVE_CHANGE) == (Role.CHANGE_MANAGER,)
    assert required_roles(subjects.CMD_RESOLVE_INCIDENT) == (Role.SRE,)
    assert required_roles(subjects.CMD_FREEZE) == (Role.RELEASE_MANAGER,)
    assert role_refusal(subjects.CMD_FREEZE, "person:alice", [Role.RELEASE_MANAGER]) is None
    assert role_refusal(subjects.CMD_FREEZE, "person:bob", [Role.DEVELOPER, Role.SRE]) == (
        "role release-manager needed for freeze; person:bob has developer, sre"
    )
    assert role_refusal(subjects.CMD_ABORT_RELEASE, "person:alice", [Role.RELEASE_MANAGER]) == (
        "role sre or developer needed for abort_release; person:alice has release-manager"
    )
    assert role_refusal(subjects.CMD_RESUME_RELEASE, "person:eve", []) == (
        "role sre or developer needed for resume_release; person:eve has no role"
    )
    assert role_refusal(subjects.CMD_DORA, "person:alice", list(Role)) is not None  # queries are nobody's command


def test_a_developer_acts_only_on_their_own_teams_releases() -> None:
    resume = subjects.CMD_RESUME_RELEASE
    assert team_refusal(resume, "person:bob", [Role.DEVELOPER], ["checkout"], "checkout", "r1") is None
    assert team_refusal(resume, "person:bob", [Role.DEVELOPER], ["checkout"], "payments", "r1") == (
        "person:bob may resume_release only releases of their own teams (checkout); release r1 is of team payments "
        "(role sre acts on every team)"
    )
    assert team_refusal(resume, "person:bob", [Role.DEVELOPER], ["checkout"], None, "r1") == (
        "person:bob may resume_release only releases of their own teams (checkout); the team of release r1 "
        "is not known (role sre acts on every team)"
    )
    assert team_refusal(resume, "person:sam", [Role.SRE], [], "payments", "r1") is None
    assert team_refusal(subjects.CMD_FREEZE, "person:alice", [Role.RELEASE_MANAGER], [], "payments", "r1") is None


def test_the_commands_carry_no_actor_of_their_own() -> None:
    for model in (FreezeEnvironment, LiftFreeze, ResumeRelease, AbortRelease):
        assert "actor" not in model.model_fields
