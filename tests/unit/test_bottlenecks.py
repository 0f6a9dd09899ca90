"""Where a release waited, who stepped in and which checks flaked, from its events alone (no I/O)."""

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.bottleneck_queries import WaitKind
from services.metrics_collector.bottleneck_domain import (CheckResult, WaitSpan, bucket_of, daily_contributions,
                                                          evidence_check, flaky, histogram_median, ranked,
                                                          release_bottleneck)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def event(kind: str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"{kind}-{minutes}", "occurred_at": at(minutes), "release_id": "r1",
            "service": "checkout", "environment": "prod", **fields}


def signed(command: str, actor: str) -> dict[str, Any]:
    return {"signed_command": {"subject": f"slipway.cmd.{command}.payments.checkout", "signer": actor}, "actor": actor}


def spans(history: list[dict[str, Any]]) -> list[tuple[WaitKind, float | None]]:
    found = release_bottleneck("r1", history)
    assert found is not None
    return [(w.kind, (w.ended_at - w.started_at).total_seconds() / 60 if w.ended_at else None) for w in found.waits]


def test_gate_waits_last_from_the_wait_to_the_decision_and_the_same_kind_reported_again_is_one_wait() -> None:
    history = [
        event("ReleaseRequested", 0, team="payments", artifact={"digest": DIGEST}),
        event("ReleaseWaiting", 1, waiting_for="queued-for-window"),
        event("ReleaseWaiting", 31, waiting_for="pending-approval"),
        event("ApprovalRecorded", 40, **signed("gatekeeper.approve", "person:ann")),
        event("ReleaseWaiting", 40, waiting_for="pending-approval"),  # one approval of two: still the same wait
        event("ReleaseWaiting", 50, waiting_for="waiting-for-slot"),
        event("ReleaseApproved", 65),
    ]
    assert spans(history) == [(WaitKind.FREEZE, 30), (WaitKind.APPROVAL, 19), (WaitKind.SLOT, 15)]


def test_events_logged_out_of_order_are_read_in_the_order_they_happened() -> None:
    history = [event("ReleaseApproved", 10), event("ReleaseWaiting", 2, waiting_for="pending-approval"),
               event("ReleaseRequested", 0, team="payments")]
    found = release_bottleneck("r1", history)
    assert found is not None and found.began_at == T0 and found.team == "payments"
    assert spans(history) == [(WaitKind.APPROVAL, 8)]


def test_analysis_pause_and_hold_end_with_their_verdict_resume_or_the_rollout() -> None:
    history = [
        event("ReleaseRequested", 0, team="payments"),
        event("StepStarted", 10, step_index=0),
        event("RolloutPaused", 11, incident_id="INC-1"),
        event("StepVerdict", 13, step_index=0, verdict="pass"),
        event("RolloutResumed", 20, incident_id="INC-1"),
        event("StepStarted", 21, step_index=1),
        event("StepVerdict", 24, step_index=1, verdict="inconclusive"),
        event("ReleaseResumed", 54, step_index=1, **signed("deployer.resume_release", "person:bob")),
        event("StepStarted", 55, step_index=2),
        event("RollbackRequested", 57, **signed("rollback.abort_release", "person:cat")),
    ]
    assert spans(history) == [(WaitKind.ANALYSIS, 3), (WaitKind.PAUSED, 9), (WaitKind.ANALYSIS, 3),
                              (WaitKind.HELD, 30), (WaitKind.ANALYSIS, 2)]
    found = release_bottleneck("r1", history)
    assert found is not None
    assert [(i.command, i.actor, i.event) for i in found.interventions] == [
        ("resume_release", "person:bob", "ReleaseResumed"), ("abort_release", "person:cat", "RollbackRequested")]


def test_a_persons_pause_lasts_until_they_resume_or_promote_it() -> None:
    history = [
        event("ReleaseRequested", 0),
        event("StepStarted", 1, step_index=0),
        event("ReleasePaused", 2, step_index=0, **signed("deployer.pause_release", "person:bob")),
        event("StepVerdict", 3, step_index=0, verdict="pass"),
        event("ReleaseResumed", 12, step_index=0, **signed("deployer.resume_release", "person:bob")),
        event("StepStarted", 13, step_index=1),
        event("ReleasePaused", 14, step_index=1, **signed("deployer.pause_release", "person:bob")),
        event("ReleasePromoted", 20, step_index=1, **signed("deployer.promote_release", "person:cat")),
        event("DeploymentSucceeded", 21),
    ]
    assert spans(history) == [(WaitKind.ANALYSIS, 2), (WaitKind.MANUAL_PAUSE, 10), (WaitKind.ANALYSIS, 7),
                              (WaitKind.MANUAL_PAUSE, 6)]
    found = release_bottleneck("r1", history)
    assert found is not None
    assert [i.command for i in found.interventions] == ["pause_release", "resume_release", "pause_release",
                                                        "promote_release"]


def test_a_wait_not_over_yet_has_no_end_and_counts_up_to_now() -> None:
    history = [event("ReleaseRequested", 0), event("ReleaseWaiting", 5, waiting_for="pending-approval")]
    found = release_bottleneck("r1", history)
    assert found is not None and found.waits == [WaitSpan(WaitKind.APPROVAL, T0 + timedelta(minutes=5), None)]
    assert found.waits[0].seconds(T0 + timedelta(minutes=65)) == 3600


def test_a_release_without_any_timed_event_has_no_row_and_unsigned_events_are_no_interventions() -> None:
    assert release_bottleneck("r1", [{"type": "ReleaseRequested", "occurred_at": "yesterday"}]) is None
    found = release_bottleneck("r1", [event("ApprovalRecorded", 1, actor="person:ann", signed_command=None)])
    assert found is not None and found.interventions == []


def test_verification_results_are_checks_of_the_requested_digest() -> None:
    found = release_bottleneck("r1", [event("ReleaseRequested", 0, team="payments", artifact={"digest": DIGEST}),
                                      event("ArtifactRejected", 1, reason="signature source unreachable")])
    assert found is not None
    assert [(c.digest, c.check, c.passed, c.team) for c in found.checks] == [(DIGEST, "verification", False, "payments")]


def test_health_verdicts_are_checks_of_the_digest_per_step_and_a_later_pass_of_that_step_makes_them_flaky() -> None:
    requested = event("ReleaseRequested", 0, team="payments", artifact={"digest": DIGEST})
    first = release_bottleneck("r1", [requested, event("StepVerdict", 5, step_index=0, verdict="pass"),
                                      event("StepVerdict", 9, step_index=1, verdict="fail")])
    # The same artifact released again: step 2 (index 1) held this time; an inconclusive verdict answers nothing.
    again = release_bottleneck("r2", [requested | {"release_id": "r2", "occurred_at": at(60)},
                                      event("StepVerdict", 65, step_index=1, verdict="inconclusive"),
                                      event("StepVerdict", 70, step_index=1, verdict="pass")])
    assert first is not None and again is not None
    assert [(c.check, c.passed) for c in first.checks] == [("health (step 1)", True), ("health (step 2)", False)]
    assert [(c.check, c.passed) for c in again.checks] == [("health (step 2)", True)]
    found = flaky([*first.checks, *again.checks])
    assert [(f.check, f.failures, f.passed_at) for f in found] == [("health (step 2)", 1, T0 + timedelta(minutes=70))]


def check(minutes: float, passed: bool, kind: str = "verification", digest: str = DIGEST) -> CheckResult:
    return CheckResult(f"{kind}-{minutes}", digest, kind, passed, T0 + timedelta(minutes=minutes), "payments", None)


def test_a_check_that_failed_then_passed_on_the_same_digest_is_flaky_and_one_that_stays_failed_is_not() -> None:
    other = "sha256:" + "b" * 64
    found = flaky([check(0, True), check(5, False), check(6, False), check(9, True), check(20, False),
                   check(1, False, "performance"), check(2, False, digest=other), check(3, True, "security")])
    assert [(f.digest, f.check, f.failures, f.first_failed_at, f.passed_at) for f in found] == [
        (DIGEST, "verification", 2, T0 + timedelta(minutes=5), T0 + timedelta(minutes=9))]


def test_evidence_outcomes_are_check_results_and_a_cancelled_run_is_none() -> None:
    evidence = {"type": "EvidenceSubmitted", "event_id": "e1", "occurred_at": at(3), "digest": DIGEST,
                "kind": "performance", "team": "payments", "service": None, "outcome": "error"}
    result = evidence_check(evidence)
    assert result is not None and (result.check, result.passed, result.team) == ("performance", False, "payments")
    assert evidence_check(evidence | {"outcome": "cancel"}) is None
    assert evidence_check(evidence | {"outcome": "pass"}).passed  # type: ignore[union-attr]


def test_ranking_puts_the_biggest_total_first_with_ongoing_waits_in_the_total_not_the_median() -> None:
    ended = [(WaitKind.APPROVAL, bucket_of(1200), 1, 2, 1200.0), (WaitKind.APPROVAL, bucket_of(60), 1, 1, 60.0),
             (WaitKind.SLOT, bucket_of(1000), 1, 1, 1000.0), (WaitKind.ANALYSIS, bucket_of(30), 1, 2, 30.0)]
    figures = ranked(ended, [(WaitKind.APPROVAL, 120.0), (WaitKind.HELD, 5.0)])
    assert [(f.kind, f.total_s, f.releases, f.waits, f.ongoing) for f in figures] == [
        (WaitKind.APPROVAL, 1380, 2, 4, 1), (WaitKind.SLOT, 1000, 1, 1, 0), (WaitKind.ANALYSIS, 30, 1, 2, 0),
        (WaitKind.HELD, 5, 0, 1, 1)]
    assert figures[-1].median_s is None  # no hold is over yet


def test_a_median_from_buckets_is_off_by_less_than_a_bucket_and_buckets_add_up_per_release() -> None:
    for values in ([30.0], [60.0, 120.0, 1800.0], [float(n * n) for n in range(1, 400)], [0.2, 0.5, 3.0, 86_400.0 * 400]):
        buckets: dict[int, tuple[int, float]] = {}
        for value in values:
            count, summed = buckets.get(bucket_of(value), (0, 0.0))
            buckets[bucket_of(value)] = (count + 1, summed + value)
        found, exact = histogram_median(buckets), statistics.median(values)
        assert found is not None and abs(found - exact) <= 0.19 * exact + 1.2, (values, found, exact)
    assert histogram_median({bucket_of(1800): (1, 1800.0)}) == 1800  # one release: its own wait
    assert histogram_median({bucket_of(60): (1, 60.0), bucket_of(120): (1, 120.0)}) == 90
    assert histogram_median({}) is None
    day = T0.date()
    rows = [("payments", "approval", day, "r1", 600.0), ("payments", "approval", day, "r1", 600.0),
            ("payments", "approval", day, "r2", 60.0), (None, "slot", day, "r3", 10.0)]
    assert daily_contributions(rows) == {("payments", "approval", day, bucket_of(1200)): [1, 2, 1_200_000],
                                         ("payments", "approval", day, bucket_of(60)): [1, 1, 60_000],
                                         ("", "slot", day, bucket_of(10)): [1, 1, 10_000]}
