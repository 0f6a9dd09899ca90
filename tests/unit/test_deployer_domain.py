from datetime import UTC, datetime

import pytest

from contracts.events import Verdict
from services.deployer.domain import (
    Deployment, Hold, Next, Status, after_verdict, conflict, onward, restart_delay, resume_refusal, unreported_refusals,
)


def deployment(step_index: int = 0, status: Status = Status.DEPLOYING, steps: list[int] | None = None,
               release_id: str = "shop-2.0.0") -> Deployment:
    return Deployment(
        release_id=release_id, service="shop", environment="prod", version="2.0.0", stable_version="1.0.0",
        steps=steps or [10, 50, 100], step_index=step_index, status=status,
    )


# --- after_verdict ---------------------------------------------------------------------------

def test_verdict_for_an_unknown_deployment_is_ignored() -> None:
    assert after_verdict(None, 0, Verdict.PASS) == (Next.IGNORE, "no such deployment here")


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.ROLLED_BACK, Status.FAILED])
def test_verdict_for_a_finished_deployment_is_ignored(status: Status) -> None:
    action, why = after_verdict(deployment(status=status), 0, Verdict.PASS)
    assert action is Next.IGNORE
    assert status.value in why


def test_verdict_for_another_step_is_ignored() -> None:
    action, why = after_verdict(deployment(step_index=1), 0, Verdict.FAIL)
    assert action is Next.IGNORE
    assert why == "verdict for step 0, deployment is at step 1"


@pytest.mark.parametrize("step_index", [0, 2])
def test_failing_verdict_waits_for_the_rollback_controller(step_index: int) -> None:
    action, why = after_verdict(deployment(step_index=step_index), step_index, Verdict.FAIL)
    assert action is Next.AWAIT_ROLLBACK
    assert "rollback-controller" in why


@pytest.mark.parametrize("step_index", [0, 2])
def test_inconclusive_verdict_holds_the_weights_for_a_person(step_index: int) -> None:
    action, why = after_verdict(deployment(step_index=step_index), step_index, Verdict.INCONCLUSIVE)
    assert action is Next.HOLD
    assert why == "inconclusive verdict: traffic stays put until a person decides"


@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.MARGINAL])
def test_passing_the_last_step_completes(verdict: Verdict) -> None:
    action, why = after_verdict(deployment(step_index=2), 2, verdict)
    assert action is Next.COMPLETE
    assert why == f"last step passed ({verdict.value})"


def test_single_step_deployment_completes_on_its_first_pass() -> None:
    assert after_verdict(deployment(steps=[100]), 0, Verdict.PASS)[0] is Next.COMPLETE


@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.MARGINAL])
def test_passing_an_earlier_step_advances(verdict: Verdict) -> None:
    action, why = after_verdict(deployment(step_index=1), 1, verdict)
    assert action is Next.ADVANCE
    assert why == f"step 2 of 3 passed ({verdict.value})"


# --- conflict --------------------------------------------------------------------------------

def test_no_active_deployment_is_no_conflict() -> None:
    assert conflict(None, "shop-3.0.0") is None


def test_the_same_release_does_not_conflict_with_itself() -> None:
    assert conflict(deployment(release_id="shop-2.0.0"), "shop-2.0.0") is None


def test_another_release_in_progress_conflicts_and_is_named() -> None:
    problem = conflict(deployment(release_id="shop-2.0.0"), "shop-3.0.0")
    assert problem == "deployment shop-2.0.0 of shop 2.0.0 to prod is still in progress"


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.ROLLED_BACK, Status.FAILED])
def test_a_finished_deployment_does_not_conflict(status: Status) -> None:
    assert conflict(deployment(status=status), "shop-3.0.0") is None


# --- restart_delay ---------------------------------------------------------------------------

def test_restart_attempts_back_off_and_are_capped() -> None:
    delays = [restart_delay(failures) for failures in range(1, 9)]
    assert delays == sorted(delays) and delays[0] == 1.0
    assert delays[-1] == 30.0


# --- resume_refusal and onward ---------------------------------------------------------------

def hold(step_index: int = 0) -> Hold:
    return Hold("shop-2.0.0", step_index, ["inconclusive: 3 of 20 requests"], datetime(2026, 1, 1, tzinfo=UTC), "evt-1")


def test_a_release_held_at_its_current_step_may_be_resumed_and_goes_on_as_after_a_pass() -> None:
    assert resume_refusal(deployment(step_index=1), hold(step_index=1), "shop-2.0.0") is None
    assert onward(deployment(step_index=1)) is Next.ADVANCE
    assert onward(deployment(step_index=2)) is Next.COMPLETE


def test_an_unknown_release_may_not_be_resumed() -> None:
    assert resume_refusal(None, None, "nope") == "no release nope is known to the deployer"


def test_a_release_that_is_not_held_may_not_be_resumed() -> None:
    assert resume_refusal(deployment(step_index=1), None, "shop-2.0.0") == (
        "release shop-2.0.0 is not held: step 2 of 3 is still being judged"
    )
    # A hold left from an earlier step says nothing about the step being judged now.
    assert "is not held" in (resume_refusal(deployment(step_index=1), hold(step_index=0), "shop-2.0.0") or "")


@pytest.mark.parametrize(("status", "said"), [(Status.SUCCEEDED, "succeeded"), (Status.ROLLED_BACK, "was rolled back"),
                                              (Status.FAILED, "failed")])
def test_a_release_that_ended_may_not_be_resumed(status: Status, said: str) -> None:
    assert resume_refusal(deployment(status=status), hold(), "shop-2.0.0") == (
        f"release shop-2.0.0 {said}: there is nothing to resume"
    )


def test_only_refusals_not_yet_reported_are_news_and_a_restarted_router_counts_afresh() -> None:
    assert unreported_refusals(None, "r41", 3) == 3
    assert unreported_refusals(("r41", 3), "r41", 3) == 0
    assert unreported_refusals(("r41", 3), "r41", 5) == 2
    assert unreported_refusals(("r41", 3), "r42", 1) == 1  # another router process: none of its refusals reported
