from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.events import Verdict
from services.rollback_controller.domain import (
    InFlight, abort_reason, abort_refusal, rollback_reason, time_to_restore,
)


def test_failing_verdict_gives_a_reason_naming_version_step_and_causes() -> None:
    reason = rollback_reason(Verdict.FAIL, ["error rate 50.0% exceeds 5.0% (10/20)", "p99 latency 900 ms exceeds 500 ms"],
                             step_index=0, weight_version="2.0.0")
    assert reason == "2.0.0 failed step 1: error rate 50.0% exceeds 5.0% (10/20); p99 latency 900 ms exceeds 500 ms"


def test_step_numbers_in_reasons_count_from_one() -> None:
    assert rollback_reason(Verdict.FAIL, ["x"], 2, "3.1.0") == "3.1.0 failed step 3: x"


@pytest.mark.parametrize("verdict", [Verdict.PASS, Verdict.MARGINAL, Verdict.INCONCLUSIVE])
def test_passing_marginal_and_inconclusive_verdicts_do_not_roll_back(verdict: Verdict) -> None:
    assert rollback_reason(verdict, ["error rate 3.0% is close to the 5.0% limit"], 0, "2.0.0") is None


def test_time_to_restore_is_seconds_from_failure_to_completion() -> None:
    failed = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
    assert time_to_restore(failed, failed + timedelta(seconds=3, milliseconds=250)) == 3.25
    assert time_to_restore(failed, failed) == 0.0


def test_time_to_restore_compares_instants_not_wall_clocks() -> None:
    failed = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
    completed = datetime(2024, 6, 30, 14, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert time_to_restore(failed, completed) == 5.0


def test_time_to_restore_never_goes_negative_under_clock_skew() -> None:
    failed = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
    assert time_to_restore(failed, failed - timedelta(seconds=2)) == 0.0


IN_FLIGHT = InFlight("shop-2.0.0", "shop", "prod", "2.0.0", "1.0.0")


def test_a_release_in_flight_may_be_aborted_and_the_reason_names_who() -> None:
    assert abort_refusal(IN_FLIGHT, None, "shop-2.0.0") is None
    assert abort_reason("ana", "customers complain") == "aborted by ana: customers complain"


def test_a_release_already_being_rolled_back_may_not_be_aborted_again() -> None:
    earlier = "aborted by ana: customers complain"
    refusal = abort_refusal(IN_FLIGHT, earlier, "shop-2.0.0")
    assert refusal == f"release shop-2.0.0 is already being rolled back: {earlier}"


def test_an_unknown_or_ended_release_may_not_be_aborted() -> None:
    assert abort_refusal(None, None, "nope") == "no release nope in flight is known to the rollback-controller"
    ended = InFlight("shop-2.0.0", "shop", "prod", "2.0.0", "1.0.0", outcome="succeeded")
    assert abort_refusal(ended, None, "shop-2.0.0") == "release shop-2.0.0 is over: it succeeded"


def test_a_release_that_succeeded_may_be_aborted_only_while_its_old_pool_is_kept_warm() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    warm = InFlight("shop-2.0.0", "shop", "prod", "2.0.0", "1.0.0", outcome="succeeded",
                    warm_until=now + timedelta(seconds=30))
    assert abort_refusal(warm, None, "shop-2.0.0", now) is None
    later = now + timedelta(seconds=31)
    assert abort_refusal(warm, None, "shop-2.0.0", later) == (
        "release shop-2.0.0 is over: it succeeded and its old pool was kept warm only until 2026-11-28T12:00:30+00:00")
