"""Pure decisions of the artifact-verifier: how to answer a request that cannot be read."""

import json
import re
from typing import Any

from pydantic import ValidationError

from contracts.envelope import ACTOR_MAX, EVENT_ID_MAX, ID_PATTERN, ITEMS_MAX, NAME_PATTERN, RELEASE_ID_MAX, TEXT_MAX
from contracts.events import FieldError, ReleaseRequestRejected
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
    except ValueError:
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
