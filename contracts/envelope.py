"""The envelope every slipway event carries, and how one event causes the next."""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from ulid import ULID

SCHEMA_VERSION = 1
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
# Ids slipway makes are ULIDs (26 characters of Crockford base32); a CI may bring its own, so any
# id-like token is accepted. "+" because release ids built by the CLI carry the version (1.4.2+build).
ID_PATTERN = r"^[A-Za-z0-9._:+-]+$"
# 64 because every table that stores an event id (processed, outbox, event_log) declares String(64).
EVENT_ID_MAX = 64
RELEASE_ID_MAX = 128
ACTOR_MAX = 200
TEXT_MAX = 8192  # a reason, a summary, a message: a few KB, room for a URL and an error text
ITEMS_MAX = 100  # a list of reasons or field errors
# JSON Schema's `format: date-time` is not asserted by default validators, and says nothing of
# pydantic's AwareDatetime: this pattern requires a time zone (Z or an offset) the way slipway does.
ZONED_DATETIME_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9]([.,][0-9]+)?)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)

EVENT_ID_DESCRIPTION = "Identifies this message: a retried publish keeps it; it is also the Nats-Msg-Id header"

EventId = Annotated[str, Field(min_length=1, max_length=EVENT_ID_MAX, pattern=ID_PATTERN)]
ReleaseId = Annotated[str, Field(min_length=1, max_length=RELEASE_ID_MAX, pattern=ID_PATTERN)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
ZonedDatetime = Annotated[AwareDatetime, Field(json_schema_extra={"pattern": ZONED_DATETIME_PATTERN})]


def new_event_id() -> str:
    # ULIDs sort by creation time, so the event log and the stream agree on order at a glance.
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    # Tolerant reader: unknown fields are ignored so producers can add fields without breaking consumers.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(Model):
    """Envelope every event has: who, what, when, and what caused it.

    It is not about a release: freezes, incidents, change records, policy reloads and refusals are
    events of their own and say what they are about in their own fields. A release's events are
    ReleaseEvents, which add the release, service and environment.
    """

    subject: ClassVar[str] = ""
    registry: ClassVar[dict[str, type["Event"]]] = {}

    event_id: EventId = Field(default_factory=new_event_id, description=EVENT_ID_DESCRIPTION)
    # Empty only until model_post_init names the class.
    type: str = Field(default="", max_length=100, pattern=r"^([A-Za-z][A-Za-z0-9_]*)?$")
    occurred_at: ZonedDatetime = Field(default_factory=utcnow)
    correlation_id: str = Field(
        default="", max_length=RELEASE_ID_MAX, pattern=r"^[A-Za-z0-9._:+-]*$",
        description="The thread this event belongs to: its release, or the freeze, incident or change it is about",
    )
    causation_id: EventId | None = Field(default=None, description="event_id of the event that caused this one")
    actor: str = Field(default="slipway", max_length=ACTOR_MAX, description="Pipeline identity or person responsible")
    source: str = Field(default="", max_length=100, description="The slipway service that emitted the event")
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=1000)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "subject" in cls.__dict__:
            if cls.__name__ in Event.registry:
                raise TypeError(f"event type {cls.__name__} is declared twice")
            Event.registry[cls.__name__] = cls

    def model_post_init(self, context: Any) -> None:
        # type is derived; set it even on a frozen model.
        if not self.type:
            object.__setattr__(self, "type", type(self).__name__)

    def address(self) -> str:
        """The subject this event is published on: its class's subject with `{field}` tokens filled in."""
        from contracts.subjects import address

        names = [token[1:-1] for token in self.subject.split(".") if token.startswith("{")]
        return address(self.subject, {name: str(getattr(self, name)) for name in names}) if names else self.subject

    def headers(self) -> dict[str, str]:
        # Nats-Msg-Id makes a retried publish of the same event a no-op inside the duplicate window.
        return {"Nats-Msg-Id": self.event_id, "slipway-type": self.type}


class ReleaseEvent(Event):
    """An event about one release: the envelope plus the release, its service and its environment."""

    release_id: ReleaseId
    service: Name = Field(description="The deployed service this event is about")
    environment: Name

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if not self.correlation_id and self.release_id:
            object.__setattr__(self, "correlation_id", self.release_id)

    @classmethod
    def caused_by(cls, cause: "ReleaseEvent", source: str, actor: str | None = None, **fields: Any) -> Self:
        """A new event that continues `cause`'s release: same release, correlation, service, environment."""
        return cls(
            release_id=cause.release_id,
            service=cause.service,
            environment=cause.environment,
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            actor=actor or cause.actor,
            source=source,
            **fields,
        )
