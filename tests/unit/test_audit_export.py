from datetime import UTC, datetime

import pytest
from cloudevents.core.formats.json import JSONFormat

from contracts.audit_queries import AuditEntry
from slipway.audit_export import CONTENT_TYPE, json_line

AT = datetime(2030, 1, 31, 18, 0, tzinfo=UTC)
ENVELOPE = {"event_id": "01HX", "release_id": "shop-2.0.0", "service": "shop", "environment": "prod",
            "source": "deployer", "actor": "service:deployer", "correlation_id": "shop-2.0.0"}

# What CDEvents v0.5.1's schemas require of each subject's content (schemas/<type>.json, `required`).
REQUIRED = {
    "DeploymentSucceeded": ("dev.cdevents.service.deployed.0.3.0", {"version": "2.0.0"}, {"environment", "artifactId"}),
    "RollbackCompleted": ("dev.cdevents.service.rolledback.0.3.0", {"restored_version": "1.9.0"},
                          {"environment", "artifactId"}),
    "ArtifactVerified": ("dev.cdevents.artifact.published.0.3.0",
                         {"release": {"version": "2.0.0", "artifact": {"digest": "sha256:" + "a" * 64}}}, set()),
    "IncidentOpened": ("dev.cdevents.incident.detected.0.3.0", {"incident_id": "inc-1", "summary": "down"},
                       {"environment"}),
    "IncidentResolved": ("dev.cdevents.incident.resolved.0.3.0", {"incident_id": "inc-1"}, {"environment"}),
    "ChangeRecordCreated": ("dev.cdevents.ticket.created.0.2.0", {"number": "CHG0000001", "summary": "shop 2.0"},
                            {"summary", "creator", "uri"}),
    "ChangeRecordApproved": ("dev.cdevents.ticket.updated.0.2.0", {"number": "CHG0000001"}, {"uri"}),
}


def entry(kind: str, **fields: object) -> AuditEntry:
    payload = {**ENVELOPE, "type": kind, **fields}
    return AuditEntry(seq=7, event_id="01HX", type=kind, subject="slipway.evt.x", occurred_at=AT, recorded_at=AT,
                      release_id="shop-2.0.0", service="shop", environment="prod", team="payments",
                      actor="service:deployer", hash="b" * 64, prev_hash="c" * 64, intact=True, payload=payload)


@pytest.mark.parametrize("kind", sorted(REQUIRED))
def test_events_with_a_cdevents_type_carry_a_cdevent_with_what_its_schema_requires(kind: str) -> None:
    cdevents_type, fields, required = REQUIRED[kind]
    read = JSONFormat().read(None, json_line(entry(kind, **fields)))
    assert (read.get_type(), read.get_specversion(), read.get_id(), read.get_source()) == (
        cdevents_type, "1.0", "01HX", "/slipway/deployer")
    assert read.get_extension("slipwayseq") == 7 and read.get_extension("slipwayhash") == "b" * 64
    cdevent = read.get_data()
    assert isinstance(cdevent, dict)
    context, subject = cdevent["context"], cdevent["subject"]
    assert {"specversion", "id", "source", "type", "timestamp"} <= set(context) and context["type"] == cdevents_type
    assert subject["id"] and required <= set(subject["content"])
    assert cdevent["customData"]["type"] == kind  # the slipway event, whole


def test_other_events_are_slipway_types_with_the_event_as_data_and_the_media_type_is_structured_json() -> None:
    line = json_line(entry("StepVerdict", verdict="pass"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    read = JSONFormat().read(None, line)
    assert read.get_type() == "dev.slipway.StepVerdict.v1" and read.get_subject() == "shop-2.0.0"
    assert read.get_data() == {**ENVELOPE, "type": "StepVerdict", "verdict": "pass"}
    assert CONTENT_TYPE == "application/cloudevents+json"
    deployed = JSONFormat().read(None, json_line(entry("DeploymentSucceeded", version="1.4.2+build.7")))
    assert deployed.get_data()["subject"]["content"]["artifactId"] == "pkg:generic/shop@1.4.2%2Bbuild.7"
