import pytest

from contracts.events import Verdict
from services.deployer.domain import (
    Deployment, Next, Split, Status, advanced, after_verdict, conflict, restart_delay, traffic_split,
)


def deployment(step_index: int = 0, status: Status = Status.DEPLOYING, steps: list[int] | None = None,
               release_id: str = "shop-2.0.0") -> Deployment:
    return Deployment(
        release_id=release_id, service="shop", environment="prod", version="2.0.0", stable_version="1.0.0",
        steps=steps or [10, 50, 100], step_index=step_index, status=status,
    )


# --- traffic_split ---------------------------------------------------------------------------

@pytest.mark.parametrize(("weight", "expected"), [(10, Split(10, 90)), (50, Split(50, 50)), (100, Split(100, 0))])
def test_split_with_a_stable_version_gives_it_the_rest(weight: int, expected: Split) -> None:
    assert traffic_split(weight, has_stable=True) == expected


@pytest.mark.parametrize("weight", [1, 10, 100])
def test_first_deployment_takes_all_traffic_whatever_the_step(weight: int) -> None:
    assert traffic_split(weight, has_stable=False) == Split(new=100, stable=0)


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


def test_advanced_moves_one_step_and_keeps_everything_else() -> None:
    before = deployment(step_index=0)
    after = advanced(before)
    assert after.step_index == 1
    assert (after.release_id, after.version, after.steps, after.status) == (
        before.release_id, before.version, before.steps, before.status
    )
    assert not after.is_last_step
    assert advanced(after).is_last_step


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
