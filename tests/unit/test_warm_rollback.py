"""Blue-green after success: a rollback is a switch back while the old pool is warm, nothing once it may be gone."""

from datetime import UTC, datetime, timedelta

from contracts.release import BlueGreenStrategy
from services.deployer.strategies import plan_for, rollback_for
from services.deployer.strategies.plan import KeepWarm, Progress, RetirePool, Shift, Situation, Succeed
from services.deployer.strategies.warm import warm_reach

OVER_LIVE = Situation("2.0.0", "1.0.0", instances=2, stable_instances=2)
STRATEGY = BlueGreenStrategy(analysis_interval_s=1, keep_warm_s=60)
PLAN = plan_for(STRATEGY, OVER_LIVE)
KEEP_WARM = PLAN.index(KeepWarm(60))
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_while_the_old_pool_is_warm_a_rollback_switches_back_to_it_then_retires_the_new_pool() -> None:
    assert rollback_for(STRATEGY, OVER_LIVE, KEEP_WARM) == [Shift((("1.0.0", 100),)), RetirePool("2.0.0")]


def test_once_the_old_pool_may_be_retired_or_before_it_is_kept_warm_there_is_nothing_to_switch_back_to() -> None:
    assert rollback_for(STRATEGY, OVER_LIVE, len(PLAN) - 1) == []
    assert rollback_for(STRATEGY, OVER_LIVE, PLAN.index(Succeed())) == [], "succeeded: nothing undone"


def test_the_warm_reach_is_the_keep_warm_action_only_until_its_wait_ends() -> None:
    waited = Progress(KEEP_WARM + 1)
    assert warm_reach(PLAN, waited, NOW + timedelta(seconds=1), NOW) == KEEP_WARM
    assert warm_reach(PLAN, waited, NOW, NOW) is None, "the wait is over: the plan may be retiring the old pool"
    assert warm_reach(PLAN, waited, None, NOW) is None
    assert warm_reach(PLAN, Progress(KEEP_WARM), NOW + timedelta(seconds=1), NOW) is None, "not kept warm yet"
