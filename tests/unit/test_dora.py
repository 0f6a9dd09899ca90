"""DORA for every team, its pure rules: percentiles from histograms, rework, team, windows, bands."""

import random
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from services.metrics_collector import domain
from services.metrics_collector.dora import (DECLARED, EMERGENCY, INCIDENT, NO_TEAM, RELATIVE_ERROR, ZERO_BUCKET,
                                             BadWindow, bucket_of, bucket_value, percentile_of_buckets, rework_reason,
                                             team_of, window)
from services.metrics_collector.dora_bands import HIGH_OR_MEDIUM, SOURCE, bands, deployment_frequency_band


def histogram(values: list[float]) -> dict[int, int]:
    return dict(Counter(bucket_of(v) for v in values))


@pytest.mark.parametrize("seconds", [0.001, 0.5, 1, 59, 3600, 7740, 86_399, 30 * 86400, 3.2e8])
def test_a_bucket_stands_for_its_durations_within_the_relative_error(seconds: float) -> None:
    assert bucket_value(bucket_of(seconds)) == pytest.approx(seconds, rel=RELATIVE_ERROR)
    assert bucket_of(seconds * 1.5) > bucket_of(seconds)  # log-spaced: larger durations, later buckets


def test_zero_and_negative_durations_count_as_zero_exactly() -> None:
    assert bucket_of(0) == bucket_of(-12.5) == ZERO_BUCKET and bucket_value(ZERO_BUCKET) == 0.0
    assert percentile_of_buckets(histogram([0, 0, 10]), 50) == 0.0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [50, 90])
def test_percentiles_from_buckets_are_within_the_relative_error_of_the_samples_own(seed: int, p: float) -> None:
    rng = random.Random(seed)
    # Lead times from minutes to weeks, log-normal like real ones, and a few at once.
    samples = [rng.lognormvariate(9, 2) for _ in range(rng.randint(1, 400))]
    exact = domain.percentile(samples, p)
    assert exact is not None
    assert percentile_of_buckets(histogram(samples), p) == pytest.approx(exact, rel=RELATIVE_ERROR)


def test_percentiles_interpolate_between_the_closest_ranks_as_over_samples() -> None:
    # Two samples: the median is half way, the p90 nine tenths of the way from one to the other.
    counts = histogram([100.0, 200.0])
    assert percentile_of_buckets(counts, 50) == pytest.approx(150, rel=RELATIVE_ERROR)
    assert percentile_of_buckets(counts, 90) == pytest.approx(190, rel=RELATIVE_ERROR)
    assert percentile_of_buckets({}, 50) is None and percentile_of_buckets({bucket_of(5): 0}, 50) is None


def request(**spec: object) -> dict[str, object]:
    return {"type": "ReleaseRequested", "release_id": "r-1", "team": "payments", **spec}


@pytest.mark.parametrize(("spec", "reason"), [
    ({}, None),
    ({"unplanned": True}, DECLARED),
    ({"unplanned": True, "release_class": "emergency", "incident": "INC-1"}, DECLARED),  # said beats inferred
    ({"release_class": "emergency"}, EMERGENCY),
    ({"release_class": "emergency", "incident": "INC-1"}, EMERGENCY),
    ({"incident": "INC-7"}, INCIDENT),
    ({"release_class": "major", "unplanned": False}, None),
])
def test_rework_is_what_the_release_says_or_what_its_class_or_incident_imply(spec: dict, reason: str | None) -> None:
    history = [request(**spec), {"type": "DeploymentSucceeded", "release_id": "r-1"}]
    assert rework_reason(history) == reason


def test_the_first_request_decides_rework_and_team_a_retry_does_not() -> None:
    history = [request(), request(unplanned=True, team="other"), {"type": "DeploymentSucceeded"}]
    assert (rework_reason(history), team_of(history)) == (None, "payments")
    assert rework_reason([{"type": "DeploymentSucceeded"}]) is None  # no request logged: nothing said, nothing inferred


def test_a_release_without_a_team_in_its_request_takes_the_first_one_named_or_none() -> None:
    assert team_of([{"type": "DeploymentStarted"}, {"type": "StepStarted", "team": "web"}]) == "web"
    assert team_of([{"type": "DeploymentStarted"}]) == NO_TEAM


NOW = datetime(2030, 3, 10, 12, tzinfo=UTC)


def test_a_window_of_days_ends_today_and_divides_by_its_days() -> None:
    span = window(NOW, 30)
    assert (span.first, span.last, span.days) == (date(2030, 2, 8), date(2030, 3, 10), 30)


def test_a_window_since_until_counts_both_ends() -> None:
    span = window(NOW, 30, since=date(2030, 3, 1), until=date(2030, 3, 7))
    assert (span.first, span.last, span.days) == (date(2030, 3, 1), date(2030, 3, 7), 7)
    assert window(NOW, 30, since=date(2030, 3, 1)).last == date(2030, 3, 10)  # until defaults to today


@pytest.mark.parametrize(("since", "until", "reason"), [
    (date(2030, 3, 11), None, "after today"),
    (date(2030, 3, 5), date(2030, 3, 4), "after it ends"),
])
def test_a_window_that_cannot_be_answered_is_refused_with_the_reason(since: date, until: date | None, reason: str) -> None:
    with pytest.raises(BadWindow, match=reason):
        window(NOW, 30, since=since, until=until)


def test_bands_place_each_figure_by_the_2024_report_and_name_it() -> None:
    elite = bands(per_day=3, deployments=90, lead_time_median_s=3 * 3600, change_failure_rate=0.04, changes=90,
                  recovery_median_s=20 * 60)
    assert (elite.deployment_frequency, elite.lead_time, elite.change_failure_rate, elite.recovery_time) == (
        "elite", "elite", "elite", "elite")
    assert elite.year == 2024 and "2024" in elite.source and elite.source == SOURCE
    middling = bands(per_day=0.2, deployments=6, lead_time_median_s=10 * 86400, change_failure_rate=0.15, changes=6,
                     recovery_median_s=5 * 3600)
    assert (middling.deployment_frequency, middling.lead_time, middling.change_failure_rate, middling.recovery_time) == (
        "high", "medium", HIGH_OR_MEDIUM, HIGH_OR_MEDIUM)
    slow = bands(per_day=0.01, deployments=1, lead_time_median_s=90 * 86400, change_failure_rate=0.5, changes=2,
                 recovery_median_s=3 * 86400)
    assert (slow.deployment_frequency, slow.lead_time, slow.change_failure_rate, slow.recovery_time) == (
        "low", "low", "low", "low")
    # "Multiple deploys per day" is elite: one a day is the top of high; rarer than once in six months is low.
    assert [deployment_frequency_band(per_day, 1) for per_day in (1.5, 1, 1 / 7, 1 / 8, 1 / 30, 1 / 200)] == [
        "elite", "high", "high", "medium", "medium", "low"]
    nothing = bands(per_day=0, deployments=0, lead_time_median_s=None, change_failure_rate=0, changes=0,
                    recovery_median_s=None)
    assert (nothing.deployment_frequency, nothing.lead_time, nothing.change_failure_rate, nothing.recovery_time) == (
        None, None, None, None)
