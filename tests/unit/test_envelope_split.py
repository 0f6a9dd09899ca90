"""Events not about a release carry no release envelope; version-1 bodies of those types still read."""

from typing import Any

import pytest

from contracts.envelope import Event, ReleaseEvent
from contracts.events import (
    STANDALONE_SCHEMA_VERSION, ChangeRecordCreated, CommandRefused, EventRefused, EvidenceSubmitted,
    FreezeDeclared, IncidentOpened, PolicyReloaded, ReleaseExpired, StandaloneEvent,
)

DIGEST = "sha256:" + "a" * 64
WINDOW = {"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-02T00:00:00Z"}
# What version 1 put in the envelope of an event that is not about a release.
MADE_UP = {"service": "all-services", "environment": "all-environments", "schema_version": 1}


def test_every_event_type_is_either_a_releases_or_standalone() -> None:
    standalone = {name for name, cls in Event.registry.items() if issubclass(cls, StandaloneEvent)}
    assert standalone >= {"FreezeDeclared", "FreezeLifted", "IncidentOpened", "IncidentResolved", "ChangeRecordCreated",
                          "ChangeRecordApproved", "PolicyReloaded", "EvidenceSubmitted", "EventRefused",
                          "CommandRefused", "IncidentWebhookRefused"}
    for name, cls in Event.registry.items():
        assert issubclass(cls, ReleaseEvent) != (name in standalone), name
        if name in standalone:
            assert "release_id" not in cls.model_fields or not cls.model_fields["release_id"].is_required(), name


def test_a_standalone_event_names_no_release_and_threads_on_what_it_is_about() -> None:
    freeze = FreezeDeclared(freeze_id="frz-1", environment="prod", reason="holidays", **WINDOW)
    body = freeze.model_dump(mode="json")
    assert "release_id" not in body and "service" not in body
    assert (body["environment"], body["correlation_id"], body["schema_version"]) == ("prod", "frz-1", 2)
    change = ChangeRecordCreated(number="CHG42", summary="s", risk="low", **WINDOW)
    assert change.correlation_id == "CHG42"


@pytest.mark.parametrize(("model", "v1", "expected"), [
    (FreezeDeclared, {"release_id": "frz-1", "freeze_id": "frz-1", "reason": "r", **WINDOW, **MADE_UP,
                      "environment": "prod"}, {"environment": "prod", "freeze_id": "frz-1"}),
    (IncidentOpened, {"release_id": "inc-" + "0" * 26, "incident_id": "inc-" + "0" * 26, "severity": "critical",
                      "summary": "down", "origin": "slipway", **MADE_UP, "environment": "prod"},
     {"environment": "prod", "correlation_id": "inc-" + "0" * 26}),
    (PolicyReloaded, {"release_id": "policy", "fingerprint": "f", **MADE_UP}, {"fingerprint": "f"}),
    (EvidenceSubmitted, {"release_id": DIGEST, "team": "payments", "digest": DIGEST, "kind": "security",
                         "outcome": "pass", **MADE_UP}, {"service": None, "environment": None}),
    (EvidenceSubmitted, {"release_id": DIGEST, "team": "payments", "digest": DIGEST, "kind": "security",
                         "outcome": "pass", **MADE_UP, "service": "ledger", "environment": "ci"},
     {"service": "ledger", "environment": "ci"}),
    (CommandRefused, {"release_id": "cmd-01ABC", "command": "slipway.cmd.freeze", "reason": "r", **MADE_UP},
     {"about": None, "environment": None}),
    (CommandRefused, {"release_id": "shop-1.2.3", "command": "slipway.cmd.approve", "reason": "r", **MADE_UP,
                      "environment": "prod"}, {"about": "shop-1.2.3", "environment": "prod"}),
])
def test_a_version_1_body_still_reads(model: type[StandaloneEvent], v1: dict[str, Any], expected: dict[str, Any]) -> None:
    event = model.model_validate(v1)
    assert {name: getattr(event, name) for name in expected} == expected
    assert event.schema_version == 1  # read as sent: the log keeps what was said


def test_a_refusal_of_a_releases_event_names_that_release() -> None:
    expired = ReleaseExpired(release_id="shop-1", service="shop", environment="prod", waited_for="approval", reason="r")
    refused = EventRefused.about(expired, consumer="deployer-x", refused_sequence=7, refused_subject="s", reason="r")
    assert (refused.release_id, refused.service, refused.environment) == ("shop-1", "shop", "prod")
    unreadable = EventRefused.about(None, consumer="deployer-x", refused_sequence=8, refused_subject="s", reason="r")
    assert (unreadable.release_id, unreadable.service, unreadable.schema_version) == (None, None, STANDALONE_SCHEMA_VERSION)


def test_evidence_for_any_service_travels_on_the_all_services_token() -> None:
    evidence = EvidenceSubmitted(team="payments", digest=DIGEST, kind="security", outcome="pass")
    assert evidence.service is None
    assert evidence.address() == "slipway.evt.evidence.submitted.payments.all-services"


def test_a_hostile_schema_version_is_refused_not_crashed_on() -> None:
    with pytest.raises(ValueError, match="schema_version"):
        FreezeDeclared.model_validate({"freeze_id": "f", "environment": "prod", "reason": "r", **WINDOW,
                                       "schema_version": "one"})


def test_an_alert_about_an_unreadable_message_names_no_release_it_cannot_know() -> None:
    from services.deployer.refusals import alert_for_refused

    blind = alert_for_refused(None, "unsigned")
    assert (blind.release_id, blind.service, blind.team, blind.correlation_id) == (None, None, None, "")
    assert blind.address() == "slipway.alert.critical.unknown.unknown"
    assert "release_id" not in blind.model_dump(exclude_none=True)
    expired = ReleaseExpired(release_id="shop-1", service="shop", environment="prod", waited_for="approval", reason="r")
    about = alert_for_refused(expired, "signed by person:mallory")
    assert (about.release_id, about.service, about.correlation_id, about.causation_id) == (
        "shop-1", "shop", "shop-1", expired.event_id)
