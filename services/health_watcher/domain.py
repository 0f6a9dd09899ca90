"""Is this step healthy? Pure judgement of one version's request metrics against the release's triggers."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from contracts.events import Severity, Verdict

# A step close to a limit is worth a warning before it is worth a rollback.
MARGIN = 0.5
# Synthetic traffic is evidence, not load: however a release is configured, a step sends at most this many.
MAX_PROBES = 2000
PERSON_DECIDES = (
    "a person must decide: the release holds its current weights until "
    "`slipway release resume` or `slipway release abort`"
)


@dataclass(frozen=True)
class Observed:
    requests: int
    errors: int
    error_rate: float
    p99_ms: float


@dataclass(frozen=True)
class Triggers:
    max_error_rate: float
    max_p99_latency_ms: float
    min_requests: int


def judge(new: Observed, triggers: Triggers, stable: Observed | None = None) -> tuple[Verdict, list[str]]:
    """fail beats marginal beats pass; every verdict says why, with the numbers."""
    failures: list[str] = []
    warnings: list[str] = []
    if new.requests < triggers.min_requests:
        failures.append(f"only {new.requests} requests reached the new version; at least {triggers.min_requests} needed")
    if new.error_rate > triggers.max_error_rate:
        failures.append(f"error rate {new.error_rate:.1%} exceeds {triggers.max_error_rate:.1%} ({new.errors}/{new.requests})")
    elif new.error_rate > triggers.max_error_rate * MARGIN:
        warnings.append(f"error rate {new.error_rate:.1%} is close to the {triggers.max_error_rate:.1%} limit")
    if new.p99_ms > triggers.max_p99_latency_ms:
        failures.append(f"p99 latency {new.p99_ms:.0f} ms exceeds {triggers.max_p99_latency_ms:.0f} ms")
    elif new.p99_ms > triggers.max_p99_latency_ms * (1 - MARGIN / 2):
        warnings.append(f"p99 latency {new.p99_ms:.0f} ms is close to the {triggers.max_p99_latency_ms:.0f} ms limit")
    comparison = [] if stable is None or stable.requests == 0 else [
        f"stable version: error rate {stable.error_rate:.1%}, p99 {stable.p99_ms:.0f} ms over {stable.requests} requests"
    ]
    if failures:
        return Verdict.FAIL, failures + comparison
    if warnings:
        return Verdict.MARGINAL, warnings + comparison
    summary = f"error rate {new.error_rate:.1%}, p99 {new.p99_ms:.0f} ms over {new.requests} requests: within limits"
    return Verdict.PASS, [summary] + comparison


@dataclass(frozen=True)
class Patience:
    """How long thin evidence is waited out, and what happens when it is still thin."""

    max_extensions: int
    on_inconclusive: Literal["fail", "pause"]


@dataclass(frozen=True)
class Extend:
    reason: str


@dataclass(frozen=True)
class Conclude:
    verdict: Verdict
    reasons: list[str]


def assess(
    new: Observed, triggers: Triggers, stable: Observed | None, *, extensions: int, observed_s: float, patience: Patience
) -> Extend | Conclude:
    """Judge the window, or watch longer when too few requests reached the new version to judge it.

    Too little traffic says nothing about health: it extends the window up to the bound, then fails the
    step or pauses it for a person, as configured, saying it was inconclusive and why.
    """
    if new.requests >= triggers.min_requests:
        return Conclude(*judge(new, triggers, stable))
    if extensions < patience.max_extensions:
        return Extend(
            f"{new.requests} of {triggers.min_requests} requests needed after {observed_s:.1f} s: "
            f"extending the window ({extensions + 1} of {patience.max_extensions})"
        )
    _, reasons = judge(new, triggers, stable)
    headline = (
        f"inconclusive: {new.requests} of the {triggers.min_requests} requests needed reached the new version "
        f"in {observed_s:.1f} s (window extended {extensions} times)"
    )
    if patience.on_inconclusive == "pause":
        return Conclude(Verdict.INCONCLUSIVE, [headline, *reasons, PERSON_DECIDES])
    return Conclude(Verdict.FAIL, [headline, *reasons])


class Routing(StrEnum):
    WEIGHTED = "weighted"  # the router gives the new version the step's weight
    PRESENT = "present"  # the router knows the new version, at another weight
    ABSENT = "absent"


def routing(routes: Any, version: str, weight: int) -> Routing:
    """Where the router's `/routes` document puts `version`; ValueError when it is not such a document."""
    backends = routes.get("backends") if isinstance(routes, dict) else None
    if not isinstance(backends, list) or not all(isinstance(b, dict) for b in backends):
        raise ValueError(f'routes must be an object with a "backends" list, got {str(routes)[:200]}')
    weights = [b.get("weight") for b in backends if b.get("version") == version]
    if not weights:
        return Routing.ABSENT
    return Routing.WEIGHTED if weights[0] == weight else Routing.PRESENT


def alert_severity(verdict: Verdict) -> Severity | None:
    return {
        Verdict.FAIL: Severity.CRITICAL, Verdict.MARGINAL: Severity.WARNING, Verdict.INCONCLUSIVE: Severity.WARNING,
    }.get(verdict)


def probe_schedule(interval_s: float, min_requests: int, rate_per_s: float) -> tuple[int, float]:
    """How many synthetic requests to send over the interval, and the gap between them.

    Enough for the step to be judged on evidence even when no user traffic arrives, spread so the
    last one lands before the window closes.
    """
    count = min(MAX_PROBES, max(2 * min_requests, int(rate_per_s * interval_s)))
    return count, (interval_s * 0.8) / count
