"""What an outside CI system sends to ask for a release, and how it must publish and retry it.

`ReleaseRequest` is the CI's view of `contracts.events.ReleaseRequested`: the same field types,
so the same bounds, but only the fields a CI knows. Slipway's own envelope fields (`source`,
`causation_id`, `correlation_id`, `type`, `schema_version`, `occurred_at`, `actor`) are not
part of it and are refused by its schema (`additionalProperties: false`); slipway itself reads
a request as a `ReleaseRequested`, which ignores unknown fields. So a document valid against
this schema is accepted by slipway, except where JSON Schema cannot say the rule: canary weights
out of order, and a date that does not exist (30 February) unless the validator asserts `format`.
"""

from pydantic import ConfigDict, Field

from contracts import subjects
from contracts.envelope import EVENT_ID_DESCRIPTION, EventId, Name, ReleaseId
from contracts.release import ReleaseSpec

# The JetStream duplicate window of every slipway stream (libs.bus.DUPLICATE_WINDOW_S; a test keeps them equal).
DUPLICATE_WINDOW_S = 120
PUBLISH_HEADERS = {
    "Nats-Msg-Id": "required: the request's event_id, so a publish retried within the duplicate window is stored once",
    "traceparent": "optional: W3C trace context, to join the release's trace to the CI's",
}
RETRY_RULES = (
    f"A publish that got no acknowledgement is retried with the same body and the same Nats-Msg-Id: within "
    f"{DUPLICATE_WINDOW_S} s JetStream stores it once and acknowledges the retry as a duplicate. "
    "A later retry (or a new CI attempt with a new event_id) that carries the same release_id with the same "
    "service, environment and specification is a duplicate: acknowledged, recorded as such, and the release goes "
    "on undisturbed. The same release_id with a different service, environment or specification is rejected: a "
    f"ReleaseRequestRejected on {subjects.RELEASE_REQUEST_REJECTED} whose reason names the release_id and whose "
    "causation_id is the rejected request's event_id."
)
DESCRIPTION = (
    f"What a CI system publishes to ask slipway for a release: a JSON object on subject "
    f"{subjects.RELEASE_REQUESTED} (JetStream stream {subjects.EVENTS_STREAM}; team and service as in the "
    "document, each a subject token), with header Nats-Msg-Id set to event_id, as the team's CI identity: "
    "connected with its nkey (nats-server lets it publish only under its own team) and with headers "
    "slipway-signer (ci:<team>) and slipway-signature (ed25519 over the subject and the body, see "
    "libs/signing.py); the artifact-verifier refuses a request for a service the service catalogue gives to "
    "another team. event_id is required: it identifies this publish (ULIDs are what slipway makes; any token of "
    f"letters, digits and . _ : + - up to 64 characters is accepted). {RETRY_RULES} "
    "Slipway's own envelope fields (source, causation_id, correlation_id, type, schema_version, occurred_at, "
    "actor) are set by slipway and refused here. Date-times need a time zone (Z or an offset): the pattern says "
    "so for validators that do not assert `format`; whether the date exists (no 30 February) is checked by "
    "slipway and by a format-asserting validator. Canary step weights must strictly increase: the schema "
    "refuses a repeated step but cannot compare neighbours, so slipway rejects a decreasing order, naming "
    "strategy.canary."
)


class ReleaseRequest(ReleaseSpec):
    """What a CI system publishes on slipway.evt.release.requested.<team>.<service> to ask for a release."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": DESCRIPTION,
            "x-slipway-publish": {
                "subject": subjects.RELEASE_REQUESTED,
                "stream": subjects.EVENTS_STREAM,
                "headers": PUBLISH_HEADERS,
                "duplicate_window_s": DUPLICATE_WINDOW_S,
                "retry": RETRY_RULES,
            },
        },
    )

    event_id: EventId = Field(description=EVENT_ID_DESCRIPTION)
    release_id: ReleaseId = Field(description="Identifies the release: a retry of the same request keeps it")
    service: Name = Field(description="The deployed service this release is about")
    environment: Name
