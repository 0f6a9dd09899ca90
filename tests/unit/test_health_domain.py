import pytest

from contracts.events import Severity, Verdict
from services.health_watcher.domain import (
    Conclude, Extend, Observed, Patience, Routing, Triggers, alert_severity, assess, judge, probe_schedule, routing,
)

LIMITS = Triggers(max_error_rate=0.05, max_p99_latency_ms=500.0, min_requests=10)


def test_healthy_step_passes_with_its_numbers() -> None:
    verdict, reasons = judge(Observed(requests=120, errors=1, error_rate=1 / 120, p99_ms=42.0), LIMITS)
    assert verdict is Verdict.PASS
    assert reasons == ["error rate 0.8%, p99 42 ms over 120 requests: within limits"]


def test_error_rate_close_to_the_limit_is_marginal() -> None:
    verdict, reasons = judge(Observed(100, 3, 0.03, 40.0), LIMITS)
    assert verdict is Verdict.MARGINAL
    assert reasons == ["error rate 3.0% is close to the 5.0% limit"]


def test_latency_close_to_the_limit_is_marginal() -> None:
    verdict, reasons = judge(Observed(100, 0, 0.0, 400.0), LIMITS)
    assert verdict is Verdict.MARGINAL
    assert reasons == ["p99 latency 400 ms is close to the 500 ms limit"]


def test_exactly_at_the_limits_is_not_a_failure() -> None:
    verdict, _ = judge(Observed(10, 0, 0.05, 500.0), LIMITS)
    assert verdict is Verdict.MARGINAL


def test_error_rate_over_the_limit_fails_with_the_counts() -> None:
    verdict, reasons = judge(Observed(40, 20, 0.5, 10.0), LIMITS)
    assert verdict is Verdict.FAIL
    assert reasons == ["error rate 50.0% exceeds 5.0% (20/40)"]


def test_latency_over_the_limit_fails() -> None:
    verdict, reasons = judge(Observed(40, 0, 0.0, 812.4), LIMITS)
    assert verdict is Verdict.FAIL
    assert reasons == ["p99 latency 812 ms exceeds 500 ms"]


def test_too_few_requests_is_not_enough_evidence() -> None:
    verdict, reasons = judge(Observed(3, 0, 0.0, 5.0), LIMITS)
    assert verdict is Verdict.FAIL
    assert reasons == ["only 3 requests reached the new version; at least 10 needed"]


def test_no_traffic_at_all_fails() -> None:
    verdict, reasons = judge(Observed(0, 0, 0.0, 0.0), LIMITS)
    assert verdict is Verdict.FAIL
    assert "only 0 requests" in reasons[0]


def test_failures_win_over_warnings_and_all_failures_are_listed() -> None:
    verdict, reasons = judge(Observed(5, 1, 0.2, 450.0), LIMITS)
    assert verdict is Verdict.FAIL
    assert reasons == [
        "only 5 requests reached the new version; at least 10 needed",
        "error rate 20.0% exceeds 5.0% (1/5)",
    ]  # the latency warning is not worth mentioning next to failures


def test_stable_version_numbers_are_given_for_comparison() -> None:
    stable = Observed(200, 2, 0.01, 30.0)
    verdict, reasons = judge(Observed(40, 20, 0.5, 10.0), LIMITS, stable)
    assert verdict is Verdict.FAIL
    assert reasons[-1] == "stable version: error rate 1.0%, p99 30 ms over 200 requests"
    _, passing = judge(Observed(40, 0, 0.0, 10.0), LIMITS, stable)
    assert passing[-1] == "stable version: error rate 1.0%, p99 30 ms over 200 requests"


def test_a_stable_version_without_traffic_is_not_compared() -> None:
    verdict, reasons = judge(Observed(40, 0, 0.0, 10.0), LIMITS, Observed(0, 0, 0.0, 0.0))
    assert verdict is Verdict.PASS
    assert len(reasons) == 1


@pytest.mark.parametrize(
    ("verdict", "severity"),
    [(Verdict.FAIL, Severity.CRITICAL), (Verdict.MARGINAL, Severity.WARNING), (Verdict.PASS, None),
     (Verdict.INCONCLUSIVE, Severity.WARNING)],
)
def test_alert_severity(verdict: Verdict, severity: Severity | None) -> None:
    assert alert_severity(verdict) is severity


def test_probe_schedule_follows_the_rate_over_the_interval() -> None:
    count, gap = probe_schedule(interval_s=10.0, min_requests=10, rate_per_s=20.0)
    assert count == 200
    assert gap == pytest.approx(0.04)


def test_probe_schedule_sends_at_least_twice_the_minimum() -> None:
    count, gap = probe_schedule(interval_s=1.0, min_requests=50, rate_per_s=20.0)
    assert count == 100
    assert gap == pytest.approx(0.008)


@pytest.mark.parametrize(("interval", "minimum", "rate"), [(1.0, 5, 20.0), (30.0, 10, 5.0), (0.5, 100, 1.0)])
def test_the_last_probe_lands_inside_the_window(interval: float, minimum: int, rate: float) -> None:
    count, gap = probe_schedule(interval, minimum, rate)
    assert count >= 2 * minimum
    assert count * gap == pytest.approx(interval * 0.8)
    assert count * gap < interval


def test_probe_count_is_bounded_whatever_the_release_asks_for() -> None:
    from services.health_watcher.domain import MAX_PROBES

    count, gap = probe_schedule(interval_s=3600, min_requests=10_000, rate_per_s=1000)
    assert count == MAX_PROBES
    assert gap * count <= 3600


# --- assess: judge, or watch longer when the evidence is thin -------------------------------------

FAIL_AFTER_TWO = Patience(max_extensions=2, on_inconclusive="fail")
PAUSE_AFTER_TWO = Patience(max_extensions=2, on_inconclusive="pause")
THIN = Observed(requests=4, errors=0, error_rate=0.0, p99_ms=12.0)


@pytest.mark.parametrize("extensions", [0, 2])
def test_enough_requests_are_judged_at_once(extensions: int) -> None:
    healthy = Observed(40, 0, 0.0, 10.0)
    outcome = assess(healthy, LIMITS, None, extensions=extensions, observed_s=1.0, patience=FAIL_AFTER_TWO)
    assert outcome == Conclude(Verdict.PASS, ["error rate 0.0%, p99 10 ms over 40 requests: within limits"])
    failing = Observed(40, 20, 0.5, 10.0)
    outcome = assess(failing, LIMITS, None, extensions=extensions, observed_s=1.0, patience=FAIL_AFTER_TWO)
    assert outcome == Conclude(Verdict.FAIL, ["error rate 50.0% exceeds 5.0% (20/40)"])


@pytest.mark.parametrize("extensions", [0, 1])
def test_too_few_requests_extend_the_window_while_the_bound_allows(extensions: int) -> None:
    outcome = assess(THIN, LIMITS, None, extensions=extensions, observed_s=2.0, patience=FAIL_AFTER_TWO)
    assert outcome == Extend(f"4 of 10 requests needed after 2.0 s: extending the window ({extensions + 1} of 2)")


def test_even_a_failing_rate_on_too_few_requests_is_watched_longer() -> None:
    outcome = assess(Observed(4, 2, 0.5, 12.0), LIMITS, None, extensions=0, observed_s=1.0, patience=FAIL_AFTER_TWO)
    assert isinstance(outcome, Extend)


def test_still_too_few_after_the_bound_fails_saying_it_was_inconclusive() -> None:
    outcome = assess(THIN, LIMITS, None, extensions=2, observed_s=3.1, patience=FAIL_AFTER_TWO)
    assert outcome == Conclude(Verdict.FAIL, [
        "inconclusive: 4 of the 10 requests needed reached the new version in 3.1 s (window extended 2 times)",
        "only 4 requests reached the new version; at least 10 needed",
    ])


def test_still_too_few_after_the_bound_pauses_for_a_person_when_so_configured() -> None:
    stable = Observed(200, 0, 0.0, 30.0)
    outcome = assess(THIN, LIMITS, stable, extensions=2, observed_s=3.1, patience=PAUSE_AFTER_TWO)
    assert outcome == Conclude(Verdict.INCONCLUSIVE, [
        "inconclusive: 4 of the 10 requests needed reached the new version in 3.1 s (window extended 2 times)",
        "only 4 requests reached the new version; at least 10 needed",
        "stable version: error rate 0.0%, p99 30 ms over 200 requests",
        "a person must decide: the release holds its current weights until "
        "`slipway release resume` or `slipway release abort`",
    ])


def test_no_extensions_allowed_concludes_on_the_first_window() -> None:
    outcome = assess(THIN, LIMITS, None, extensions=0, observed_s=1.0, patience=Patience(0, "fail"))
    assert isinstance(outcome, Conclude) and outcome.verdict is Verdict.FAIL
    assert outcome.reasons[0].startswith("inconclusive: 4 of the 10")


# --- routing: does the router route the step? --------------------------------------------------------

ROUTES = {"backends": [{"version": "1.0.0", "url": "http://127.0.0.1:1", "weight": 90},
                       {"version": "2.0.0", "url": "http://127.0.0.1:2", "weight": 10}]}


def test_the_step_weight_on_the_new_version_is_confirmed() -> None:
    assert routing(ROUTES, "2.0.0", 10) is Routing.WEIGHTED


def test_the_new_version_at_another_weight_is_present() -> None:
    assert routing(ROUTES, "2.0.0", 50) is Routing.PRESENT


def test_a_version_the_router_does_not_know_is_absent() -> None:
    assert routing(ROUTES, "3.0.0", 10) is Routing.ABSENT
    assert routing({"backends": []}, "3.0.0", 100) is Routing.ABSENT


@pytest.mark.parametrize("document", [{"status": "ok"}, [], {"backends": "none"}, {"backends": [1]}, None])
def test_a_document_that_is_not_routes_is_refused(document: object) -> None:
    with pytest.raises(ValueError, match="backends"):
        routing(document, "2.0.0", 10)
