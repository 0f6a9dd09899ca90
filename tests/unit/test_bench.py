"""The arithmetic behind `make bench`'s "auth and signatures per release" line."""

from slipway.bench import MicroCosts, auth_cost_ms, per_call_us, shift, stack_checks

DECISION = {"ReleaseRequested": 1.0, "ArtifactVerified": 1.0, "ReleaseApproved": 1.0}
COSTS = MicroCosts(sign=60.0, sign_floor=25.0, check=80.0, verify=70.0, verify_floor=60.0, command=80.0,
                   command_verify=70.0)


def test_a_full_stack_checks_each_decision_event_once_per_consumer_including_the_collector() -> None:
    # verifier + collector, gatekeeper + collector, deployer + gatekeeper (its flags) + collector (contracts.catalogue)
    assert stack_checks(DECISION) == 7


def test_an_event_nobody_but_the_collector_reads_is_checked_once() -> None:
    assert stack_checks({"ReleaseBlocked": 2.0}) == 2


def test_cost_per_release_is_every_event_signed_once_and_every_delivery_checked_once() -> None:
    assert auth_cost_ms(DECISION, 2, COSTS) == (3 * 60 + 2 * 80) / 1000


def test_shift_is_the_difference_of_medians_in_milliseconds() -> None:
    # medians 20 ms and 13 ms: one slow outlier does not move it
    assert round(shift([0.010, 0.020, 0.900], [0.012, 0.023, 0.013]), 6) == -7.0


def test_per_call_us_reports_each_call_by_name_in_microseconds() -> None:
    figures = per_call_us({"nothing": lambda: None, "sum": lambda: sum(range(1000))}, number=200, repeat=2)
    assert set(figures) == {"nothing", "sum"}
    assert 0 < figures["nothing"] < figures["sum"]
