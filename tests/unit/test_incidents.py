"""Incidents: which halt releases, the webhook's signature check, and reading PagerDuty Events API v2 payloads."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.governance import IncidentSeverity
from services.gatekeeper.incidents import Incident, halting, resolve_refusal
from services.gatekeeper.pagerduty import PagerDutyEvent, sign, signature_refusal

SECRET = b"s3cret-shared-with-the-monitoring-tool"
BODY = b'{"event_action":"trigger","payload":{"summary":"db down","source":"mon","severity":"critical"}}'
NOW = 1_800_000_000.0
T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)


def incident(n: int, environment: str, severity: IncidentSeverity, resolved: bool = False) -> Incident:
    return Incident(incident_id=f"inc-{n}", environment=environment, severity=severity, summary="s", origin="slipway",
                    opened_by="person:sam", opened_at=T0 + timedelta(minutes=n),
                    resolved_at=T0 + timedelta(hours=1) if resolved else None,
                    resolved_by="person:sam" if resolved else None)


def test_severities_are_ordered_as_pagerduty_orders_them() -> None:
    assert [s.value for s in sorted(IncidentSeverity, key=lambda s: s.rank)] == ["info", "warning", "error", "critical"]
    assert IncidentSeverity.CRITICAL.at_least(IncidentSeverity.ERROR)
    assert IncidentSeverity.ERROR.at_least(IncidentSeverity.ERROR)
    assert not IncidentSeverity.WARNING.at_least(IncidentSeverity.ERROR)


def test_only_open_incidents_of_the_environment_at_or_above_the_floor_halt_it_oldest_first() -> None:
    found = [
        incident(3, "prod", IncidentSeverity.CRITICAL), incident(1, "prod", IncidentSeverity.ERROR),
        incident(2, "prod", IncidentSeverity.WARNING), incident(4, "staging", IncidentSeverity.CRITICAL),
        incident(5, "prod", IncidentSeverity.CRITICAL, resolved=True),
    ]
    assert [i.incident_id for i in halting(found, "prod", IncidentSeverity.ERROR)] == ["inc-1", "inc-3"]
    assert [i.incident_id for i in halting(found, "prod", IncidentSeverity.INFO)] == ["inc-1", "inc-2", "inc-3"]
    assert halting(found, "dev", IncidentSeverity.INFO) == []


def test_resolving_needs_an_open_incident() -> None:
    assert resolve_refusal(None, "inc-9") == "no incident inc-9"
    done = incident(5, "prod", IncidentSeverity.CRITICAL, resolved=True)
    assert resolve_refusal(done, "inc-5") == \
        "incident inc-5 was already resolved by person:sam at 2026-11-28T13:00:00+00:00"
    assert resolve_refusal(incident(1, "prod", IncidentSeverity.INFO), "inc-1") is None


def test_a_signature_by_the_shared_secret_over_timestamp_and_body_is_accepted() -> None:
    header = sign(SECRET, BODY, int(NOW))
    expected = hmac.new(SECRET, f"{int(NOW)}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={int(NOW)},v1={expected}"  # the documented scheme, computed independently
    assert signature_refusal(SECRET, header, BODY, NOW + 30, 120) is None
    rotating = f"t={int(NOW)},v1={'0' * 64},v1={expected}"  # old and new secret while rotating: one is enough
    assert signature_refusal(SECRET, rotating, BODY, NOW, 120) is None


@pytest.mark.parametrize(("secret", "header", "body", "reason"), [
    (None, sign(SECRET, BODY, int(NOW)), BODY,
     "no webhook secret is configured (SLIPWAY_INCIDENT_WEBHOOK_SECRET): every call is refused"),
    (SECRET, None, BODY, "unsigned: the X-Slipway-Signature header is missing "
                         "(t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>)"),
    (SECRET, "sha256=abc", BODY, "malformed X-Slipway-Signature: expected "
                                 "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>"),
    (SECRET, f"t=soon,v1={'a' * 64}", BODY, "malformed X-Slipway-Signature: expected "
                                            "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>"),
    (SECRET, sign(SECRET, BODY, int(NOW) - 121), BODY,
     "signature timestamp 1799999879 is 121 s from this server's clock; calls are accepted within 120 s"),
    (SECRET, sign(SECRET, BODY, int(NOW) + 500), BODY,
     "signature timestamp 1800000500 is -500 s from this server's clock; calls are accepted within 120 s"),
    (SECRET, sign(b"another secret", BODY, int(NOW)), BODY,
     "bad signature: no v1 signature matches the body with the shared secret"),
    (SECRET, sign(SECRET, BODY, int(NOW)), BODY.replace(b"critical", b"info"),
     "bad signature: no v1 signature matches the body with the shared secret"),
    (SECRET, sign(SECRET, BODY, int(NOW)).replace(f"t={int(NOW)}", f"t={int(NOW) + 1}"), BODY,
     "bad signature: no v1 signature matches the body with the shared secret"),
])
def test_a_call_not_vouched_for_by_the_secret_is_refused_with_the_reason(
    secret: bytes | None, header: str | None, body: bytes, reason: str
) -> None:
    assert signature_refusal(secret, header, body, NOW, 120) == reason


def test_a_trigger_is_read_with_its_environment_from_custom_details() -> None:
    event = PagerDutyEvent.model_validate_json(
        b'{"routing_key": "R0123456789abcdef0123456789abcdef", "event_action": "trigger", "dedup_key": "db-1",'
        b' "client": "Prometheus", "payload": {"summary": "p99 over SLO", "source": "prom-eu-1", "severity": "error",'
        b' "component": "shop", "group": "web", "class": "latency", "custom_details": {"environment": "staging"}}}'
    )
    assert (event.event_action, event.dedup_key) == ("trigger", "db-1")
    assert event.payload is not None
    assert (event.payload.severity, event.payload.source, event.payload.component) == \
        (IncidentSeverity.ERROR, "prom-eu-1", "shop")
    assert event.environment("prod") == "staging"


def test_without_an_environment_the_default_one_is_used_and_a_bad_one_is_refused() -> None:
    plain = PagerDutyEvent.model_validate({"event_action": "resolve", "dedup_key": "db-1"})
    assert plain.environment("prod") == "prod"
    odd = PagerDutyEvent.model_validate({"event_action": "trigger", "payload": {
        "summary": "x", "source": "y", "severity": "info", "custom_details": {"environment": "Prod EU!"}}})
    with pytest.raises(ValueError, match=r"payload.custom_details.environment 'Prod EU!' is not an environment name"):
        odd.environment("prod")


@pytest.mark.parametrize(("payload", "error"), [
    ({"event_action": "trigger"}, "a trigger needs a payload (summary, source, severity)"),
    ({"event_action": "resolve"}, "resolve needs the dedup_key of the incident"),
    ({"event_action": "acknowledge"}, "acknowledge needs the dedup_key of the incident"),
    ({"event_action": "page"}, "Input should be 'trigger', 'acknowledge' or 'resolve'"),
    ({"event_action": "trigger", "payload": {"summary": "x", "source": "y", "severity": "sev1"}},
     "Input should be 'info', 'warning', 'error' or 'critical'"),
    ({"event_action": "trigger", "payload": {"summary": "x", "severity": "info"}}, "Field required"),
])
def test_a_malformed_event_is_refused_naming_what_is_wrong(payload: dict, error: str) -> None:
    with pytest.raises(ValidationError) as failure:
        PagerDutyEvent.model_validate(payload)
    assert error in str(failure.value)
