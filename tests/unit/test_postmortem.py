"""The blameless post-mortem of a rolled-back canary, written from its events: times, trigger, roles not people."""

import pytest

from slipway.postmortem import key_times, postmortem, who

RID = "shop-2.0.0"


def ev(kind: str, second: float, **fields: object) -> dict:
    return {"type": kind, "release_id": RID, "service": "shop", "environment": "prod", "actor": "ci:payments",
            "occurred_at": f"2026-11-28T10:00:{second:06.3f}Z", **fields}


TIMELINE = [
    ev("ReleaseRequested", 0, version="2.0.0", requested_by="ci:payments", migrations=["add column"],
       source="slipway-cli"),
    ev("ArtifactVerified", 0.2, source="artifact-verifier"),
    ev("ReleaseApproved", 0.3, source="gatekeeper", actor="slipway", reasons=["standard, low risk"]),
    ev("DeploymentStarted", 1, source="deployer", strategy="canary", steps=[10, 50], version="2.0.0"),
    ev("StepStarted", 1.5, source="deployer", step_index=0, weight=10, version="2.0.0", max_error_rate=0.05,
       max_p99_latency_ms=500, min_requests=20),
    ev("StepVerdict", 4.5, source="health-watcher", step_index=0, verdict="fail", error_rate=0.4,
       p99_latency_ms=180, requests=50, reasons=["error rate 40.0% > 5.0%"]),
    ev("RollbackRequested", 4.6, source="rollback-controller", bad_version="2.0.0", restore_version="1.0.0"),
    ev("RollbackCompleted", 5.0, source="deployer", restored_version="1.0.0", root_cause="error rate 40.0% > 5.0%"),
    ev("ApprovalRecorded", 6.0, source="gatekeeper", actor="person:alice", roles=["sre"]),
]


def test_the_key_times_come_from_the_log() -> None:
    times = key_times(sorted(TIMELINE, key=lambda e: e["occurred_at"]))
    assert (times.to_detect_s, times.to_recover_s, times.request_to_recovery_s) == (3.0, 0.5, 5.0)


def test_a_rolled_back_canary_reads_as_a_blameless_post_mortem() -> None:
    text = postmortem(RID, reversed(TIMELINE), lambda actor: ("sre",) if actor == "person:alice" else None,
                      {"owed": "failed or rolled back in prod", "recorded": None})
    assert text.startswith("# Post-mortem: shop 2.0.0 to prod")
    assert "- **Outcome**: rolled back to 1.0.0 (error rate 40.0% > 5.0%)" in text
    assert "- **Time to detect** (first user traffic on the new version to the failing verdict): 3.0 s" in text
    assert "- **Time to recover** (failing verdict to traffic restored): 0.5 s" in text
    assert "- **Most traffic the new version took**: 10% of requests" in text
    assert "| error rate | 40.0% | 5.0% |" in text
    assert "| 2026-11-28 10:00:04.500 | +4.5 s | StepVerdict: fail at step 1" in text
    # Systems and roles, never a person: the SRE's approval is "a sre", not alice.
    assert "alice" not in text and "| a sre |" in text
    assert "| the payments CI pipeline |" in text and "| health-watcher |" in text
    assert "declared database migrations" in text  # a prompt of its own
    assert "`slipway pir record shop-2.0.0 --summary ... --actions ...`" in text


def test_a_recorded_review_is_linked() -> None:
    review = {"owed": None, "recorded": {"recorded_at": "2026-11-29T09:00:00Z", "owed_because": "rolled back",
                                         "summary": "canary too short", "actions": "lengthen it",
                                         "risk_factors": ["late alert"]}}
    text = postmortem(RID, TIMELINE, lambda _a: None, review)
    assert "- **Summary**: canary too short" in text and "- **Risk factor**: late alert" in text


def test_a_person_whose_roles_are_unknown_is_a_person() -> None:
    assert who({"actor": "person:bob"}, lambda _a: None) == "a person"
    assert who({"actor": "slipway", "source": "deployer"}, lambda _a: None) == "deployer"


def test_a_release_with_no_events_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="no event of release nope is in the log"):
        postmortem("nope", [], lambda _a: None)


def test_a_table_cell_cannot_break_the_table() -> None:
    hostile = [ev("ReleaseRequested", 0, version="1", actor="ci:x"), ev("DeploymentFailed", 1, reason="a | b\nc")]
    row = next(line for line in postmortem(RID, hostile, lambda _a: None).splitlines() if "DeploymentFailed" in line)
    assert row.count(" | ") == 3 and "a \\| b c" in row
