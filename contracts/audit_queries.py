"""The audit trail's questions and typed answers: which events (filtered, a page at a time), who did what to a
release, and the signed checkpoints `audit verify` starts from.

Replies travel in CommandResult.data like every query's (contracts.queries). One page must fit one NATS
message (1 MB by default): a page holds at most AUDIT_PAGE_MAX events and the collector stops a page early
when its events would pass AUDIT_PAGE_BYTES, saying where to go on (`next_after`).

Times in a filter are ISO 8601 (a time without a zone is the asker's local time) or relative to now:
`2h`, `90m`, `7d`, `1d12h` mean that long ago.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from contracts.envelope import ACTOR_MAX, RELEASE_ID_MAX, Model, Name, ZonedDatetime

AUDIT_PAGE_MAX = 200
COUNT_CAP = 10_000  # matches counted at most: a count costs the same at a million events as at ten thousand
SEQ_MAX = 2**63 - 1  # a log's seq: a 64-bit integer in every database slipway runs on
AUDIT_PAGE_BYTES = 600_000  # the events of one page, as JSON: well under NATS's 1 MB message limit
TYPES_MAX = 20
RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

EventType = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,99}$")]


def point_in_time(value: Any, now: datetime | None = None) -> Any:
    """`7d`/`2h`/`1h30m` -> that long before `now`; an ISO time without a zone -> local time; others unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text and not RELATIVE.sub("", text).strip():  # nothing but amounts of units: a time ago
        seconds = sum(int(n) * UNIT_S[unit] for n, unit in RELATIVE.findall(text))
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither an ISO 8601 time (2030-01-31T18:00Z) nor a time ago (2h, 7d, 1h30m)")
    return parsed.astimezone() if parsed.tzinfo is None else parsed


class AuditFilter(Model):
    """Which logged events: every given filter must hold (types: any of them). None matches everything."""

    release_id: str | None = Field(default=None, min_length=1, max_length=RELEASE_ID_MAX)
    service: Name | None = None
    team: Name | None = Field(default=None, description="The event's team, else its release's (as the log names it)")
    actor: str | None = Field(default=None, min_length=1, max_length=ACTOR_MAX,
                              description="Who is responsible: `person:alice`, `ci:payments`, a service")
    environment: Name | None = None
    types: list[EventType] = Field(default=[], max_length=TYPES_MAX, description="Event types; any of them matches")
    since: ZonedDatetime | None = Field(default=None, description="occurred_at at or after this (ISO 8601, or 2h, 7d ago)")
    until: ZonedDatetime | None = Field(default=None, description="occurred_at before this (ISO 8601, or 2h, 7d ago)")

    @field_validator("since", "until", mode="before")
    @classmethod
    def relative_or_iso(cls, value: Any) -> Any:
        return point_in_time(value)

    @model_validator(mode="after")
    def since_before_until(self) -> "AuditFilter":
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError(f"until ({self.until.isoformat()}) must be after since ({self.since.isoformat()})")
        return self

    def described(self) -> str:
        given = {k: v for k, v in self.model_dump(mode="json", include=set(AuditFilter.model_fields)).items()
                 if v not in (None, [])}
        return ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in given.items()) or "no filter"


class ShowAudit(AuditFilter):
    """A page of the matching events in log order: by `page`, or after the seq `after` (a cursor, for export)."""

    limit: int = Field(default=50, ge=1, le=AUDIT_PAGE_MAX, description="Events per page")
    page: int = Field(default=1, ge=1, le=1_000_000, description="Which page, from 1 (ignored with `after`)")
    after: int | None = Field(default=None, ge=0, le=SEQ_MAX, description="Only events after this seq: the previous page's next_after")
    count: bool = Field(default=True, description="Count every matching event (`total`); an export's later pages skip it")


class AuditEntry(Model):
    seq: int
    event_id: str
    type: str
    subject: str
    occurred_at: datetime
    recorded_at: datetime
    release_id: str | None
    service: str | None
    environment: str | None
    team: str | None
    actor: str | None
    flag: str | None = Field(default=None, description="Why the log cannot vouch for it (logged, left out of reports)")
    hash: str = Field(description="The record's chain hash (sha256 of the previous hash and the payload)")
    prev_hash: str
    intact: bool = Field(description="The payload still hashes, with prev_hash, to `hash`")
    payload: dict[str, Any] = Field(description="The event as it was sent")


class AuditEventsReply(Model):
    filter: str = Field(description="The filters applied, in words")
    page: int
    limit: int
    total: int | None = Field(description=f"Matching events in all, up to {COUNT_CAP:,} (None when not counted)")
    total_capped: bool = Field(default=False, description=f"More than {COUNT_CAP:,} match: `total` is a lower bound")
    events: list[AuditEntry]
    next_after: int | None = Field(description="Pass as `after` for the next page; None at the end")


class WhoAudit(Model):
    """Who triggered a release and what it deployed, straight from its logged events."""

    release_id: str = Field(min_length=1, max_length=RELEASE_ID_MAX)


class PersonAction(Model):
    actor: str
    at: datetime
    what: str = Field(description="The event type")
    comment: str = ""
    signed: bool = Field(description="Carried the person's signed command")


class WhoReply(Model):
    release_id: str
    service: str | None
    environment: str | None
    team: str | None
    version: str | None
    requested_by: str | None = Field(description="The release's requested_by, else the request's actor")
    requested_via: str | None = Field(description="The identity that published the request (its actor)")
    requested_at: datetime | None
    commit_sha: str | None
    committed_at: datetime | None
    artifact_digest: str | None
    artifact_uri: str | None
    approvers: list[PersonAction] = Field(description="Approvals recorded, and the approvers ReleaseApproved names")
    interventions: list[PersonAction] = Field(description="Rejections, resumes, aborts, pauses: who intervened")
    outcome: str = Field(description="How it ended (or where it stands)")
    outcome_at: datetime | None
    deployed_version: str | None
    events: int


class CheckpointAudit(Model):
    """Sign a checkpoint of the log as it is now (the collector also signs one every N records)."""


class Checkpoint(Model):
    seq: int = Field(ge=1, description="The record it covers the log up to")
    hash: str = Field(description="That record's chain hash")
    records: int = Field(ge=1, description="Records in the log up to and including seq")
    created_at: datetime
    signer: str = Field(description="The identity whose key signed it")
    signature: str


class CheckpointReply(Model):
    checkpoint: Checkpoint | None
    reason: str = ""


