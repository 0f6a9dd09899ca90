"""Commands people send (request/reply) and the answers they get.

A person's command (one that changes something: contracts.rights.PEOPLE_COMMANDS) travels inside a
SignedCommand: the command's exact JSON text and an ed25519 signature by that person's key over
`signed_bytes()`, which bind the subject, the command id and the time of issue to the text. The
owning service verifies it against the identity registry (libs.commands.serve_signed_command) and
records the verified identity as the actor; no command carries an actor of its own.
"""

from datetime import UTC
from typing import Any

from pydantic import Field, model_validator

from contracts.dora_queries import WindowQuery
from contracts.envelope import NAME_PATTERN, RELEASE_ID_MAX, Model, Name, ReleaseId, ZonedDatetime
from contracts.release import Team

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

    @model_validator(mode="after")
    def ends_after_start(self) -> "FreezeEnvironment":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class LiftFreeze(Model):
    freeze_id: str = Field(min_length=1, max_length=64)


class ListFreezes(Model):
    environment: Name | None = None


class QueryDora(WindowQuery):
    """DORA figures of one service, team and/or environment (all of them when not given) over a window."""

    service: Name | None = None
    environment: Name | None = None
    team: Name | None = None


class VerifyAudit(Model):
    """By default from the newest signed checkpoint that still holds (only the records after it are re-hashed);
    `full` re-hashes the whole log; `from_seq`/`to_seq` re-hash that range only."""

    full: bool = False
    from_seq: int | None = Field(default=None, ge=1, le=2**63 - 1)
    to_seq: int | None = Field(default=None, ge=1, le=2**63 - 1)

    @model_validator(mode="after")
    def one_way(self) -> "VerifyAudit":
        ranged = self.from_seq is not None or self.to_seq is not None
        if self.full and ranged:
            raise ValueError("give either full or a range (from_seq/to_seq), not both")
        if self.from_seq is not None and self.to_seq is not None and self.to_seq < self.from_seq:
            raise ValueError(f"to_seq ({self.to_seq}) is before from_seq ({self.from_seq})")
        return self


# Teams one status query may name: a person's teams (the dashboard asks for all of a scoped reader's).
QUERY_TEAMS_MAX = 100


class QueryReleases(Model):
    """Releases newest first, a page at a time; with `release_id`, that release and a page of its events.

    With `teams`, only those teams' releases: the page and its total count them alone, and one release
    asked for by id that is of another team (or of none) is not shown."""

    release_id: str | None = Field(default=None, min_length=1, max_length=RELEASE_ID_MAX)
    teams: list[Team] | None = Field(default=None, min_length=1, max_length=QUERY_TEAMS_MAX,
                                     description="Only these teams' releases (omitted: every release)")
    limit: int = Field(default=20, ge=1, le=1000, description="Items per page: releases, or one release's events")
    page: int = Field(default=1, ge=1, le=1_000_000, description="Which page, counting from 1")


class ResumeRelease(Model):
    """A person lifts their pause of a release and/or accepts the step it is held at: it goes on as after a
    passing verdict."""

    release_id: ReleaseId
    comment: str = Field(min_length=1, max_length=500)


class PauseRelease(Model):
    """A person holds a release in flight where it is: its current step is still judged (a failing verdict still
    rolls it back), but a passing one does not move it on until someone resumes it."""

    release_id: ReleaseId
    reason: str = Field(min_length=1, max_length=500)


class PromoteRelease(Model):
    """A person skips a release's remaining analysis and steps: it goes to all traffic, then succeeds as usual."""

    release_id: ReleaseId
    comment: str = Field(min_length=1, max_length=500)


class AbortRelease(Model):
    """A person ends a release in flight: it is rolled back to the version that was stable."""

    release_id: ReleaseId
    reason: str = Field(min_length=1, max_length=500)


SIGNATURE_DOMAIN = b"slipway-command/1\n"  # a signature over these bytes means nothing anywhere else
COMMAND_JSON_MAX = 16_384
ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
SIGNER_PATTERN = r"^[a-z]+:[a-z0-9][a-z0-9_-]{0,62}$"


class SignedCommand(Model):
    """A person's command with the proof of who sent it; the owning service checks it before acting."""

    subject: str = Field(pattern=r"^slipway\.cmd\.[a-z_-]+\.[a-z_]+(\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?$", max_length=200,
                         description="The command subject it was signed for, with the team and service it is addressed "
                         "to when the command acts on one release; sent to another, it is refused")
    command: str = Field(max_length=COMMAND_JSON_MAX, description="The command's exact JSON text, as signed")
    command_id: str = Field(pattern=ULID_PATTERN, description="A ULID; a service acts on each id once")
    issued_at: ZonedDatetime = Field(description="When it was signed; refused outside the service's window")
    signer: str = Field(pattern=SIGNER_PATTERN, description="The identity that signed, `person:<name>`")
    signature: str = Field(pattern=r"^[A-Za-z0-9_-]{86}$",
                           description="ed25519 over signed_bytes(), base64url without padding")

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.subject, self.command_id, self.issued_at.astimezone(UTC).isoformat(), self.signer,
                            self.command)


def signed_bytes(subject: str, command_id: str, issued_at: str, signer: str, command_json: str) -> bytes:
    """The canonical bytes a person signs: every part on its own line, the command text last and verbatim."""
    return SIGNATURE_DOMAIN + "\n".join((subject, command_id, issued_at, signer, command_json)).encode()


class ApproveRelease(Model):
    """A person's yes to a release that waits for approvals (a sign-off, a risk approval or an exception)."""

    release_id: ReleaseId
    comment: str = Field(min_length=1, max_length=500)


class RejectRelease(Model):
    """A person's no to a waiting release: it ends, with this comment."""

    release_id: ReleaseId
    comment: str = Field(min_length=1, max_length=500)


class ListApprovals(Model):
    """Releases that wait for people, oldest first, with what each still needs."""

    environment: Name | None = None


class ReloadPolicy(Model):
    """Read the gatekeeper's policy files now; a broken one is refused with file, line and field."""

    reason: str = Field(default="", max_length=500)


class CheckDrift(Model):
    """Compare what the deployer runs in an environment with its declaration now; each drifted service is recorded.

    With `reconcile`, what drifted is then put back as declared, where the declaration's `drift.reconcile` allows."""

    environment: Name
    reconcile: bool = False
