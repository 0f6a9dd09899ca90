"""The envelope every slipway event carries, and how one event causes the next."""

from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from ulid import ULID

SCHEMA_VERSION = 1
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


def new_event_id() -> str:
    # ULIDs sort by creation time, so the event log and the stream agree on order at a glance.
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    # Tolerant reader: unknown fields are ignored so producers can add fields without breaking consumers.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(Model):
    """Envelope: who, what, when, for which release, caused by what."""

    subject: ClassVar[str] = ""
    registry: ClassVar[dict[str, type["Event"]]] = {}

    event_id: str = Field(default_factory=new_event_id)
    type: str = ""
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    release_id: str = Field(min_length=1, max_length=128)
    service: str = Field(pattern=NAME_PATTERN, description="The deployed service this event is about")
    environment: str = Field(pattern=NAME_PATTERN)
    correlation_id: str = Field(default="", description="The release this event belongs to")
    causation_id: str | None = Field(default=None, description="event_id of the event that caused this one")
    actor: str = Field(default="slipway", description="Pipeline identity or person responsible")
    source: str = Field(default="", description="The slipway service that emitted the event")
    schema_version: int = SCHEMA_VERSION

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "subject" in cls.__dict__:
            if cls.__name__ in Event.registry:
                raise TypeError(f"event type {cls.__name__} is declared twice")
            Event.registry[cls.__name__] = cls

    def model_post_init(self, context: Any) -> None:
        # type and correlation_id are derived; set them even on a frozen model.
        if not self.type:
            object.__setattr__(self, "type", type(self).__name__)
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.release_id)

    @classmethod
    def caused_by(cls, cause: "Event", source: str, actor: str | None = None, **fields: Any) -> Self:
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

    def headers(self) -> dict[str, str]:
        # Nats-Msg-Id makes a retried publish of the same event a no-op inside the duplicate window.
        return {"Nats-Msg-Id": self.event_id, "slipway-type": self.type}
