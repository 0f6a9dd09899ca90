"""Each strategy's plan walked action by action, without I/O: what runs, where traffic goes, what a rollback does."""

import pytest
from pydantic import ValidationError

from contracts.release import AllAtOnceStrategy, BlueGreenStrategy, CanaryStrategy, ImmutableStrategy, RollingStrategy
from services.deployer.strategies import plan_for, rollback_for
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, HealthCheck, KeepWarm, Progress, RetirePool, Shift, Situation, SmokeTest, StartInstances,
    StartPool, StopInstances, Succeed, reach, steps_of,
)

OVER_LIVE = Situation("2.0.0", "1.0.0", instances=3, stable_instances=2)
FIRST = Situation("1.0.0", None, instances=2)


def canary(*weights: int) -> CanaryStrategy:
    return CanaryStrategy(steps=[{"weight": w} for w in weights], analysis_interval_s=1.0)


def walk(plan: list[Action], verdicts: int) -> tuple[list[Action], Progress]:
    """Execute the plan as the handlers do, accepting the first `verdicts` steps; the actions executed and where it stops."""
    done, progress = [], Progress()
    while progress.cursor < len(plan):
        action = plan[progress.cursor]
        if progress.waiting:
            if verdicts == 0:
                break
            verdicts -= 1
            progress = progress.accept(action.step_index, plan)  # type: ignore[union-attr]
            continue
        done.append(action)
        progress = progress.after(action)
    return done, progress


def test_a_canary_over_a_live_version_shifts_step_by_step_then_retires_the_old_pool() -> None:
    plan = plan_for(canary(10, 50), OVER_LIVE)
    assert plan == [
        StartPool("2.0.0", 3),
        Shift((("2.0.0", 10), ("1.0.0", 90))), AwaitVerdict(0, 10),
        Shift((("2.0.0", 50), ("1.0.0", 50))), AwaitVerdict(1, 50),
        Shift((("2.0.0", 100),)), Succeed(), RetirePool("1.0.0"),
    ]
    assert steps_of(plan) == [10, 50]


def test_a_canary_ending_at_100_is_judged_at_100_and_not_shifted_twice() -> None:
    plan = plan_for(canary(20, 100), OVER_LIVE)
    assert plan[-4:] == [Shift((("2.0.0", 100),)), AwaitVerdict(1, 100), Succeed(), RetirePool("1.0.0")]


def test_a_first_deployment_takes_all_traffic_at_every_step_and_retires_nothing() -> None:
    plan = plan_for(canary(10, 50), FIRST)
    assert plan == [
        StartPool("1.0.0", 2), Shift((("1.0.0", 100),)), AwaitVerdict(0, 100),
        Shift((("1.0.0", 100),)), AwaitVerdict(1, 100), Succeed(),
    ]


def test_all_at_once_is_one_judged_step_of_all_traffic() -> None:
    plan = plan_for(AllAtOnceStrategy(), OVER_LIVE)
    assert plan == [StartPool("2.0.0", 3), Shift((("2.0.0", 100),)), AwaitVerdict(0, 100), Succeed(),
                    RetirePool("1.0.0")]


def test_a_plan_stops_at_each_verdict_and_a_second_acceptance_moves_nothing() -> None:
    plan = plan_for(canary(10, 50), OVER_LIVE)
    done, progress = walk(plan, verdicts=0)
    assert done == plan[:3] and progress == Progress(2, waiting=True)
    accepted = progress.accept(0, plan)
    assert accepted == Progress(3) and accepted.accept(0, plan) == accepted
    assert progress.accept(1, plan) == progress  # a verdict for another step moves nothing
    done, progress = walk(plan, verdicts=2)
    assert done == plan and progress == Progress(len(plan))


@pytest.mark.parametrize(("verdicts", "expected"), [
    (0, [Shift((("1.0.0", 100),)), RetirePool("2.0.0")]),
    (1, [Shift((("1.0.0", 100),)), RetirePool("2.0.0")]),
])
def test_a_canary_rolls_back_to_the_stable_pool_at_any_step(verdicts: int, expected: list[Action]) -> None:
    strategy = canary(10, 50)
    _, progress = walk(plan_for(strategy, OVER_LIVE), verdicts)
    assert rollback_for(strategy, OVER_LIVE, progress.cursor) == expected


def test_a_failed_start_of_a_first_deployment_routes_nothing_and_stops_what_started() -> None:
    strategy = canary(10)
    assert rollback_for(strategy, FIRST, 0) == [Shift(()), RetirePool("1.0.0")]


def test_nothing_is_rolled_back_once_the_release_succeeded() -> None:
    strategy = canary(10)
    plan = plan_for(strategy, OVER_LIVE)
    assert rollback_for(strategy, OVER_LIVE, plan.index(Succeed())) == []


def test_blue_green_smoke_tests_the_full_new_pool_before_one_switch_and_keeps_the_old_one_warm() -> None:
    strategy = BlueGreenStrategy(analysis_interval_s=1.0, keep_warm_s=30)
    plan = plan_for(strategy, OVER_LIVE)
    assert plan == [
        StartPool("2.0.0", 3),
        Shift((("1.0.0", 100), ("2.0.0", 0))),  # reachable only by pinned requests: the smoke test
        SmokeTest("2.0.0"),
        Shift((("2.0.0", 100), ("1.0.0", 0))),  # one switch of all traffic; the old pool stays routable, warm
        AwaitVerdict(0, 100),
        Succeed(), KeepWarm(30), Shift((("2.0.0", 100),)), RetirePool("1.0.0"),
    ]
    assert steps_of(plan) == [100]


def test_blue_green_rolls_back_by_switching_back_before_and_after_the_switch() -> None:
    strategy = BlueGreenStrategy(keep_warm_s=30)
    plan = plan_for(strategy, OVER_LIVE)
    smoke, judged = plan.index(SmokeTest("2.0.0")), plan.index(AwaitVerdict(0, 100))
    for cursor in (smoke, judged):
        assert rollback_for(strategy, OVER_LIVE, cursor) == [Shift((("1.0.0", 100),)), RetirePool("2.0.0")]


def test_blue_green_without_warm_time_or_a_live_version() -> None:
    cold = plan_for(BlueGreenStrategy(keep_warm_s=0), OVER_LIVE)
    assert cold[-3:] == [Succeed(), Shift((("2.0.0", 100),)), RetirePool("1.0.0")]
    first = plan_for(BlueGreenStrategy(), FIRST)
    assert first == [StartPool("1.0.0", 2), Shift((("1.0.0", 0),)), SmokeTest("1.0.0"), Shift((("1.0.0", 100),)),
                     AwaitVerdict(0, 100), Succeed()]


def rolling(surge: int = 1, unavailable: int = 0) -> RollingStrategy:
    return RollingStrategy(max_surge=surge, max_unavailable=unavailable, analysis_interval_s=1.0)


def running_during(plan: list[Action], situation: Situation) -> list[tuple[int, int]]:
    """(old, new) instances running after each action, as a plan walked to its end leaves them."""
    old, new, counts = situation.stable_instances, 0, []
    for action in plan:
        if isinstance(action, StopInstances):
            old -= len(action.slots)
        elif isinstance(action, StartInstances):
            new += len(action.slots)
        elif isinstance(action, RetirePool):
            old = 0
        counts.append((old, new))
    return counts


def test_rolling_replaces_one_instance_at_a_time_with_one_extra_and_judges_each_batch() -> None:
    situation = Situation("2.0.0", "1.0.0", instances=3, stable_instances=3)
    plan = plan_for(rolling(surge=1), situation)
    assert plan[:4] == [
        StartInstances("2.0.0", (0,)),
        Shift((("2.0.0", 25), ("1.0.0", 75))),
        StopInstances("1.0.0", (0,), (("2.0.0", 33), ("1.0.0", 67))),
        AwaitVerdict(0, 33),
    ]
    assert steps_of(plan) == [33, 67, 100]
    assert plan[-2:] == [Succeed(), RetirePool("1.0.0")]
    # Never fewer than the pool's 3 instances up, never more than 3 + max_surge.
    assert all(3 <= old + new <= 4 for old, new in running_during(plan, situation))


def test_rolling_with_max_unavailable_stops_before_it_starts_and_never_drops_below_the_bound() -> None:
    situation = Situation("2.0.0", "1.0.0", instances=4, stable_instances=4)
    plan = plan_for(rolling(surge=1, unavailable=1), situation)
    assert plan[0] == StopInstances("1.0.0", (0,), (("1.0.0", 100),))
    assert plan[1] == StartInstances("2.0.0", (0, 1))
    assert len(steps_of(plan)) == 2  # batches of max_surge + max_unavailable
    assert all(3 <= old + new <= 5 for old, new in running_during(plan, situation))


def test_rolling_a_smaller_pool_retires_the_old_instances_left_over() -> None:
    situation = Situation("2.0.0", "1.0.0", instances=2, stable_instances=3)
    plan = plan_for(rolling(), situation)
    assert plan[-3:] == [Shift((("2.0.0", 100),)), Succeed(), RetirePool("1.0.0")]


def test_a_failing_batch_starts_the_replaced_instances_again_and_gives_them_all_traffic() -> None:
    strategy, situation = rolling(), Situation("2.0.0", "1.0.0", instances=3, stable_instances=3)
    _, progress = walk(plan_for(strategy, situation), verdicts=1)  # the second batch is being judged
    assert rollback_for(strategy, situation, progress.cursor) == [
        StartInstances("1.0.0", (0, 1)), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
    ]


def test_a_first_rolling_deployment_starts_the_whole_pool() -> None:
    plan = plan_for(rolling(), FIRST)
    assert plan == [StartPool("1.0.0", 2), Shift((("1.0.0", 100),)), AwaitVerdict(0, 100), Succeed()]


def test_rolling_needs_room_to_move() -> None:
    with pytest.raises(ValidationError, match="cannot both be 0"):
        RollingStrategy(max_surge=0, max_unavailable=0)


def test_immutable_health_checks_a_fresh_set_before_moving_all_traffic_and_destroys_the_old_one() -> None:
    strategy = ImmutableStrategy(analysis_interval_s=1.0)
    plan = plan_for(strategy, OVER_LIVE)
    assert plan == [StartPool("2.0.0", 3), HealthCheck("2.0.0"), Shift((("2.0.0", 100),)), AwaitVerdict(0, 100),
                    Succeed(), RetirePool("1.0.0")]
    assert rollback_for(strategy, OVER_LIVE, plan.index(HealthCheck("2.0.0"))) == [
        Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
    ]


def test_saved_progress_reaches_as_far_as_the_next_point_it_would_have_been_saved() -> None:
    strategy = rolling()
    situation = Situation("2.0.0", "1.0.0", instances=3, stable_instances=3)
    plan = plan_for(strategy, situation)
    first_wait = plan.index(AwaitVerdict(0, 33))
    assert reach(plan, Progress(first_wait, waiting=True)) == first_wait
    assert reach(plan, Progress(0)) == first_wait  # a crash may have come after any action before it
    # Undoing that far restarts the old instance the first batch may have stopped: nothing is lost.
    assert rollback_for(strategy, situation, reach(plan, Progress(0)))[0] == StartInstances("1.0.0", (0,))


def test_a_canary_step_that_asks_for_a_person_is_marked_in_the_plan_and_only_that_step() -> None:
    from contracts.release import CanaryStrategy
    from services.deployer.planned_pauses import waits_for_person
    from services.deployer.strategies import canary
    from services.deployer.strategies.plan import Situation

    strategy = CanaryStrategy(steps=[{"weight": 10}, {"weight": 50, "pause": True}, {"weight": 100}])
    steps = canary.plan(strategy, Situation("2.0.0", "1.0.0"))
    assert [waits_for_person(steps, index) for index in range(3)] == [False, True, False]
