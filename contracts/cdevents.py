"""A CDEvents `testsuiterun.finished` event read as slipway evidence (contracts.events.EvidenceSubmitted).

CDEvents (cdevents.dev, spec v0.4) describes a finished test suite run as
`{"context": {"id", "source", "type": "dev.cdevents.testsuiterun.finished.0.2.0", "timestamp", ...},
  "subject": {"id", "content": {"outcome": "pass|fail|cancel|error", "reason", "url",
                                "testSuite": {"id", "name", "uri"}, "environment": {"id"}}},
  "customData": {...}}`.
It has no field for the artifact tested nor for slipway's evidence kind, so those come from
`customData` (`digest`, `kind`, optionally `service`) or from the caller (the CLI's flags win):

| EvidenceSubmitted | CDEvent                                                  |
|---|---|
| outcome           | subject.content.outcome                                  |
| url               | subject.content.url, else subject.content.testSuite.uri |
| reason            | subject.content.reason                                   |
| test_suite        | subject.content.testSuite.name (else .id)                |
| cdevent_id        | context.id                                               |
| finished_at       | context.timestamp                                        |
| environment       | subject.content.environment.id (where the tests ran)     |
| digest, kind, service | customData.digest / .kind / .service, or given        |
"""

from typing import Any

TYPE_PREFIX = "dev.cdevents.testsuiterun.finished."


class NotATestSuiteRun(ValueError):
    """The document is not a CDEvents testsuiterun.finished event slipway can read; the message says why."""


def evidence_fields(document: Any, **given: str | None) -> dict[str, Any]:
    """EvidenceSubmitted fields from a CDEvent; `given` (digest, kind, service, url) wins over the document."""
    if not isinstance(document, dict):
        raise NotATestSuiteRun("a CDEvent is a JSON object")
    context, subject = document.get("context"), document.get("subject")
    if not isinstance(context, dict) or not isinstance(subject, dict):
        raise NotATestSuiteRun("a CDEvent has a `context` and a `subject` object")
    kind_of_event = context.get("type")
    if not isinstance(kind_of_event, str) or not kind_of_event.startswith(TYPE_PREFIX):
        raise NotATestSuiteRun(f"context.type is {kind_of_event!r}, not {TYPE_PREFIX}<version>")
    content = subject.get("content")
    if not isinstance(content, dict) or "outcome" not in content:
        raise NotATestSuiteRun("subject.content.outcome is missing")
    suite = content.get("testSuite") if isinstance(content.get("testSuite"), dict) else {}
    where = content.get("environment") if isinstance(content.get("environment"), dict) else {}
    custom = document.get("customData") if isinstance(document.get("customData"), dict) else {}
    fields = {
        "outcome": content["outcome"],
        "url": content.get("url") or suite.get("uri") or "",
        "reason": content.get("reason") or "",
        "test_suite": suite.get("name") or suite.get("id"),
        "cdevent_id": context.get("id"),
        "finished_at": context.get("timestamp"),
        "environment": where.get("id"),
        **{key: custom[key] for key in ("digest", "kind", "service") if custom.get(key)},
        **{key: value for key, value in given.items() if value},
    }
    for needed in ("digest", "kind"):
        if not fields.get(needed):
            raise NotATestSuiteRun(f"no {needed}: give it with --{needed} or as customData.{needed}")
    return {key: value for key, value in fields.items() if value is not None}
