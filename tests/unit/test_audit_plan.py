"""Which range `audit show` walks, from the ranges' sizes (services/metrics_collector/audit_plan.py)."""

from datetime import UTC, datetime

from contracts.audit_queries import AuditFilter
from services.metrics_collector import audit_plan
from services.metrics_collector.audit_plan import LOG, LOOKUP_COST, PAGE_READ_MAX, SIZE_PROBE, TIME, TYPES, shape_of

SINCE = datetime(2030, 1, 1, tzinfo=UTC)


def to_size(wanted: AuditFilter) -> list[str]:
    return audit_plan.to_size(shape_of(wanted))


def page_walk(wanted: AuditFilter, sizes: dict[str, int]) -> str:
    return audit_plan.page_walk(shape_of(wanted), sizes)


def count_walk(wanted: AuditFilter, sizes: dict[str, int]) -> str:
    return audit_plan.count_walk(shape_of(wanted), sizes)


def merged(wanted: AuditFilter, walk: str, sizes: dict[str, int]) -> bool:
    return audit_plan.merged(shape_of(wanted), walk, sizes)


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


def test_a_page_reads_the_time_range_only_when_that_costs_less_than_the_narrowest_range() -> None:
    # With one field, the field's range checks the time in its own entries; the time range would look each
    # of its rows up to check the field.
    wanted = AuditFilter(team="web", since=SINCE)
    assert to_size(wanted) == ["team", TIME]
    assert page_walk(wanted, {"team": 5000, TIME: 100}) == TIME
    assert page_walk(wanted, {"team": 5000, TIME: 5000 // (1 + LOOKUP_COST) + 1}) == "team"
    # With two fields, every walk looks rows up: the smaller range is read, the time range only if small.
    two = AuditFilter(team="web", environment="prod", since=SINCE)
    assert page_walk(two, {"team": SIZE_PROBE, "environment": SIZE_PROBE, TIME: 900}) == TIME
    too_many = PAGE_READ_MAX // (1 + LOOKUP_COST) + 1
    assert page_walk(two, {"team": SIZE_PROBE, "environment": SIZE_PROBE, TIME: too_many}) == "team"
    # A count keeps no order: it reads whichever costs least whole.
    assert count_walk(two, {"team": SIZE_PROBE, "environment": SIZE_PROBE, TIME: too_many}) == TIME
    assert count_walk(wanted, {"team": SIZE_PROBE, TIME: too_many}) == "team"


def test_a_time_range_alone_is_read_whole_unless_it_is_wide() -> None:
    wanted = AuditFilter(since=SINCE)
    assert to_size(wanted) == [TIME]
    assert page_walk(wanted, {TIME: SIZE_PROBE - 1}) == TIME
    assert page_walk(wanted, {TIME: SIZE_PROBE}) == LOG  # walked in log order first, the range read if that finds too few
    assert count_walk(wanted, {TIME: SIZE_PROBE}) == TIME
    assert page_walk(AuditFilter(types=["Odd"], since=SINCE), {TYPES: 1000, TIME: 5}) == TIME
    assert page_walk(AuditFilter(types=["Odd"], since=SINCE), {TYPES: 100, TIME: 5}) == TYPES


def test_fields_of_a_size_are_intersected_and_a_narrow_one_is_walked_with_lookups() -> None:
    wanted = AuditFilter(service="svc-1", environment="prod")
    wide = {"service": SIZE_PROBE, "environment": SIZE_PROBE}
    assert page_walk(wanted, wide) == "service" and merged(wanted, "service", wide)
    narrow = {"service": 100, "environment": SIZE_PROBE}  # 100 lookups cost less than reading 10,101 entries
    assert not merged(wanted, "service", narrow)
    assert not merged(AuditFilter(service="svc-1"), "service", {"service": SIZE_PROBE})  # one field: nothing to intersect
    assert not merged(AuditFilter(service="svc-1", environment="prod", since=SINCE), TIME, wide)
