"""Regional waves and pilot groups walked action by action, without I/O; how a release is laid out over regions."""

import pytest

from contracts.release import (
    BlueGreenStrategy, CanaryStrategy, FullScope, PilotScope, RegionalScope, ReleaseSpec, RollingStrategy,
)
from libs.environments import Environment
from services.deployer.rollout import Layout, LayoutRefused, Rollout, lay_out, rollout_for, waves_of
from services.deployer.strategies.plan import (
    AwaitVerdict, Bake, ClearPilot, EnterRegion, KeepWarm, Progress, RetirePool, RoutePilot, Shift, SmokeTest,
    StartInstances, StartPool, StopInstances, Succeed, steps_of,
)
from services.deployer.strategies.promotion import Skipped, promoted
from services.deployer.strategies.scopes import WHOLE, region_at, regions_of
from tests.unit.test_strategies import walk

CANARY = CanaryStrategy(steps=[{"weight": 10}, {"weight": 50}], analysis_interval_s=1.0)
WAVES = Layout((("eu-west", 2, 2), ("us-east", 1, 1)), "declaration")
PROD = Environment(name="prod", production=True, runtime="python3.12", regions=["eu-west", "us-east"],
                   instances={"eu-west": 2, "us-east": 3})


def regional(strategy=CANARY, bake_s: float = 5.0, layout: Layout = WAVES) -> Rollout:  # noqa: ANN001
    return Rollout(strategy, RegionalScope(bake_s=bake_s), waves_of(layout, "2.0.0", "1.0.0"))


def spec(**fields: object) -> ReleaseSpec:
    return ReleaseSpec.model_validate({
        "version": "2.0.0", "team": "payments", "artifact": {"uri": "app.pyz", "digest": "sha256:" + "0" * 64},
        "commit": {"sha": "abc1234", "committed_at": "2026-11-01T10:00:00Z"}, "requested_by": "ci:test",
        "strategy": {"kind": "canary", "steps": [{"weight": 10}]}, **fields})


def test_regional_waves_run_the_strategy_region_by_region_with_a_bake_between_and_retire_only_at_the_end() -> None:
    plan = regional().plan()
    assert plan == [
        EnterRegion("eu-west"), StartPool("2.0.0", 2),
        Shift((("2.0.0", 10), ("1.0.0", 90))), AwaitVerdict(0, 10),
        Shift((("2.0.0", 50), ("1.0.0", 50))), AwaitVerdict(1, 50), Shift((("2.0.0", 100),)),
        Bake(5.0),
        EnterRegion("us-east"), StartPool("2.0.0", 1),
        Shift((("2.0.0", 10), ("1.0.0", 90))), AwaitVerdict(2, 10),
        Shift((("2.0.0", 50), ("1.0.0", 50))), AwaitVerdict(3, 50), Shift((("2.0.0", 100),)),
        Succeed(),
        EnterRegion("eu-west"), RetirePool("1.0.0"), EnterRegion("us-east"), RetirePool("1.0.0"),
    ]
    assert steps_of(plan) == [10, 50, 10, 50], "step indices run on over the waves"
    assert region_at(plan, plan.index(AwaitVerdict(2, 10))) == "us-east"
    assert region_at(plan, plan.index(Bake(5.0))) == "eu-west", "a bake belongs to the wave that passed"
    done, progress = walk(plan, verdicts=4)
    assert done == plan and progress.cursor == len(plan)


def test_a_failing_second_wave_rolls_back_itself_and_the_wave_before_it_latest_first() -> None:
    rollout = regional()
    plan = rollout.plan()
    undo = rollout.rollback(plan.index(AwaitVerdict(2, 10)))
    assert undo == [
        EnterRegion("us-east"), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
        EnterRegion("eu-west"), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
    ]
    assert regions_of(undo) == ["us-east", "eu-west"]


def test_a_failure_in_the_first_wave_leaves_the_regions_not_reached_alone_and_none_after_success() -> None:
    rollout = regional()
    plan = rollout.plan()
    assert rollout.rollback(plan.index(AwaitVerdict(0, 10))) == [
        EnterRegion("eu-west"), Shift((("1.0.0", 100),)), RetirePool("2.0.0")]
    assert rollout.rollback(plan.index(Bake(5.0))) == rollout.rollback(plan.index(AwaitVerdict(1, 50)))
    assert rollout.rollback(plan.index(Succeed())) == []


def test_rolling_waves_restart_the_replaced_stable_instances_of_every_region_reached() -> None:
    rolling = RollingStrategy(max_surge=0, max_unavailable=1, analysis_interval_s=1.0)
    rollout = regional(rolling, bake_s=0, layout=Layout((("a", 1, 1), ("b", 1, 1)), "declaration"))
    plan = rollout.plan()
    assert not any(isinstance(a, Bake) for a in plan), "no bake asked, none planned"
    assert plan[:5] == [EnterRegion("a"), StopInstances("1.0.0", (0,), ()),
                        StartInstances("2.0.0", (0,)), Shift((("2.0.0", 100),)), AwaitVerdict(0, 100)]
    undo = rollout.rollback(plan.index(AwaitVerdict(1, 100)))
    assert undo == [
        EnterRegion("b"), StartInstances("1.0.0", (0,)), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
        EnterRegion("a"), StartInstances("1.0.0", (0,)), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
    ]


def test_blue_green_waves_keep_every_old_pool_warm_once_at_the_same_time() -> None:
    rollout = regional(BlueGreenStrategy(keep_warm_s=30, analysis_interval_s=1.0), bake_s=1)
    plan = rollout.plan()
    after = plan[plan.index(Succeed()) + 1:]
    assert after == [KeepWarm(30), EnterRegion("eu-west"), Shift((("2.0.0", 100),)), RetirePool("1.0.0"),
                     EnterRegion("us-east"), Shift((("2.0.0", 100),)), RetirePool("1.0.0")]
    assert plan.count(SmokeTest("2.0.0")) == 2, "each region's new pool is smoke-tested"


def test_a_region_without_the_stable_version_is_its_first_deployment() -> None:
    rollout = regional(layout=Layout((("eu-west", 1, 1), ("us-east", 1, 0)), "declaration"))
    plan = rollout.plan()
    east = plan[plan.index(EnterRegion("us-east")):plan.index(Succeed())]
    assert Shift((("2.0.0", 100),)) in east and all("1.0.0" not in str(a) for a in east)
    assert plan[-2:] == [EnterRegion("eu-west"), RetirePool("1.0.0")], "only where it ran is it retired"


def test_a_pilot_group_is_judged_first_at_no_public_weight_then_the_release_widens_and_the_rule_is_cleared() -> None:
    scope = PilotScope(analysis_interval_s=2.0)
    rollout = Rollout(CANARY, scope, waves_of(Layout(((WHOLE, 2, 1),), "release"), "2.0.0", "1.0.0"))
    plan = rollout.plan()
    assert plan == [
        StartPool("2.0.0", 2), Shift((("1.0.0", 100), ("2.0.0", 0))),
        RoutePilot("2.0.0", "X-Slipway-Pilot", "slipway-pilot"), AwaitVerdict(0, 0, pilot=True),
        StartPool("2.0.0", 2), Shift((("2.0.0", 10), ("1.0.0", 90))), AwaitVerdict(1, 10),
        Shift((("2.0.0", 50), ("1.0.0", 50))), AwaitVerdict(2, 50), Shift((("2.0.0", 100),)),
        ClearPilot(), Succeed(), RetirePool("1.0.0"),
    ]
    assert (rollout.analysis_interval_s(True), rollout.analysis_interval_s(False)) == (2.0, 1.0)
    assert rollout.rollback(3) == [ClearPilot(), Shift((("1.0.0", 100),)), RetirePool("2.0.0")]
    assert rollout.rollback(1) == [Shift((("1.0.0", 100),)), RetirePool("2.0.0")], "no rule set yet, none cleared"


def test_a_rolling_pilot_starts_one_new_instance_for_the_group_which_the_first_batch_adopts() -> None:
    rolling = RollingStrategy(max_surge=1, analysis_interval_s=1.0)
    rollout = Rollout(rolling, PilotScope(), waves_of(Layout(((WHOLE, 2, 2),), "release"), "2.0.0", "1.0.0"))
    plan = rollout.plan()
    assert plan[:4] == [StartInstances("2.0.0", (0,)), Shift((("1.0.0", 100), ("2.0.0", 0))),
                        RoutePilot("2.0.0", "X-Slipway-Pilot", "slipway-pilot"), AwaitVerdict(0, 0, pilot=True)]
    assert plan[4] == StartInstances("2.0.0", (0,))


def test_a_first_deployment_has_no_one_to_keep_on_stable_so_it_has_no_pilot_phase() -> None:
    rollout = Rollout(CANARY, PilotScope(), waves_of(Layout(((WHOLE, 1, 0),), "default"), "1.0.0", None))
    assert not any(isinstance(a, RoutePilot) for a in rollout.plan())


def test_pool_sizes_come_from_the_declaration_unless_the_release_overrides_them() -> None:
    assert lay_out(spec(), "prod", PROD, {}) == Layout(((WHOLE, 5, 0),), "declaration")
    assert lay_out(spec(instances=2), "prod", PROD, {WHOLE: 5}) == Layout(((WHOLE, 2, 5),), "release")
    assert lay_out(spec(), "bench", None, {}) == Layout(((WHOLE, 1, 0),), "default")
    waves = lay_out(spec(scope={"kind": "regional", "bake_s": 1}), "prod", PROD, {"eu-west": 2})
    assert waves == Layout((("eu-west", 2, 2), ("us-east", 3, 0)), "declaration")
    assert (waves.regions, waves.instances) == (["eu-west", "us-east"], {"eu-west": 2, "us-east": 3})
    assert Layout.from_json(waves.to_json()) == waves


@pytest.mark.parametrize(("fields", "environment", "declared", "stable", "reason"), [
    ({"scope": {"kind": "regional"}}, "bench", None, {}, "need a declaration of bench"),
    ({"scope": {"kind": "regional"}}, "prod", PROD, {WHOLE: 5}, "runs its live version for the whole environment"),
    ({}, "prod", PROD, {"eu-west": 2}, "runs its live version region by region"),
    ({"scope": {"kind": "regional"}}, "prod", PROD.model_copy(update={"instances": {"eu-west": 0, "us-east": 1}}),
     {}, "declares no instances in eu-west"),
])
def test_a_release_that_cannot_be_laid_out_is_refused_with_the_reason(
    fields: dict, environment: str, declared: Environment | None, stable: dict, reason: str
) -> None:
    with pytest.raises(LayoutRefused, match=reason):
        lay_out(spec(**fields), environment, declared, stable)


def test_scopes_default_to_full_and_refuse_bad_pilot_names() -> None:
    assert spec().scope == FullScope() and spec().instances is None
    with pytest.raises(ValueError, match="header"):
        spec(scope={"kind": "pilot", "header": "bad header"})


def test_progress_waits_at_a_bake_like_any_timed_action() -> None:
    plan = regional().plan()
    at_bake = Progress(plan.index(Bake(5.0)))
    assert at_bake.after(Bake(5.0)) == Progress(at_bake.cursor + 1)


def test_more_steps_over_all_waves_than_an_event_can_carry_are_refused() -> None:
    many = spec(scope={"kind": "regional"}, strategy={"kind": "canary", "steps": [{"weight": w} for w in range(5, 60, 5)]})
    with pytest.raises(LayoutRefused, match="22 steps to judge over 2 wave"):
        rollout_for(many, "prod", PROD, "1.0.0", {"eu-west": 2, "us-east": 3})
    layout, rollout = rollout_for(spec(), "prod", PROD, "1.0.0", {WHOLE: 5})
    assert layout.waves == ((WHOLE, 5, 5),) and steps_of(rollout.plan()) == [10]


def test_old_pools_kept_warm_after_regional_waves_are_switched_back_to_in_every_region() -> None:
    rollout = regional(BlueGreenStrategy(keep_warm_s=30, analysis_interval_s=1.0))
    plan = rollout.plan()
    assert rollout.rollback(plan.index(KeepWarm(30))) == [
        EnterRegion("eu-west"), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
        EnterRegion("us-east"), Shift((("1.0.0", 100),)), RetirePool("2.0.0"),
    ]
    assert rollout.rollback(len(plan) - 1) == [], "once an old pool may be retired, nothing is switched back"


def test_a_promoted_regional_release_skips_the_bakes_and_the_verdicts_left() -> None:
    plan = regional().plan()
    promoted_plan = promoted(plan, plan.index(AwaitVerdict(0, 10)))
    assert Skipped(Bake(5.0)) in promoted_plan and Skipped(AwaitVerdict(2, 10)) in promoted_plan
    assert EnterRegion("us-east") in promoted_plan and StartPool("2.0.0", 1) in promoted_plan
