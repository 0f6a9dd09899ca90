"""People steering a release, decided without I/O: pause, resume and promote refusals, what a resume lifts and
accepts, and a promoted plan for every strategy."""

from datetime import UTC, datetime

import pytest

from contracts.release import BlueGreenStrategy, CanaryStrategy, ImmutableStrategy, RollingStrategy
from services.deployer.domain import Deployment, Hold, Pause, Status
from services.deployer.steering import (
    PersonPause, Resumption, incident_lift_holds, pause_refusal, promote_refusal, resumption,
)
from services.deployer.strategies import plan_for
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, HealthCheck, KeepWarm, Progress, RetirePool, Shift, Situation, SmokeTest, StartInstances,
    StartPool, StopInstances, Succeed,
)
from services.deployer.strategies.promotion import Skipped, promoted, skipped_steps

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RID = "shop-2.0.0"
OVER_LIVE = Situation("2.0.0", "1.0.0", instances=2, stable_instances=2)


def deployment(step_index: int = 0, status: Status = Status.DEPLOYING) -> Deployment:
    return Deployment(RID, "shop", "prod", "2.0.0", "1.0.0", [10, 50, 100], step_index, status)


def person_pause(held: str | None = None) -> PersonPause:
    return PersonPause(RID, "person:sam", "checking the dashboards", AT, held)


def hold(step_index: int = 0, event_id: str = "evt-1") -> Hold:
    return Hold(RID, step_index, ["inconclusive"], AT, event_id)


INCIDENT = Pause(RID, "inc-1", "incident inc-1 open in prod", AT)


# --- pause ------------------------------------------------------------------------------------

def test_a_release_in_flight_may_be_paused_once() -> None:
    assert pause_refusal(deployment(), RID, None) is None
    assert pause_refusal(deployment(), RID, person_pause()) == (
        f"release {RID} is already paused by person:sam since 12:00:00 UTC: checking the dashboards")


@pytest.mark.parametrize(("status", "word"), [(Status.SUCCEEDED, "succeeded"), (Status.ROLLED_BACK, "was rolled back"),
                                              (Status.FAILED, "failed")])
def test_a_release_that_ended_cannot_be_paused_resumed_or_promoted(status: Status, word: str) -> None:
    ended = deployment(status=status)
    assert pause_refusal(ended, RID, None) == f"release {RID} {word}: there is nothing to pause"
    assert resumption(ended, None, RID, None, person_pause()) == f"release {RID} {word}: there is nothing to resume"
    assert promote_refusal(ended, RID, None) == f"release {RID} {word}: there is nothing to promote"


def test_an_unknown_release_is_refused_by_name() -> None:
    for refusal in (pause_refusal(None, "nope", None), promote_refusal(None, "nope", None),
                    resumption(None, None, "nope", None, None)):
        assert refusal == "no release nope is known to the deployer"


# --- resume -----------------------------------------------------------------------------------

def test_resume_lifts_a_persons_pause_and_accepts_the_step_it_holds() -> None:
    assert resumption(deployment(1), hold(1), RID, None, person_pause("evt-1")) == Resumption(True, True)


def test_resume_of_a_pause_whose_step_is_still_judged_only_lifts_it() -> None:
    assert resumption(deployment(1), None, RID, None, person_pause()) == Resumption(True, False)
    assert resumption(deployment(1), hold(0), RID, None, person_pause()) == Resumption(True, False)


def test_without_a_pause_resume_accepts_an_inconclusive_step_as_before_and_refuses_a_step_being_judged() -> None:
    assert resumption(deployment(1), hold(1), RID, None, None) == Resumption(False, True)
    refused = resumption(deployment(1), None, RID, None, None)
    assert refused == f"release {RID} is not held: step 2 of 3 is still being judged"


def test_an_incidents_pause_is_not_a_persons_to_lift() -> None:
    refused = resumption(deployment(), hold(), RID, INCIDENT, None)
    assert refused == f"release {RID} is paused for incident inc-1: it goes on when the incident is resolved"
    # Both pauses: the person lifts theirs, the incident's still holds the step.
    assert resumption(deployment(), hold(), RID, INCIDENT, person_pause("evt-1")) == Resumption(True, False)
    assert incident_lift_holds(person_pause()) and not incident_lift_holds(None)


# --- promote ----------------------------------------------------------------------------------

def test_a_paused_or_held_release_may_be_promoted_but_not_one_an_incident_pauses() -> None:
    assert promote_refusal(deployment(), RID, None) is None
    assert promote_refusal(deployment(), RID, INCIDENT) == (
        f"release {RID} is paused for incident inc-1: it cannot be promoted until the incident is resolved")


def run_promoted(plan: list[Action], waiting_at: int) -> list[Action]:
    """What the handlers execute after a promotion accepted at `waiting_at`: every action not skipped, to the end."""
    steps, progress, done = promoted(plan, waiting_at), Progress(waiting_at + 1), []
    while progress.cursor < len(steps):
        action = steps[progress.cursor]
        assert not isinstance(action, AwaitVerdict), "a promoted plan waits for no verdict"
        if not isinstance(action, Skipped):
            done.append(action)
        progress = Progress(progress.cursor + 1)
    return done


def first_wait(plan: list[Action]) -> int:
    return next(i for i, action in enumerate(plan) if isinstance(action, AwaitVerdict))


def test_a_promoted_canary_goes_straight_to_all_traffic_then_succeeds_and_retires_the_old_pool() -> None:
    plan = plan_for(CanaryStrategy(steps=[{"weight": 10}, {"weight": 50}], analysis_interval_s=1), OVER_LIVE)
    at = first_wait(plan)
    assert skipped_steps(plan, at) == 1
    assert run_promoted(plan, at) == [Shift((("2.0.0", 100),)), Succeed(), RetirePool("1.0.0")]
    assert len(promoted(plan, at)) == len(plan), "a saved cursor means the same action in both plans"


def test_a_promoted_rolling_release_still_replaces_every_batch_without_judging_them() -> None:
    plan = plan_for(RollingStrategy(max_surge=1, max_unavailable=0, analysis_interval_s=1), OVER_LIVE)
    done = run_promoted(plan, first_wait(plan))
    assert StartInstances("2.0.0", (1,)) in done and any(isinstance(a, StopInstances) and a.slots == (1,) for a in done)
    assert done[-2:] == [Succeed(), RetirePool("1.0.0")]


def test_a_promoted_blue_green_release_keeps_its_old_pool_warm_and_immutable_destroys_the_old_set() -> None:
    plan = plan_for(BlueGreenStrategy(analysis_interval_s=1, keep_warm_s=30), OVER_LIVE)
    assert run_promoted(plan, first_wait(plan)) == [
        Succeed(), KeepWarm(30), Shift((("2.0.0", 100),)), RetirePool("1.0.0")]
    immutable = plan_for(ImmutableStrategy(analysis_interval_s=1), OVER_LIVE)
    assert run_promoted(immutable, first_wait(immutable)) == [Succeed(), RetirePool("1.0.0")]


def test_promoted_before_its_first_step_a_plan_still_smoke_tests_and_health_checks() -> None:
    plan = plan_for(BlueGreenStrategy(analysis_interval_s=1), OVER_LIVE)
    steps = promoted(plan, 0)  # only StartPool done: a restart interrupted the plan
    assert [a for a in steps if isinstance(a, SmokeTest)] == [SmokeTest("2.0.0")]
    assert not any(isinstance(a, AwaitVerdict) for a in steps)
    immutable = promoted(plan_for(ImmutableStrategy(analysis_interval_s=1), OVER_LIVE), 0)
    assert HealthCheck("2.0.0") in immutable and isinstance(immutable[0], StartPool)
