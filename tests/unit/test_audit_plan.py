"""Which range `audit show` walks, from the ranges' sizes (services/metrics_collector/audit_plan.py)."""

from datetime import UTC, datetime

from contracts.audit_queries import AuditFilter
from services.metrics_collector.audit_plan import (LOG, SIZE_PROBE, TIME, TIME_READ_MAX, TYPES, count_walk, page_walk,
                                                   to_size)

SINCE = datetime(2030, 1, 1, tzinfo=UTC)


def test_one_way_to_read_a_filter_needs_no_sizes() -> None:
    for given in ({}, {"team": "web"}, {"team": "web", "types": ["StepVerdict", "Odd"]}, {"types": ["Odd"]}):
        wanted = AuditFilter(**given)
        assert to_size(wanted) == []
    assert page_walk(AuditFilter(), {}) == LOG and count_walk(AuditFilter(), {}) == LOG
    assert page_walk(AuditFilter(types=["Odd"]), {}) == TYPES
    assert page_walk(AuditFilter(team="web", types=["Odd"]), {}) == "team"


def test_the_narrowest_range_is_walked_and_ties_go_to_the_usually_narrower_field() -> None:
    wanted = AuditFilter(team="web", environment="prod", actor="person:alice")
    assert to_size(wanted) == ["team", "actor", "environment"]
    assert page_walk(wanted, {"team": 900, "actor": 40, "environment": 3000}) == "actor"
    assert count_walk(wanted, {"team": 900, "actor": 40, "environment": 3000}) == "actor"
    everywhere = {"team": SIZE_PROBE, "actor": SIZE_PROBE, "environment": SIZE_PROBE}  # all past the probe
    assert page_walk(wanted, everywhere) == "team" and count_walk(wanted, everywhere) == "team"


def test_a_page_reads_the_time_range_only_when_it_is_small_and_the_smallest() -> None:
    wanted = AuditFilter(team="web", since=SINCE)
    assert to_size(wanted) == ["team", TIME]
    assert page_walk(wanted, {"team": 5000, TIME: 300}) == TIME
    assert page_walk(wanted, {"team": 200, TIME: 300}) == "team"
    # Smaller, but too many rows to look up and sort for one page: the team's range in log order is walked.
    assert page_walk(wanted, {"team": SIZE_PROBE, TIME: TIME_READ_MAX + 1}) == "team"
    # A count keeps no order: it reads whichever is smaller.
    assert count_walk(wanted, {"team": SIZE_PROBE, TIME: TIME_READ_MAX + 1}) == TIME
    assert count_walk(wanted, {"team": 200, TIME: 300}) == "team"


def test_a_time_range_alone_is_read_whole_unless_it_is_wide() -> None:
    wanted = AuditFilter(since=SINCE)
    assert to_size(wanted) == [TIME]
    assert page_walk(wanted, {TIME: SIZE_PROBE - 1}) == TIME
    assert page_walk(wanted, {TIME: SIZE_PROBE}) == LOG  # walked in log order first, the range read if that finds too few
    assert count_walk(wanted, {TIME: SIZE_PROBE}) == TIME
    assert page_walk(AuditFilter(types=["Odd"], since=SINCE), {TYPES: 10, TIME: 5}) == TIME
