"""Pure rules of the audit trail beyond the chain itself: what a checkpoint signs and when it still holds,
walking the chain a chunk at a time from a trusted hash, what the index files a record under, and who did
what to a release.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.metrics_collector.domain import GENESIS_HASH, ChainRecord, chain_hash, parse_time

CHECKPOINT_DOMAIN = b"slipway-audit-checkpoint/1\n"  # a signature over these bytes means nothing anywhere else
DEFAULT_CHECKPOINT_EVERY = 10_000

Payload = Mapping[str, Any]


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_bytes(seq: int, digest: str, records: int, created_at: datetime, signer: str) -> bytes:
    """What the collector signs: every field on its own line, so no two checkpoints sign the same bytes."""
    return CHECKPOINT_DOMAIN + f"{seq}\n{digest}\n{records}\n{created_at.isoformat()}\n{signer}".encode()


def checkpoint_due(last_checkpoint_seq: int, head_seq: int, every: int) -> bool:
    return every > 0 and head_seq - last_checkpoint_seq >= every


@dataclass(frozen=True)
class CheckpointFacts:
    """What the log says now about one checkpoint, gathered by the caller."""

    seq: int
    signed_hash: str
    signed_records: int
    signature_problem: str | None  # why its signature does not verify, None when it does
    stored_hash: str | None  # the hash of the record at seq now (None: no record there)
    records_now: int | None = None  # records up to seq now; None when not counted


def checkpoint_problem(facts: CheckpointFacts) -> str | None:
    """Why a checkpoint cannot be trusted any more; None when it still holds."""
    if facts.signature_problem is not None:
        return f"checkpoint at seq {facts.seq} is forged or edited: {facts.signature_problem}"
    if facts.stored_hash is None:
        return f"record {facts.seq}, which checkpoint {facts.seq} signed, is gone: it was deleted"
    if facts.stored_hash != facts.signed_hash:
        return (f"record {facts.seq} no longer has the hash checkpoint {facts.seq} signed: records up to it were "
                "rewritten and re-hashed")
    if facts.records_now is not None and facts.records_now != facts.signed_records:
        change = "deleted" if facts.records_now < facts.signed_records else "inserted"
        return (f"checkpoint {facts.seq} signed {facts.signed_records} records up to it, the log holds "
                f"{facts.records_now}: {abs(facts.signed_records - facts.records_now)} {change}")
    return None


# --- walking the chain -----------------------------------------------------------------------


@dataclass
class ChainWalk:
    """Re-hashes the chain a chunk at a time from a hash already trusted (genesis, a checkpoint, the record
    before a range), stopping at the first record that does not link or does not hash."""

    expected_prev: str = GENESIS_HASH
    previous_seq: int | None = None
    records: int = 0
    first_bad_seq: int | None = None
    reason: str = ""
    start_label: str = "genesis"
    last_hash: str | None = None
    seqs: list[int] = field(default_factory=list)  # first and last seq re-hashed

    def feed(self, chunk: Sequence[ChainRecord]) -> bool:
        """Check the next records; False once a record is found broken (then first_bad_seq and reason say which)."""
        for seq, payload, prev_hash, recorded_hash in chunk:
            self.records += 1
            if not self.seqs:
                self.seqs.append(seq)
            if self.previous_seq is not None and seq != self.previous_seq + 1:
                return self._broken(seq, f"record {seq} follows record {self.previous_seq}: "
                                         f"{seq - self.previous_seq - 1} record(s) before it were deleted")
            if prev_hash != self.expected_prev:
                before = self.start_label if self.last_hash is None else f"record {self.previous_seq}"
                return self._broken(seq, f"record {seq} does not link to {before}: "
                                         "a record was deleted, inserted, reordered or rewritten before it")
            if chain_hash(prev_hash, payload) != recorded_hash:
                return self._broken(seq, f"record {seq} does not match its hash: its payload or hash was edited")
            self.expected_prev, self.previous_seq, self.last_hash = recorded_hash, seq, recorded_hash
        return True

    def _broken(self, seq: int, reason: str) -> bool:
        self.first_bad_seq, self.reason = seq, reason
        return False

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None

    @property
    def span(self) -> tuple[int | None, int | None]:
        return (self.seqs[0] if self.seqs else None), self.previous_seq


# --- what the index files a record under -----------------------------------------------------


def team_of(payload: Payload) -> str | None:
    """The team an event names itself: its `team`, or its release specification's."""
    team = payload.get("team")
    if isinstance(team, str) and team:
        return team
    release = payload.get("release")
    if isinstance(release, Mapping) and isinstance(release.get("team"), str) and release["team"]:
        return str(release["team"])
    return None


def index_row(seq: int, payload: Payload, occurred_at: datetime, known_teams: Mapping[str, str]) -> dict[str, Any]:
    """The audit index's row for a logged record; a release's team comes from whichever record named it first."""
    release_id = payload.get("release_id") or None
    team = team_of(payload) or (known_teams.get(str(release_id)) if release_id else None)
    actor = payload.get("actor")
    return {
        "seq": seq, "type": str(payload.get("type") or "unknown")[:100],
        "release_id": str(release_id) if release_id else None,
        "service": _text(payload.get("service"), 63), "environment": _text(payload.get("environment"), 63),
        "team": _text(team, 63), "actor": _text(actor, 200), "occurred_at": occurred_at,
    }


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


# --- who did what to a release ---------------------------------------------------------------

OUTCOMES = {
    "DeploymentSucceeded": "deployed", "RollbackCompleted": "rolled back", "DeploymentFailed": "failed",
    "ReleaseRejected": "rejected by a person", "ReleaseBlocked": "blocked", "ArtifactRejected": "artifact rejected",
    "ReleaseRequestRejected": "request rejected", "ReleaseExpired": "expired",
}
PROGRESS = {"ReleaseRequested": "requested", "ArtifactVerified": "verified", "ReleaseApproved": "approved",
            "ReleaseWaiting": "waiting", "DeploymentStarted": "deploying", "RollbackRequested": "rolling back"}
INTERVENTIONS = frozenset({"ReleaseRejected", "ReleaseResumed", "RollbackRequested", "RolloutPaused",
                           "RolloutResumed"})


def who(release_id: str, history: Iterable[Payload]) -> dict[str, Any]:
    """WhoReply's fields from a release's logged (unflagged) events in log order: who requested it, which commit
    and artifact, who approved, who intervened (a person's signed command, or the system saying why), how it ended."""
    events = list(history)
    request = next((e for e in events if e.get("type") == "ReleaseRequested"), None) or {}
    started = next((e for e in events if e.get("type") == "DeploymentStarted"), None) or {}
    commit = request.get("commit") if isinstance(request.get("commit"), Mapping) else {}
    artifact = request.get("artifact") if isinstance(request.get("artifact"), Mapping) else {}
    approvers = [_action(e) for e in events if e.get("type") == "ApprovalRecorded"]
    named = {a["actor"] for a in approvers}
    for e in events:
        if e.get("type") == "ReleaseApproved":
            at = parse_time(e.get("occurred_at"))
            approvers += [{"actor": str(name), "at": at, "what": "ReleaseApproved", "comment": "", "signed": False}
                          for name in e.get("approvers") or [] if str(name) not in named and at is not None]
    ending = next((e for e in reversed(events) if e.get("type") in OUTCOMES), None)
    latest = ending or next((e for e in reversed(events) if e.get("type") in PROGRESS), None) or {}
    first = events[0] if events else {}
    return {
        "release_id": release_id, "service": first.get("service"), "environment": first.get("environment"),
        "team": next((t for e in events if (t := team_of(e))), None),
        "version": request.get("version") or started.get("version"),
        "requested_by": request.get("requested_by") or request.get("actor"),
        "requested_via": request.get("actor"), "requested_at": parse_time(request.get("occurred_at")),
        "commit_sha": commit.get("sha") or started.get("commit_sha"),
        "committed_at": parse_time(commit.get("committed_at")) or parse_time(started.get("committed_at")),
        "artifact_digest": artifact.get("digest"), "artifact_uri": artifact.get("uri"),
        "approvers": approvers,
        "interventions": [_action(e) for e in events if e.get("type") in INTERVENTIONS],
        "outcome": OUTCOMES.get(str(latest.get("type")), PROGRESS.get(str(latest.get("type")), "unknown")),
        "outcome_at": parse_time(latest.get("occurred_at")),
        "deployed_version": next((e.get("version") for e in reversed(events) if e.get("type") == "DeploymentSucceeded"),
                                 None),
        "events": len(events),
    }


def _action(event: Payload) -> dict[str, Any]:
    comment = next((str(event[k]) for k in ("comment", "reason") if isinstance(event.get(k), str) and event[k]), "")
    return {"actor": str(event.get("actor") or "?"), "at": parse_time(event.get("occurred_at")),
            "what": str(event.get("type")), "comment": comment, "signed": event.get("signed_command") is not None}


def payload_of(text: str) -> dict[str, Any]:
    """A stored payload as a dict (a record rewritten into something else is shown as what it is)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text[:1000]}
    return value if isinstance(value, dict) else {"value": value}
