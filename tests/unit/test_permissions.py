"""The permission table follows from the catalogue, and the catalogue from the services' wiring."""

import importlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import catalogue, subjects
from contracts.identity import IdentityRecord, Kind, Role
from contracts.permissions import QUERIES, may_publish, permissions_for
from contracts.rights import PEOPLE_COMMANDS
from libs import bus
from libs.identities import new_seed, public_key_of, sign, verify
from libs.nats_auth import render
from contracts.identity import Registry
from libs.settings import Settings
from libs.signing import Signer, event_bytes

MODULES = {
    "artifact-verifier": "artifact_verifier", "gatekeeper": "gatekeeper", "deployer": "deployer",
    "health-watcher": "health_watcher", "rollback-controller": "rollback_controller",
    "metrics-collector": "metrics_collector",
}


def record(kind: Kind, name: str, roles: tuple[Role, ...] = (), teams: tuple[str, ...] = ()) -> IdentityRecord:
    return IdentityRecord(id=f"{kind.value}:{name}", kind=kind, name=name, public_key=public_key_of(new_seed()),
                          roles=roles, teams=teams, created_at=datetime.now(UTC))


@pytest.mark.parametrize("service", sorted(MODULES))
def test_every_durable_a_service_declares_is_in_the_catalogue(service: str, tmp_path: Path) -> None:
    app = importlib.import_module(f"services.{MODULES[service]}.app")
    built = app.build(Settings(data_dir=tmp_path))  # builds without connecting
    declared = {(stream, config.durable_name) for stream, config in bus._declared[built.broker]}
    assert declared == set(catalogue.DURABLES[service])


def test_only_the_owning_service_may_publish_approvals_verdicts_and_rollbacks() -> None:
    owners = {"ReleaseApproved": "gatekeeper", "StepVerdict": "health-watcher", "RollbackRequested": "rollback-controller"}
    for event, owner in owners.items():
        allowed = [name for name in MODULES if may_publish(record(Kind.SERVICE, name), event)]
        assert allowed == [owner], event
    assert not any(may_publish(record(kind, "x"), "ReleaseApproved") for kind in (Kind.ADMIN, Kind.PERSON, Kind.ONCALL))


def test_the_metrics_collector_publishes_nothing_but_replies_and_its_own_dead_letters() -> None:
    rights = permissions_for(record(Kind.SERVICE, "metrics-collector"))
    events = [s for s in rights.publish if s.startswith(("slipway.evt.", "slipway.alert.", "slipway.cmd."))]
    assert events == []
    assert rights.allow_responses
    assert {s for s in rights.publish if s.startswith("slipway.dlq.")} == {
        "slipway.dlq.metrics-collector-events", "slipway.dlq.metrics-collector-alerts"}


def test_a_ci_identity_may_request_releases_only_under_its_team() -> None:
    rights = permissions_for(record(Kind.CI, "payments", teams=("payments",)))
    requests = [s for s in rights.publish if s.startswith(subjects.RELEASE_REQUESTED_PREFIX)]
    assert requests == ["slipway.evt.release.requested.payments.*"]
    assert not any(s.startswith("slipway.cmd.") and s not in QUERIES for s in rights.publish)


def test_a_persons_commands_follow_their_roles() -> None:
    manager = permissions_for(record(Kind.PERSON, "rm", roles=(Role.RELEASE_MANAGER,)))
    developer = permissions_for(record(Kind.PERSON, "dev", roles=(Role.DEVELOPER,), teams=("payments",)))
    sre = permissions_for(record(Kind.PERSON, "sre", roles=(Role.SRE,)))
    assert subjects.CMD_FREEZE in manager.publish and subjects.CMD_FREEZE not in developer.publish
    # A developer acts on their own teams' releases only: the team is a token of the subject they send on.
    assert f"{subjects.CMD_ABORT_RELEASE}.payments.*" in developer.publish
    assert subjects.CMD_ABORT_RELEASE not in developer.publish
    assert not any(s.startswith(subjects.CMD_ABORT_RELEASE) for s in manager.publish)
    assert {subjects.CMD_ABORT_RELEASE, f"{subjects.CMD_ABORT_RELEASE}.*.*"} <= set(sre.publish)


def test_revoked_identities_are_left_out_of_the_server_configuration() -> None:
    live, gone = record(Kind.ONCALL, "a"), record(Kind.ONCALL, "b").model_copy(update={"revoked_at": datetime.now(UTC)})
    text = render(Registry(identities=(live, gone)))
    assert live.public_key in text and gone.public_key not in text


def test_a_signature_binds_the_subject_and_the_body() -> None:
    seed = new_seed()
    signer = Signer("service:gatekeeper", seed)
    headers = signer.headers("slipway.evt.gate.approved", b'{"a":1}')
    signature = headers["slipway-signature"]
    assert verify(public_key_of(seed), event_bytes("slipway.evt.gate.approved", b'{"a":1}'), signature)
    assert not verify(public_key_of(seed), event_bytes("slipway.evt.gate.approved", b'{"a":2}'), signature)
    assert not verify(public_key_of(seed), event_bytes("slipway.evt.gate.blocked", b'{"a":1}'), signature)
    assert not verify(public_key_of(new_seed()), event_bytes("slipway.evt.gate.approved", b'{"a":1}'), signature)
    assert not verify(public_key_of(seed), b"x", "not base64 at all!")
    assert verify(public_key_of(seed), b"x", sign(seed, b"x"))


def test_every_command_that_is_not_a_persons_is_a_query_every_reader_may_ask() -> None:
    # A query missing here is refused by nats-server to everyone but the services (as `flags list` was).
    assert set(catalogue.COMMANDS) - PEOPLE_COMMANDS == set(QUERIES)
