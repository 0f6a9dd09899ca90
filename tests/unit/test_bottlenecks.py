"""Where a release waited, who stepped in and which checks flaked, from its events alone (no I/O)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.bottleneck_queries import WaitKind
from services.metrics_collector.bottleneck_domain import (CheckResult, WaitSpan, evidence_check, flaky, ranked,
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


def test_ranking_puts_the_biggest_total_first_with_medians_over_releases() -> None:
    figures = ranked([
        ("r1", WaitKind.APPROVAL, 600, 1, 0), ("r1", WaitKind.APPROVAL, 600, 1, 0),  # one release, twice
        ("r2", WaitKind.APPROVAL, 60, 1, 0), ("r3", WaitKind.APPROVAL, 120, 1, 1),
        ("r1", WaitKind.SLOT, 1000, 1, 0), ("r2", WaitKind.ANALYSIS, 30, 2, 0),  # two waits, summed already
    ])
    assert [(f.kind, f.total_s, f.median_s, f.releases, f.waits, f.ongoing) for f in figures] == [
        (WaitKind.APPROVAL, 1380, 120, 3, 4, 1), (WaitKind.SLOT, 1000, 1000, 1, 1, 0),
        (WaitKind.ANALYSIS, 30, 30, 1, 2, 0)]
