"""Drift of one service from its environment's declaration, and what reconciling it takes: pure decisions."""

from pathlib import Path

from libs.environments import load_environments
from services.deployer.drift import Instance, Running, drift
from services.deployer.reconcile_rules import reconcile_refusal, reconciliation

DECLARED = load_environments(Path(__file__).resolve().parents[2] / "infra" / "environments")
STAGING = DECLARED.environments["staging"]  # eu-west 1 + us-east 1, quota 4; LOG_LEVEL info, timeout 5, sandbox
PROD = DECLARED.environments["prod"]  # eu-west 2 + us-east 2, reconciled on demand
STAGING_CONFIG = {"LOG_LEVEL": "info", "REQUEST_TIMEOUT_S": "5", "PAYMENTS_PROVIDER": "sandbox"}


def of(version: str, *slots: int, region: str | None = None, alive: bool = True,
       config: dict[str, str] | None = None) -> tuple[Instance, ...]:
    return tuple(Instance(version, slot, region, config, alive) for slot in slots)


def kinds(running: Running, environment: str = "staging") -> list[tuple[str, str | None, str, str]]:
    return [(f.kind, f.region, f.expected, f.actual) for f in drift(DECLARED.get(environment), environment, running)]


def test_what_matches_the_declaration_region_by_region_has_no_drift() -> None:
    running = Running("shop", "1.0.0", (*of("1.0.0", 0, region="eu-west"), *of("1.0.0", 1, region="us-east")))
    assert kinds(running) == []


def test_instances_are_counted_per_region_where_they_run_in_one_and_in_total_where_none_does() -> None:
    # A release to the whole environment: one pool of the declared total, no region.
    assert kinds(Running("shop", "1.0.0", of("1.0.0", 0, 1))) == []
    [short] = drift(STAGING, "staging", Running("shop", "1.0.0", of("1.0.0", 0)))
    assert (short.kind, short.region, short.expected, short.actual) == ("instances", None, "2", "1")
    assert short.detail == ("shop 1.0.0: 1 instance(s) for the whole environment, 2 declared over all regions "
                            "(eu-west 1, us-east 1)")
    # Region by region: the same total, two findings.
    both_in_one = Running("shop", "1.0.0", of("1.0.0", 0, 1, region="eu-west"))
    assert kinds(both_in_one) == [("instances", "eu-west", "1", "2"), ("instances", "us-east", "1", "0")]
    [eu, _] = drift(STAGING, "staging", both_in_one)
    assert eu.detail == "shop 1.0.0: 2 instance(s) in eu-west, 1 declared"
    elsewhere = Running("shop", "1.0.0", (*of("1.0.0", 0, region="eu-west"), *of("1.0.0", 1, region="us-east"),
                                          *of("1.0.0", 2, region="ap-south"), *of("1.0.0", 3)))
    assert kinds(elsewhere) == [("instances", "ap-south", "0", "1"), ("instances", None, "0", "1")]


def test_quota_strays_and_dead_processes_are_each_a_finding() -> None:
    running = Running("shop", "2.0.0", (*of("2.0.0", 0, 1), *of("1.0.0", 0, 1, 2), *of("1.0.0", 3, alive=False)))
    assert kinds(running) == [
        ("over-quota", None, "at most 4", "6"), ("stray-version", None, "only 2.0.0", "1.0.0 x4"),
        ("instance-down", None, "running", "not running"),
    ]
    assert kinds(Running("shop", None)) == [("instances", None, "2", "0")]


def test_an_instance_running_with_another_configuration_than_declared_is_drift() -> None:
    edited = {**STAGING_CONFIG, "LOG_LEVEL": "debug", "EXTRA": "1"}
    del edited["PAYMENTS_PROVIDER"]
    running = Running("shop", "1.0.0", (*of("1.0.0", 0, region="eu-west", config=STAGING_CONFIG),
                                        *of("1.0.0", 1, region="us-east", config=edited)))
    [finding] = drift(STAGING, "staging", running)
    assert (finding.kind, finding.region) == ("config", "us-east")
    assert finding.expected == "EXTRA unset, LOG_LEVEL=info, PAYMENTS_PROVIDER=sandbox"
    assert finding.actual == "EXTRA=1, LOG_LEVEL=debug, PAYMENTS_PROVIDER unset"
    assert "instance 1 in us-east" in finding.detail and "staging.yaml" in finding.detail
    # Unknown configuration (a target that cannot tell) and a stray version's are not compared.
    unknown = Running("shop", "1.0.0", (*of("1.0.0", 0, region="eu-west"), *of("1.0.0", 1, region="us-east")))
    assert kinds(unknown) == []


def test_a_rollout_in_flight_is_not_compared_and_an_undeclared_environment_is_drift() -> None:
    assert kinds(Running("shop", "1.0.0", of("1.0.0", 0) + of("2.0.0", 0), in_flight=True)) == []
    [(kind, _, _, actual)] = kinds(Running("shop", "1.0.0", of("1.0.0", 0, 1)), "qa")
    assert (kind, actual) == ("undeclared-environment", "shop runs there")
    # A preview environment is compared with its template.
    assert kinds(Running("shop", "1.0.0", of("1.0.0", 0)), "preview-pr-7") == []


def test_policy_production_reconciles_only_on_demand_others_on_the_schedule_and_off_refuses_both() -> None:
    assert reconcile_refusal(STAGING, "staging", on_demand=False) is None
    assert reconcile_refusal(PROD, "prod", on_demand=True) is None
    scheduled = reconcile_refusal(PROD, "prod", on_demand=False)
    assert scheduled and "drift.reconcile: on-demand" in scheduled and "slipway env drift prod --reconcile" in scheduled
    off = PROD.model_copy(update={"drift": PROD.drift.model_copy(update={"reconcile": "off"})})
    refused = reconcile_refusal(off, "prod", on_demand=True)
    assert refused and refused.startswith("prod.yaml says drift.reconcile: off")
    assert "not declared" in (reconcile_refusal(None, "qa", on_demand=True) or "")


def test_reconciling_starts_what_is_missing_per_region_and_stops_surplus_and_strays() -> None:
    regional = Running("shop", "2.0.0", (*of("2.0.0", 0, 1, 3, region="eu-west"), *of("1.0.0", 0)))
    plan = reconciliation(PROD, regional)
    assert plan.version == "2.0.0"
    assert plan.start == (("us-east", 2), ("us-east", 4))  # free slots, not one reused
    assert [(i.version, i.slot) for i in plan.stop] == [("2.0.0", 3), ("1.0.0", 0)]  # highest slot is surplus
    assert plan.restart == () and plan.left == ()
    whole = reconciliation(PROD, Running("shop", "2.0.0", of("2.0.0", 0, 2)))
    assert (whole.start, whole.stop) == (((None, 1), (None, 3)), ())
    mixed = reconciliation(PROD, Running("shop", "2.0.0", (*of("2.0.0", 0, 1, region="eu-west"),
                                                           *of("2.0.0", 2, 3, region="us-east"), *of("2.0.0", 4))))
    assert not mixed.acts and "beside its regional pools: not moved" in mixed.left[0]


def test_reconciling_restarts_what_runs_with_another_configuration_and_leaves_what_it_cannot_do() -> None:
    stale = {**STAGING_CONFIG, "LOG_LEVEL": "debug"}
    running = Running("shop", "1.0.0", (*of("1.0.0", 0, config=stale), *of("1.0.0", 1, alive=False, config=stale)))
    plan = reconciliation(STAGING, running)
    assert [i.slot for i in plan.restart] == [0] and not plan.start and not plan.stop
    assert plan.left == ("1.0.0 instance 1 is down: the deployer's upkeep restarts it",)
    assert not reconciliation(STAGING, Running("shop", "1.0.0", of("1.0.0", 0), in_flight=True)).acts
    nothing_live = reconciliation(STAGING, Running("shop", None, of("1.0.0", 0)))
    assert not nothing_live.acts and "nothing of shop is live" in nothing_live.left[0]
