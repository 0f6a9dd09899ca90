"""Where a release waited, who stepped in, which checks flaked: pure rules over logged events, no I/O.

A release's waits, interventions and verification results depend on its own events only, so the
projection recomputes them whenever one of its events is logged, and a rebuild gives the same rows.
Evidence (EvidenceSubmitted) is about an artifact digest, not a release: each one is a check result
of its own. Timestamps are the events' occurred_at, in the order things happened.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.bottleneck_queries import WaitKind
from services.metrics_collector.domain import parse_time

Payload = Mapping[str, Any]

# The gatekeeper says what a release waits for in ReleaseWaiting.waiting_for, each time that changes.
GATE_WAITS = {
    "pending-approval": WaitKind.APPROVAL, "queued-for-window": WaitKind.FREEZE, "waiting-for-slot": WaitKind.SLOT,
    "waiting-for-incident": WaitKind.INCIDENT, "waiting-for-change": WaitKind.CHANGE, "waiting-for-pir": WaitKind.PIR,
    "waiting-for-promotion": WaitKind.PROMOTION, "waiting-for-requirements": WaitKind.REQUIREMENTS,
}
GATE_DECIDED = frozenset({"ReleaseApproved", "ReleaseBlocked", "ReleaseExpired", "ReleaseRejected"})
# A rollout that ends (either way) ends every wait inside it: a pause or a hold does not outlive it.
ROLLOUT_ENDS = frozenset({"DeploymentSucceeded", "DeploymentFailed", "RollbackRequested", "RollbackCompleted"})
VERIFICATION = "verification"
EVIDENCE = "EvidenceSubmitted"
VERIFIED, REJECTED = "ArtifactVerified", "ArtifactRejected"
# A step's health verdict (pass or fail; an inconclusive one answers neither way) is a check of the digest too.
VERDICT, HEALTH = "StepVerdict", "health"


@dataclass(frozen=True)
class WaitSpan:
    kind: WaitKind
    started_at: datetime
    ended_at: datetime | None  # None: still waiting at the end of the log

    def seconds(self, now: datetime) -> float:
        return max(0.0, ((self.ended_at or now) - self.started_at).total_seconds())


@dataclass(frozen=True)
class Intervention:
    command: str  # the command's name: approve, reject, resume_release, abort_release, record_pir...
    actor: str
    at: datetime
    event: str


@dataclass(frozen=True)
class CheckResult:
    key: str  # the event it comes from
    digest: str
    check: str
    passed: bool
    at: datetime
    team: str | None
    service: str | None


@dataclass(frozen=True)
class ReleaseBottleneck:
    release_id: str
    service: str
    environment: str
    team: str | None
    began_at: datetime
    waits: list[WaitSpan] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)


def release_bottleneck(release_id: str, history: Iterable[Payload]) -> ReleaseBottleneck | None:
    """The waits, interventions and verification results of one release's logged events; None without any
    event that has a time."""
    timed = sorted(((at, e) for e in history if (at := parse_time(e.get("occurred_at"))) is not None),
                   key=lambda pair: pair[0])
    if not timed:
        return None
    request = next((e for _, e in timed if e.get("type") == "ReleaseRequested"), None)
    first = request or timed[0][1]
    team = next((e["team"] for _, e in timed if isinstance(e.get("team"), str)), None)
    service, environment = str(first.get("service") or ""), str(first.get("environment") or "")
    found = ReleaseBottleneck(release_id, service, environment, team, timed[0][0], waits=_waits(timed),
                              interventions=[i for at, e in timed if (i := _intervention(at, e)) is not None])
    digest = _digest(request) or next((d for _, e in timed if (d := _digest(e.get("release"))) is not None), None)
    if digest is not None:
        found.checks.extend(
            CheckResult(str(e.get("event_id")), digest, VERIFICATION, e.get("type") == VERIFIED, at, team, service)
            for at, e in timed if e.get("type") in (VERIFIED, REJECTED))
        found.checks.extend(
            CheckResult(str(e.get("event_id")), digest, _health_check(e), e.get("verdict") == "pass", at, team, service)
            for at, e in timed if e.get("type") == VERDICT and e.get("verdict") in ("pass", "fail"))
    return found


def _health_check(verdict: Payload) -> str:
    """A step's health analysis as a check of the release's digest, one per step: a failure at 50% and a pass
    at 10% of the same artifact are not the same check's answers changing."""
    index = verdict.get("step_index")
    return f"{HEALTH} (step {index + 1})" if isinstance(index, int) else HEALTH


def _waits(timed: Sequence[tuple[datetime, Payload]]) -> list[WaitSpan]:
    """Each wait from the event that began it to the one that ended it, in the order they began."""
    spans: list[WaitSpan] = []
    open_: dict[str, tuple[WaitKind, datetime]] = {}  # what holds the release now, by where the wait comes from

    def begin(slot: str, kind: WaitKind, at: datetime) -> None:
        if slot not in open_:
            open_[slot] = (kind, at)

    def end(slot: str, at: datetime) -> None:
        if (began := open_.pop(slot, None)) is not None:
            spans.append(WaitSpan(began[0], began[1], at))

    for at, e in timed:
        kind = e.get("type")
        if kind == "ReleaseWaiting":
            waiting_for = GATE_WAITS.get(str(e.get("waiting_for")))
            # The gatekeeper reports again when what is missing changes: the same kind is the same wait.
            if "gate" in open_ and open_["gate"][0] is not waiting_for:
                end("gate", at)
            if waiting_for is not None:
                begin("gate", waiting_for, at)
        elif kind in GATE_DECIDED:
            end("gate", at)
        elif kind == "RolloutPaused":
            begin("paused", WaitKind.PAUSED, at)
        elif kind == "RolloutResumed":
            end("paused", at)
        elif kind == "StepStarted":
            for slot in [s for s in open_ if s.startswith("analysis")]:
                end(slot, at)
            begin(f"analysis {e.get('step_index')}", WaitKind.ANALYSIS, at)
        elif kind == "StepVerdict":
            end(f"analysis {e.get('step_index')}", at)
            if e.get("verdict") == "inconclusive":
                begin("held", WaitKind.HELD, at)
        elif kind == "ReleasePaused":
            begin("manual", WaitKind.MANUAL_PAUSE, at)
        elif kind in ("ReleaseResumed", "ReleasePromoted"):  # a resume lifts a person's pause and a hold alike
            end("held", at)
            end("manual", at)
            if kind == "ReleasePromoted":  # the rest of the analysis is skipped
                for slot in [s for s in open_ if s.startswith("analysis")]:
                    end(slot, at)
        if kind in ROLLOUT_ENDS:
            for slot in [s for s in open_ if s != "gate"]:
                end(slot, at)
    spans.extend(WaitSpan(kind, began, None) for kind, began in open_.values())
    return sorted(spans, key=lambda span: span.started_at)


def _intervention(at: datetime, event: Payload) -> Intervention | None:
    """A person's command the event carries the signature of; the signer is the event's actor."""
    signed = event.get("signed_command")
    if not isinstance(signed, Mapping) or not isinstance(signed.get("subject"), str):
        return None
    parts = signed["subject"].split(".")  # slipway.cmd.<service>.<command>[.<team>.<service>]
    command = parts[3] if len(parts) > 3 else signed["subject"]
    return Intervention(command, str(event.get("actor") or signed.get("signer") or ""), at, str(event.get("type")))


def _digest(spec: Any) -> str | None:
    artifact = spec.get("artifact") if isinstance(spec, Mapping) else None
    digest = artifact.get("digest") if isinstance(artifact, Mapping) else None
    return digest if isinstance(digest, str) else None


def evidence_check(event: Payload) -> CheckResult | None:
    """An EvidenceSubmitted as a check result; a cancelled run says nothing either way."""
    at = parse_time(event.get("finished_at")) or parse_time(event.get("occurred_at"))
    outcome, digest = event.get("outcome"), event.get("digest")
    if event.get("type") != EVIDENCE or at is None or outcome == "cancel" or not isinstance(digest, str):
        return None
    service = event.get("service")
    return CheckResult(str(event.get("event_id")), digest, str(event.get("kind") or "evidence"), outcome == "pass",
                       at, str(event.get("team") or "") or None, service if isinstance(service, str) else None)


@dataclass(frozen=True)
class Flaky:
    digest: str
    check: str
    failures: int
    first_failed_at: datetime
    passed_at: datetime


def flaky(results: Iterable[CheckResult]) -> list[Flaky]:
    """Checks of one digest that failed and later passed: the artifact did not change, the check's answer did."""
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for result in sorted(results, key=lambda r: (r.at, r.key)):
        groups.setdefault((result.digest, result.check), []).append(result)
    found = []
    for (digest, check), ordered in groups.items():
        first_failure = next((n for n, r in enumerate(ordered) if not r.passed), None)
        if first_failure is None:
            continue
        later_pass = next((r for r in ordered[first_failure:] if r.passed), None)
        if later_pass is not None:
            failures = sum(1 for r in ordered[first_failure:] if not r.passed and r.at <= later_pass.at)
            found.append(Flaky(digest, check, failures, ordered[first_failure].at, later_pass.at))
    return sorted(found, key=lambda f: f.passed_at, reverse=True)


# Per-release waits are kept per day in log-spaced buckets (four per doubling: each about 19% wide), with
# their count and sum, so a team's median over any window comes from a few rows per day, however many
# releases there are: the middle release's wait is taken as its bucket's mean, off by less than the
# bucket's width (and exact when the bucket holds one value); totals and counts stay exact.
BUCKETS_PER_DOUBLING = 4
LAST_BUCKET = 24 * BUCKETS_PER_DOUBLING  # 2^24 s, 194 days: longer waits share the last bucket


def bucket_of(seconds: float) -> int:
    if seconds < 1:
        return 0
    return min(LAST_BUCKET, int(math.log2(seconds) * BUCKETS_PER_DOUBLING))


def bucket_bounds(bucket: int) -> tuple[float, float]:
    low = 0.0 if bucket == 0 else 2 ** (bucket / BUCKETS_PER_DOUBLING)
    return low, 2 ** ((bucket + 1) / BUCKETS_PER_DOUBLING)


def histogram_median(buckets: Mapping[int, tuple[int, float]]) -> float | None:
    """The median of values kept per bucket as (how many, their sum): the middle value (or the two middle ones)
    taken as the mean of its bucket, so it is exact when its bucket holds one value, or equal ones."""
    total = sum(count for count, _ in buckets.values())
    if total <= 0:
        return None
    ordered = sorted((bucket, count, seconds) for bucket, (count, seconds) in buckets.items() if count > 0)

    def value_at(rank: int) -> float:
        seen = 0
        for _, count, seconds in ordered:
            if rank < seen + count:
                return seconds / count
            seen += count
        return ordered[-1][2] / ordered[-1][1]  # not reached: rank < total

    return (value_at((total - 1) // 2) + value_at(total // 2)) / 2


@dataclass(frozen=True)
class KindFigure:
    kind: WaitKind
    releases: int  # whose waits for it are over: the median is over them
    waits: int
    total_s: float
    median_s: float | None
    ongoing: int


def ranked(ended: Iterable[tuple[WaitKind, int, int, int, float]],
           ongoing: Iterable[tuple[WaitKind, float]]) -> list[KindFigure]:
    """A team's waits per kind, biggest total first, from (kind, bucket, releases, waits, seconds) of the waits
    that ended (a release's waits of one kind added up, counted in the bucket of that sum) and (kind, seconds so
    far) of those still going on.

    The median is over releases, so one release that waited ten times does not outweigh nine that waited once."""
    histograms: dict[WaitKind, dict[int, tuple[int, float]]] = {}
    tallies: dict[WaitKind, list[float]] = {}  # releases, waits, seconds, ongoing
    for kind, bucket, releases, waits, seconds in ended:
        histogram = histograms.setdefault(kind, {})
        count, summed = histogram.get(bucket, (0, 0.0))
        histogram[bucket] = (count + releases, summed + seconds)
        tally = tallies.setdefault(kind, [0, 0, 0.0, 0])
        tally[0], tally[1], tally[2] = tally[0] + releases, tally[1] + waits, tally[2] + seconds
    for kind, seconds in ongoing:
        tally = tallies.setdefault(kind, [0, 0, 0.0, 0])
        tally[1], tally[2], tally[3] = tally[1] + 1, tally[2] + seconds, tally[3] + 1
    figures = [KindFigure(kind, int(t[0]), int(t[1]), float(t[2]), histogram_median(histograms.get(kind, {})), int(t[3]))
               for kind, t in tallies.items()]
    return sorted(figures, key=lambda f: (-f.total_s, f.kind.value))


DayKey = tuple[str, str, date, int]  # team ("" for none), kind, day, bucket


def daily_contributions(waits: Iterable[tuple[str | None, str, date, str, float]]) -> dict[DayKey, list[int]]:
    """(team, kind, day, release_id, seconds) of waits that ended -> per (team, kind, day, bucket): [releases,
    waits, milliseconds] (integers, so adding a release's share and taking it away again leaves no residue)."""
    per_release: dict[tuple[str, str, date, str], list[int]] = {}
    for team, kind, day, release_id, seconds in waits:
        sums = per_release.setdefault((team or "", kind, day, release_id), [0, 0])
        sums[0], sums[1] = sums[0] + 1, sums[1] + round(seconds * 1000)
    found: dict[DayKey, list[int]] = {}
    for (team, kind, day, _), (count, ms) in per_release.items():
        row = found.setdefault((team, kind, day, bucket_of(ms / 1000)), [0, 0, 0])
        row[0], row[1], row[2] = row[0] + 1, row[1] + count, row[2] + ms
    return found
