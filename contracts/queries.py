"""What the metrics-collector's queries answer: typed, paginated replies carried in CommandResult.data.

A reply is `CommandResult(ok, message, data=<one of these>.model_dump(mode="json"))`, so the
request/reply transport stays one shape for every command while a reader of `data` can parse it
with the model here. Pages count from 1; a page past the end is an empty page that still says
how many items there are in all.
"""

from datetime import date, datetime
from typing import Any

from pydantic import Field

from contracts.envelope import Model

PAGE_MAX = 1000  # items in one page: a page must fit one NATS message
SAMPLES_SHOWN = 50  # the newest lead-time and restore samples a DORA reply lists; its totals cover them all


class Page(Model):
    page: int = Field(ge=1)
    limit: int = Field(ge=1, le=PAGE_MAX)
    total: int = Field(ge=0, description="Items in all, on every page")


class ReleaseView(Model):
    release_id: str
    service: str
    environment: str
    team: str | None = None
    version: str
    state: str
    last_event: str
    updated_at: datetime
    reason: str
    events: int = Field(ge=0, description="Events logged for the release (flagged ones left out)")
    history: list[dict[str, Any]] | None = Field(
        default=None, description="One page of the release's events in the order they happened (one release asked for)")


class ReleasesReply(Page):
    """`status`: a page of releases, newest first; or one release with a page of its events (then the
    page counts events, and `total` is the release's event count)."""

    releases: list[ReleaseView]


class Sample(Model):
    release_id: str
    seconds: float


class DoraReply(Model):
    window_days: int
    first_day: date
    last_day: date
    service: str | None = None
    environment: str | None = None
    deployments: int
    deployment_frequency_per_day: float
    lead_time_median_s: float | None
    lead_time_p90_s: float | None
    lead_time_mean_s: float | None = Field(description="From the daily sums: costs the same however many there are")
    lead_times: list[Sample] = Field(description=f"The newest {SAMPLES_SHOWN} lead times")
    lead_times_total: int
    changes: int
    failed_changes: int
    change_failure_rate: float
    time_to_restore_median_s: float | None
    time_to_restore_mean_s: float | None
    restores: list[Sample] = Field(description=f"The newest {SAMPLES_SHOWN} restores")
    restores_total: int


class Flag(Model):
    seq: int
    reason: str


class UnverifiedCommand(Model):
    seq: int
    event_id: str
    type: str
    reason: str


class BadCheckpointView(Model):
    seq: int
    reason: str


class AuditReply(Model):
    records: int
    first_bad_seq: int | None
    reason: str
    head_hash: str | None
    flagged: list[Flag]
    flagged_count: int
    signed_commands: int
    unverified_commands: list[UnverifiedCommand]
    unverified_count: int
    mode: str = Field(default="full", description="checkpoint: from the newest signed checkpoint that holds; full; range")
    checkpoint_seq: int | None = Field(default=None, description="The checkpoint verification started from")
    checked_from: int | None = Field(default=None, description="The first seq re-hashed")
    checked_to: int | None = Field(default=None, description="The last seq re-hashed")
    rehashed: int = Field(default=0, description="Records re-hashed by this verification")
    checkpoints: int = Field(default=0, description="Signed checkpoints checked")
    bad_checkpoints: list[BadCheckpointView] = Field(default=[], description="Checkpoints forged, edited or "
                                                       "contradicted by the log, with why")

