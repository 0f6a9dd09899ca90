"""Commands people send (request/reply) and the answers they get."""

from typing import Any

from pydantic import AwareDatetime, Field, model_validator

from contracts.envelope import NAME_PATTERN, Model


class CommandResult(Model):
    ok: bool
    message: str
    data: dict[str, Any] = {}


class FreezeEnvironment(Model):
    environment: str = Field(pattern=NAME_PATTERN)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)
    actor: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def ends_after_start(self) -> "FreezeEnvironment":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class LiftFreeze(Model):
    freeze_id: str = Field(min_length=1)
    actor: str = Field(min_length=1, max_length=200)


class ListFreezes(Model):
    environment: str | None = None


class QueryDora(Model):
    service: str | None = None
    environment: str | None = None
    days: int = Field(default=30, ge=1, le=3650)


class VerifyAudit(Model):
    pass


class QueryReleases(Model):
    release_id: str | None = None
    limit: int = Field(default=20, ge=1, le=1000)
