"""Commands people send (request/reply) and the answers they get."""

from typing import Any

from pydantic import Field, model_validator

from contracts.envelope import ACTOR_MAX, NAME_PATTERN, RELEASE_ID_MAX, Model, Name, ReleaseId, ZonedDatetime

# A reply is slipway's own text, and may carry an exception's; bounded, but not tightly.
REPLY_MESSAGE_MAX = 65_536


class CommandResult(Model):
    ok: bool
    message: str = Field(max_length=REPLY_MESSAGE_MAX)
    data: dict[str, Any] = Field(default={}, max_length=50)


class FreezeEnvironment(Model):
    environment: str = Field(pattern=NAME_PATTERN)
    starts_at: ZonedDatetime
    ends_at: ZonedDatetime
    reason: str = Field(min_length=1, max_length=500)
    actor: str = Field(min_length=1, max_length=ACTOR_MAX)

    @model_validator(mode="after")
    def ends_after_start(self) -> "FreezeEnvironment":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class LiftFreeze(Model):
    freeze_id: str = Field(min_length=1, max_length=64)
    actor: str = Field(min_length=1, max_length=ACTOR_MAX)


class ListFreezes(Model):
    environment: Name | None = None


class QueryDora(Model):
    service: Name | None = None
    environment: Name | None = None
    days: int = Field(default=30, ge=1, le=3650)


class VerifyAudit(Model):
    pass


class QueryReleases(Model):
    release_id: str | None = Field(default=None, min_length=1, max_length=RELEASE_ID_MAX)
    limit: int = Field(default=20, ge=1, le=1000)


class ResumeRelease(Model):
    """A person accepts the step a release is held at: the release goes on as after a passing verdict."""

    release_id: ReleaseId
    actor: str = Field(min_length=1, max_length=ACTOR_MAX)
    comment: str = Field(min_length=1, max_length=500)


class AbortRelease(Model):
    """A person ends a release in flight: it is rolled back to the version that was stable."""

    release_id: ReleaseId
    actor: str = Field(min_length=1, max_length=ACTOR_MAX)
    reason: str = Field(min_length=1, max_length=500)
