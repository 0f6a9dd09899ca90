"""Pure decisions of the artifact-verifier: how to answer a request that cannot be read."""

import json
import re
from typing import Any

from pydantic import ValidationError

from contracts.envelope import NAME_PATTERN
from contracts.events import FieldError, ReleaseRequestRejected
from libs.bus import describe, field_path

SOURCE = "artifact-verifier"
UNKNOWN = "unknown"


def rejection_for(raw: bytes, error: ValidationError) -> ReleaseRequestRejected:
    """A rejection that names every bad field, keeping whatever envelope the sender got right."""
    fields = _salvage(raw)
    return ReleaseRequestRejected(
        release_id=fields["release_id"],
        service=fields["service"],
        environment=fields["environment"],
        causation_id=fields["event_id"],
        actor=fields["actor"],
        source=SOURCE,
        reason=f"invalid ReleaseRequested: {describe(error)}",
        errors=[FieldError(field=field_path(e["loc"]), message=e["msg"]) for e in error.errors(include_url=False)],
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

    def text(key: str, default: str | None) -> str | None:
        value = body.get(key)
        return value[:128] if isinstance(value, str) and value else default

    return {
        "release_id": text("release_id", UNKNOWN),
        "service": name("service"),
        "environment": name("environment"),
        "event_id": text("event_id", None),
        "actor": text("requested_by", None) or text("actor", "unknown"),
    }
