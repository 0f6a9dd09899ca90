import pytest

from contracts.events import Severity, Verdict
from services.health_watcher.domain import Observed, Triggers, alert_severity, judge, probe_schedule

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
    [(Verdict.FAIL, Severity.CRITICAL), (Verdict.MARGINAL, Severity.WARNING), (Verdict.PASS, None)],
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
