"""Pure decisions of the artifact-verifier: how to answer a request that cannot be read or repeats a release."""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from contracts.envelope import ACTOR_MAX, EVENT_ID_MAX, ID_PATTERN, ITEMS_MAX, NAME_PATTERN, RELEASE_ID_MAX, TEXT_MAX
from contracts.events import FieldError, ReleaseRequestDuplicated, ReleaseRequested, ReleaseRequestRejected
from contracts.identity import IdentityRecord, Kind
from contracts.release import ReleaseSpec
from libs.bus import describe, field_path

SOURCE = "artifact-verifier"
UNKNOWN = "unknown"


def rejection_for(raw: bytes, error: ValidationError) -> ReleaseRequestRejected:
    """A rejection that names every bad field, keeping whatever envelope the sender got right."""
    fields = _salvage(raw)
    # The rejection must itself fit the contract's bounds, however many errors a hostile request has.
    errors = error.errors(include_url=False)
    return ReleaseRequestRejected(
        release_id=fields["release_id"],
        service=fields["service"],
        environment=fields["environment"],
        causation_id=fields["event_id"],
        actor=fields["actor"],
        source=SOURCE,
        reason=f"invalid ReleaseRequested: {describe(error)}"[:TEXT_MAX],
        errors=[FieldError(field=field_path(e["loc"])[:500], message=e["msg"][:TEXT_MAX]) for e in errors[:ITEMS_MAX]],
    )


def _salvage(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or JSON nested deeper than any reader goes
        body = {}
    if not isinstance(body, dict):
        body = {}

    def name(key: str) -> str:
        value = body.get(key)
        return value if isinstance(value, str) and re.fullmatch(NAME_PATTERN, value) else UNKNOWN

    def ident(key: str, limit: int, default: str | None) -> str | None:
        value = body.get(key)
        fits = isinstance(value, str) and len(value) <= limit and re.fullmatch(ID_PATTERN, value)
        return value if fits else default

    def text(key: str, default: str | None) -> str | None:
        value = body.get(key)
        return value[:ACTOR_MAX] if isinstance(value, str) and value else default

    return {
        "release_id": ident("release_id", RELEASE_ID_MAX, UNKNOWN),
        "service": name("service"),
        "environment": name("environment"),
        "event_id": ident("event_id", EVENT_ID_MAX, None),
        "actor": text("requested_by", None) or text("actor", "unknown"),
    }


# --- one release per release_id --------------------------------------------------------------


@dataclass(frozen=True)
class KnownRelease:
    """What the verifier remembers of a release it took in."""

    release_id: str
    fingerprint: str
    spec: dict[str, Any]
    request_event_id: str
    outcome: str


def canonical_spec(request: ReleaseRequested) -> dict[str, Any]:
    """What identifies a release's content: the service, environment and ReleaseSpec fields.

    The envelope (event_id, occurred_at, actor, source, ...) differs between a request and its
    retry and is left out; instants are written in UTC so an offset does not make a difference.
    """
    spec = ReleaseSpec.model_validate(request.model_dump()).model_dump()
    return _utc({"service": request.service, "environment": request.environment, **spec})


def fingerprint(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def answer_repeat(
    request: ReleaseRequested, spec: dict[str, Any], earlier: KnownRelease
) -> ReleaseRequestDuplicated | ReleaseRequestRejected:
    """A second request for a release id: a duplicate when it asks for the same thing, else refused."""
    if fingerprint(spec) == earlier.fingerprint:
        return ReleaseRequestDuplicated.caused_by(
            request, SOURCE, original_event_id=earlier.request_event_id, original_outcome=earlier.outcome
        )
    differing = differing_fields(earlier.spec, spec)
    return ReleaseRequestRejected.caused_by(
        request,
        SOURCE,
        reason=f"release {request.release_id} was already requested (event {earlier.request_event_id}) with a "
        f"different specification (differing: {', '.join(differing)}); a new release needs a new release_id",
        errors=[FieldError(field=f, message=f"differs from the first request of release {request.release_id}")
                for f in differing],
    )


def differing_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Dotted paths whose values differ (a list is compared as a whole)."""
    old, new = _flatten(before), _flatten(after)
    return sorted(path for path in old.keys() | new.keys() if old.get(path, _MISSING) != new.get(path, _MISSING))


_MISSING = object()


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(_flatten(item, f"{path}."))
        else:
            flat[path] = item
    return flat


def _utc(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _utc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_utc(item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


def ownership_refusal(
    request: ReleaseRequested, subject: str, owner: str | None, publisher: IdentityRecord,
) -> str | None:
    """Why `publisher` may not request this release, or None. `owner` is the team the service catalogue
    names for the service. The server already holds each CI identity to its team's subjects; this is
    the second check, and the one that compares the subject with the document."""
    service = request.service
    if subject != request.address():
        return f"{publisher.id} published a request for {request.team}/{service} on {subject}: subject and body disagree"
    if owner is None:
        return f"service {service} is not in the service catalogue: no team may request its releases"
    if request.team != owner:
        return f"the request names team {request.team}, but the service catalogue gives {service} to team {owner}"
    if publisher.kind is not Kind.CI or owner not in publisher.teams:
        return f"{publisher.id} may not request releases of {service}: the service catalogue gives it to team {owner}"
    return None
