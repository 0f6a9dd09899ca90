"""Pure rules of DORA for every team: duration histograms, percentiles from them, rework, windows. No I/O.

Percentiles without the samples. Each timed fact (a lead time, a recovery time) is counted in a
log-spaced bucket (DDSketch's logarithmic mapping, `ddsketch` on PyPI): every value in bucket k is
within RELATIVE_ERROR of the bucket's representative value. The projection keeps counts per scope,
day and bucket; a window's percentile sums them (at most a few hundred buckets however many facts
there are) and interpolates between the closest ranks as `domain.percentile` does over samples, each
ranked value replaced by its bucket's representative. So the figure is within RELATIVE_ERROR of the
one taken over the samples themselves. A duration of zero or less (a commit time after its
deployment: clocks that disagree) counts as zero, exactly.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ERROR = 0.01
_MAPPING = LogarithmicMapping(relative_accuracy=RELATIVE_ERROR)
ZERO_BUCKET = -(2**31)  # durations of zero or less; below any key the mapping gives a positive duration


def bucket_of(seconds: float) -> int:
    """The histogram bucket a duration is counted in."""
    return int(_MAPPING.key(seconds)) if seconds > 0 else ZERO_BUCKET


def bucket_value(bucket: int) -> float:
    """The value a bucket stands for: within RELATIVE_ERROR of every duration counted in it."""
    return 0.0 if bucket == ZERO_BUCKET else float(_MAPPING.value(bucket))


def percentile_of_buckets(counts: Mapping[int, int], p: float) -> float | None:
    """The p-th percentile of the durations counted in `counts` (bucket -> how many), interpolated between the
    closest ranks like domain.percentile; None when nothing is counted."""
    ordered = sorted((bucket, n) for bucket, n in counts.items() if n > 0)
    total = sum(n for _, n in ordered)
    if not total:
        return None
    rank = (total - 1) * p / 100
    low = int(rank)
    high = min(low + 1, total - 1)
    low_value, high_value = _value_at(ordered, low), _value_at(ordered, high)
    return low_value + (high_value - low_value) * (rank - low)


def _value_at(ordered: list[tuple[int, int]], rank: int) -> float:
    """The representative value of the duration at 0-based `rank` in bucket order."""
    seen = 0
    for bucket, n in ordered:
        seen += n
        if rank < seen:
            return bucket_value(bucket)
    raise IndexError(rank)  # callers keep rank below the total


# --- what a release says about itself ----------------------------------------------------------

DECLARED, EMERGENCY, INCIDENT = "declared", "emergency", "incident"
REWORK_REASONS = (DECLARED, EMERGENCY, INCIDENT)
NO_TEAM = ""  # a release that names no team: its facts are kept under this, shown as "(no team)"


def _request(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((e for e in history if e.get("type") == "ReleaseRequested"), None)


def rework_reason(history: Iterable[Mapping[str, Any]]) -> str | None:
    """Why a release's deployments are rework (unplanned, fixing a user-facing problem), or None when they are not.

    The release says so (`unplanned: true`): DECLARED. Otherwise slipway infers it from an emergency
    release class (EMERGENCY) or, failing that, from a link to an incident (INCIDENT). Its first request decides:
    a CI retry of the same release id does not change what the release was.
    """
    request = _request(history)
    if request is None:
        return None
    if request.get("unplanned") is True:
        return DECLARED
    if request.get("release_class") == "emergency":
        return EMERGENCY
    if isinstance(request.get("incident"), str) and request["incident"]:
        return INCIDENT
    return None


def team_of(history: Iterable[Mapping[str, Any]]) -> str:
    """The team a release belongs to: its request's `team` (ReleaseRequested.spec.team), else the first event that
    names one, else NO_TEAM."""
    events = list(history)
    request = _request(events)
    if request is not None and isinstance(request.get("team"), str) and request["team"]:
        return str(request["team"])
    return next((str(e["team"]) for e in events if isinstance(e.get("team"), str) and e["team"]), NO_TEAM)


# --- windows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Whole UTC days, both ends included, and the number of days deployment frequency divides by."""

    first: date
    last: date
    days: int


class BadWindow(ValueError):
    """A window that cannot be answered; the message says why."""


def window(now: datetime, days: int, since: date | None = None, until: date | None = None) -> Window:
    """`--days N`: from the day N days ago to today (N days to divide by, as before); `--since/--until`: those days,
    `until` defaulting to today, and as many days as they span."""
    today = now.astimezone(UTC).date()
    if since is None:
        return Window((now - timedelta(days=days)).astimezone(UTC).date(), today, days)
    last = until or today
    if since > today:
        raise BadWindow(f"the window starts on {since}, after today ({today} UTC): nothing can have happened yet")
    if since > last:
        raise BadWindow(f"the window starts on {since}, after it ends on {last}")
    return Window(since, last, (last - since).days + 1)
