"""The incident webhook's input: a PagerDuty Events API v2 event, and the signature that vouches for it. Pure.

Signature scheme (the header a sender computes, as Stripe and Slack do it):

    X-Slipway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The timestamp is signed with the body, so a captured call cannot be replayed outside the window;
within it the webhook answers a repeat of an accepted call with the first answer and acts once. Several `v1=` entries may be
sent (while a secret is being rotated); one matching is enough. Compared in constant time.
"""

import hashlib
import hmac
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.envelope import NAME_PATTERN
from contracts.governance import IncidentSeverity

SIGNATURE_HEADER = "X-Slipway-Signature"
SCHEME = "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>"


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: IncidentSeverity
    component: str | None = Field(default=None, max_length=255)
    custom_details: dict[str, Any] | None = None


class PagerDutyEvent(BaseModel):
    """What the Events API v2 accepts at /v2/enqueue; routing_key, links, images and the rest are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    payload: PagerDutyPayload | None = None

    @model_validator(mode="after")
    def what_each_action_needs(self) -> "PagerDutyEvent":
        if self.event_action == "trigger" and self.payload is None:
            raise ValueError("a trigger needs a payload (summary, source, severity)")
        if self.event_action != "trigger" and self.dedup_key is None:
            raise ValueError(f"{self.event_action} needs the dedup_key of the incident")
        return self

    def environment(self, default: str) -> str:
        """payload.custom_details.environment, else `default`; ValueError for a name slipway cannot use."""
        details = (self.payload.custom_details if self.payload else None) or {}
        named = details.get("environment", default)
        if not isinstance(named, str) or not re.fullmatch(NAME_PATTERN, named):
            raise ValueError(f"payload.custom_details.environment {str(named)[:80]!r} is not an environment name")
        return named


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value a sender puts in X-Slipway-Signature."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_refusal(secret: bytes | None, header: str | None, body: bytes, now: float,
                      window_s: float) -> str | None:
    """Why the call is not vouched for by the shared secret; None when one v1 signature matches within the window."""
    if not secret:
        return "no webhook secret is configured (SLIPWAY_INCIDENT_WEBHOOK_SECRET): every call is refused"
    if not header:
        return f"unsigned: the {SIGNATURE_HEADER} header is missing ({SCHEME})"
    parts = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    signatures = [value for key, _, value in parts if key == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return f"malformed {SIGNATURE_HEADER}: expected {SCHEME}"
    timestamp = int(stamps[0])
    if abs(now - timestamp) > window_s:
        return (f"signature timestamp {timestamp} is {now - timestamp:.0f} s from this server's clock; "
                f"calls are accepted within {window_s:.0f} s")
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # compare_digest on every candidate, well-formed or not, so the time taken says nothing about the secret.
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in signatures):
        return "bad signature: no v1 signature matches the body with the shared secret"
    return None
