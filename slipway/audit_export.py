"""Logged events as CloudEvents 1.0 in structured mode (`application/cloudevents+json`), one JSON object a line.

Rendered with the CloudEvents SDK (`cloudevents`). Where CDEvents v0.5 (spec 0.5.1) has a type for what
happened, the CloudEvent carries that type and a CDEvent as its data, the slipway event kept whole in the
CDEvent's `customData`; every other event is `dev.slipway.<EventType>.v1` with the slipway event as its data.

| slipway event | CDEvents v0.5 type |
|---|---|
| DeploymentSucceeded | dev.cdevents.service.deployed.0.3.0 |
| RollbackCompleted | dev.cdevents.service.rolledback.0.3.0 |
| ArtifactVerified | dev.cdevents.artifact.published.0.3.0 (accepted into slipway's content-addressed store) |
| IncidentOpened / IncidentResolved | dev.cdevents.incident.detected.0.3.0 / incident.resolved.0.3.0 |
| ChangeRecordCreated / ChangeRecordApproved | dev.cdevents.ticket.created.0.2.0 / ticket.updated.0.2.0 |

No slipway event carries an artifact's signature, so none is `artifact.signed`. The extensions
`slipwayseq`, `slipwayhash` and `slipwayprevhash` place each event in the hash chain: with the slipway
event (data, or the CDEvent's customData) re-serialised canonically, an auditor re-checks the chain
from the export alone.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from contracts.audit_queries import AuditEntry

CONTENT_TYPE = JSONFormat.CONTENT_TYPE  # application/cloudevents+json
CDEVENTS_SPEC = "0.5.1"
SOURCE_ROOT = "/slipway"
FORMAT = JSONFormat()

Subject = dict[str, Any]


def _purl(service: Any, version: Any, digest: Any = None) -> str:
    # A package URL names the deployed artifact (CDEvents' artifactId); slipway's artifacts are generic packages.
    qualifier = f"?checksum={digest}" if digest else ""
    return f"pkg:generic/{quote(str(service or 'unknown'))}@{quote(str(version or 'unknown'))}{qualifier}"


def _deployed(e: dict[str, Any]) -> Subject:
    return {"id": str(e.get("service")), "content": {"environment": {"id": str(e.get("environment"))},
                                                     "artifactId": _purl(e.get("service"), e.get("version"))}}


def _rolled_back(e: dict[str, Any]) -> Subject:
    restored = _purl(e.get("service"), e.get("restored_version"))
    return {"id": str(e.get("service")), "content": {"environment": {"id": str(e.get("environment"))},
                                                     "artifactId": restored}}


def _published(e: dict[str, Any]) -> Subject:
    release = e.get("release") if isinstance(e.get("release"), dict) else {}
    artifact = release.get("artifact") if isinstance(release.get("artifact"), dict) else {}
    return {"id": _purl(e.get("service"), release.get("version"), artifact.get("digest")),
            "content": {"user": str(e.get("actor") or "slipway")}}


def _incident(e: dict[str, Any]) -> Subject:
    content: dict[str, Any] = {"environment": {"id": str(e.get("environment"))},
                               "description": str(e.get("summary") or e.get("comment") or "")}
    if e.get("component"):
        content["service"] = {"id": str(e["component"])}
    return {"id": str(e.get("incident_id")), "content": content}


def _ticket(e: dict[str, Any]) -> Subject:
    content: dict[str, Any] = {"uri": f"slipway:change/{e.get('number')}"}
    if e.get("type") == "ChangeRecordCreated":
        content |= {"summary": str(e.get("summary") or ""), "creator": str(e.get("actor") or ""),
                    "ticketType": "change"}
    else:
        content |= {"updatedBy": str(e.get("actor") or "")}
    return {"id": str(e.get("number")), "content": content}


CDEVENTS: dict[str, tuple[str, Callable[[dict[str, Any]], Subject]]] = {
    "DeploymentSucceeded": ("dev.cdevents.service.deployed.0.3.0", _deployed),
    "RollbackCompleted": ("dev.cdevents.service.rolledback.0.3.0", _rolled_back),
    "ArtifactVerified": ("dev.cdevents.artifact.published.0.3.0", _published),
    "IncidentOpened": ("dev.cdevents.incident.detected.0.3.0", _incident),
    "IncidentResolved": ("dev.cdevents.incident.resolved.0.3.0", _incident),
    "ChangeRecordCreated": ("dev.cdevents.ticket.created.0.2.0", _ticket),
    "ChangeRecordApproved": ("dev.cdevents.ticket.updated.0.2.0", _ticket),
}


def event_type(slipway_type: str) -> str:
    mapped = CDEVENTS.get(slipway_type)
    return mapped[0] if mapped else f"dev.slipway.{slipway_type}.v1"


def cloud_event(entry: AuditEntry) -> CloudEvent:
    event = entry.payload
    source = f"{SOURCE_ROOT}/{event.get('source') or 'unknown'}"
    kind = event_type(entry.type)
    data: dict[str, Any] = event
    if entry.type in CDEVENTS:
        data = {
            "context": {"specversion": CDEVENTS_SPEC, "id": entry.event_id, "source": source, "type": kind,
                        "timestamp": entry.occurred_at.isoformat(),
                        **({"chainId": str(event["correlation_id"])} if event.get("correlation_id") else {})},
            "subject": CDEVENTS[entry.type][1](event) | {"source": source},
            "customData": event, "customDataContentType": "application/json",
        }
    attributes: dict[str, Any] = {
        "id": entry.event_id, "source": source, "type": kind, "specversion": "1.0", "time": entry.occurred_at,
        "datacontenttype": "application/json", "slipwayseq": entry.seq, "slipwayhash": entry.hash,
        "slipwayprevhash": entry.prev_hash,
    }
    if entry.release_id:
        attributes["subject"] = entry.release_id
    if entry.flag:
        attributes["slipwayflag"] = entry.flag
    return CloudEvent(attributes, data)


def json_line(entry: AuditEntry) -> bytes:
    """One structured-mode CloudEvent as a line of JSON lines."""
    return FORMAT.write(cloud_event(entry)) + b"\n"
