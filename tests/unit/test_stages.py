"""A release's events as pipeline stages with their timings."""

from slipway.stages import stages
from tests.unit.test_postmortem import TIMELINE, ev


def test_a_rolled_back_canary_as_stages() -> None:
    found = [(s.name, s.outcome, s.seconds) for s in stages(reversed(TIMELINE))]
    assert found == [
        ("artifact verification", "passed", 0.2),
        ("governance", "approved", 0.1),
        ("new version started", "passed", 0.7),
        ("step 1/?: 10%", "fail", 3.0),
        ("rollback", "restored", 0.4),
        ("request to end", "rolled back", 5.0),
    ]


def test_a_release_still_waiting_shows_what_it_waited_for_and_no_end() -> None:
    waiting = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.5, size_bytes=10),
               ev("ReleaseWaiting", 1, waiting_for="pending-approval"),
               ev("ApprovalRecorded", 2, actor="person:a"), ev("ReleaseWaiting", 3, waiting_for="queued-for-window")]
    [verification, governance] = stages(waiting)
    assert (verification.outcome, verification.detail) == ("passed", "10 bytes match the digest")
    assert (governance.outcome, governance.ended, governance.detail) == (
        "waiting", None, "waited: pending-approval, queued-for-window; 1 approval(s)")


def test_a_rejected_artifact_ends_at_verification() -> None:
    [only] = stages([ev("ReleaseRequested", 0), ev("ArtifactRejected", 1.5, reason="digest mismatch")])
    assert (only.name, only.outcome, only.seconds, only.detail) == ("artifact verification", "failed", 1.5,
                                                                    "digest mismatch")


def test_a_step_still_in_analysis() -> None:
    events = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.1), ev("ReleaseApproved", 0.2),
              ev("DeploymentStarted", 0.5, strategy="blue-green"),
              ev("StepStarted", 1.0, step_index=0, step_count=1, weight=100)]
    assert [(s.name, s.outcome) for s in stages(events)][-1] == ("step 1/1: 100%", "analysing")


def test_a_regional_release_shows_each_wave_its_steps_by_region_and_the_bake_between() -> None:
    step = {"deployment_id": "r1", "step_count": 2, "weight": 100}
    events = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.1), ev("ReleaseApproved", 0.2),
              ev("DeploymentStarted", 0.5, strategy="all-at-once", scope="regional",
                 instances={"eu-west": 2, "us-east": 1}, instances_from="declaration"),
              ev("StepStarted", 1.0, step_index=0, region="eu-west", **step),
              ev("StepVerdict", 2.0, step_index=0, deployment_id="r1", verdict="pass"),
              ev("StepStarted", 5.0, step_index=1, region="us-east", **step),
              ev("StepVerdict", 6.5, step_index=1, deployment_id="r1", verdict="fail"),
              ev("RollbackCompleted", 7.0, regions=["us-east", "eu-west"])]
    found = {s.name: s for s in stages(events)}
    assert "regional scope, instances eu-west 2, us-east 1 (from the declaration)" in found["new version started"].detail
    assert (found["step 1/2: 100% in eu-west"].outcome, found["step 2/2: 100% in us-east"].outcome) == ("pass", "fail")
    assert (found["wave eu-west"].outcome, found["wave eu-west"].seconds) == ("pass", 1.0)
    assert (found["bake before us-east"].seconds, found["wave us-east"].outcome) == (3.0, "fail")


def test_a_pilot_phase_is_named_as_such() -> None:
    events = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.1), ev("ReleaseApproved", 0.2),
              ev("DeploymentStarted", 0.5, strategy="canary", scope="pilot"),
              ev("StepStarted", 1.0, step_index=0, step_count=2, weight=0, pilot=True)]
    assert [s.name for s in stages(events)][-1] == "step 1/2: 0% (pilot group)"


def test_a_blue_green_release_shows_its_smoke_test_with_its_timing_before_its_step() -> None:
    events = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.1, size_bytes=10), ev("ReleaseApproved", 0.2),
              ev("DeploymentStarted", 0.5, strategy="blue-green", version="2.0.0"),
              ev("SmokeTestCompleted", 1.25, version="2.0.0", outcome="passed", started_at="2026-11-28T10:00:01.000Z",
                 duration_ms=250.0),
              ev("StepStarted", 1.5, step_index=0, step_count=1, weight=100)]
    found = [(s.name, s.outcome, s.seconds, s.detail) for s in stages(events)]
    assert found[2:4] == [("new version started", "passed", 0.3, "blue-green of 2.0.0 (stable none)"),
                          ("smoke test of 2.0.0", "passed", 0.25, "requests pinned to 2.0.0 answered")]
    assert found[0][:2] == ("artifact verification", "passed"), "artifact verification is a stage already"


def test_a_failed_smoke_test_shows_what_went_wrong() -> None:
    failed = ev("SmokeTestCompleted", 2, version="2.0.0", outcome="failed", started_at="2026-11-28T10:00:01.500Z",
                duration_ms=500.0, problem="GET / answered HTTP 500")
    [smoke] = [s for s in stages([ev("ReleaseApproved", 0), failed]) if s.name.startswith("smoke")]
    assert (smoke.outcome, smoke.seconds, smoke.detail) == ("failed", 0.5, "GET / answered HTTP 500")
