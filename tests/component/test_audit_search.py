"""`audit show`'s search of the audit index against a real SQLite file (and PostgreSQL where one answers):
for every combination of filters, every range the plan could walk, and the fields' ranges intersected, give
exactly what filtering the log row by row gives: the same seqs in the same order, page after page (by the
`after` cursor and by page number), and the same count up to its cap."""

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.audit_queries import AuditFilter
from libs.store import Database
from services.metrics_collector import audit_plan, audit_search
from services.metrics_collector.audit_plan import FIELDS, LOG, TIME, TYPES
from services.metrics_collector.audit_store import AuditIndex, audit_index
from services.metrics_collector.store import event_log, metadata
from tests.support.postgres import own_database

START = datetime(2030, 1, 1, tzinfo=UTC)
RECORDS = 1500
TYPE_NAMES = ("ReleaseRequested", "StepStarted", "StepVerdict", "DeploymentSucceeded", "RollbackCompleted", "Odd")
VALUES = {"release_id": [f"r-{n}" for n in range(60)], "service": ["shop", "cart", "search", "auth", "mail"],
          "team": ["payments", "web", "core"], "actor": ["person:alice", "person:bob", "ci:main", "service:deployer"],
          "environment": ["prod", "staging", "dev"]}


def the_log() -> list[dict[str, Any]]:
    """Records whose fields are skewed (a few values hold most records, some records have none) and whose
    times are mostly in log order, with late ones (logged long after they occurred), future ones and ties."""
    draw = random.Random(9)
    rows = []
    for seq in range(1, RECORDS + 1):
        row: dict[str, Any] = {"seq": seq, "type": draw.choices(TYPE_NAMES, weights=(3, 6, 6, 2, 1, 1))[0]}
        for field, values in VALUES.items():
            skewed = draw.choices(values, weights=[2 ** -n for n in range(len(values))])[0]
            row[field] = None if draw.random() < 0.1 else skewed
        late = draw.random() < 0.05
        minutes = draw.randrange(0, seq) if late else seq + draw.choice((0, 0, 1, -1, 400))
        row["occurred_at"] = START + timedelta(minutes=minutes)
        rows.append(row)
    return rows


LOG_ROWS = the_log()
T = [START + timedelta(minutes=m) for m in (0, 200, 700, 701, 1400, 3000)]
FILTERS = [
    {},
    {"team": "payments"},
    {"release_id": "r-3"},
    {"types": ["StepVerdict"]},
    {"types": ["StepVerdict", "RollbackCompleted", "StepVerdict"]},  # a repeated type counts once
    {"team": "web", "types": ["StepVerdict"]},
    {"team": "web", "types": ["DeploymentSucceeded", "RollbackCompleted", "Odd"]},
    {"team": "payments", "environment": "prod"},
    {"service": "cart", "environment": "prod", "types": ["StepStarted", "StepVerdict"]},
    {"service": "mail", "team": "core", "actor": "person:bob", "environment": "dev"},
    {"team": "payments", "service": "nowhere"},
    {"since": T[2]},
    {"until": T[1]},
    {"since": T[2], "until": T[3]},
    {"since": T[1], "until": T[4], "team": "payments"},
    {"since": T[4], "types": ["StepVerdict", "ReleaseRequested"]},
    {"since": T[2], "team": "web", "environment": "staging", "types": ["StepStarted"]},
    {"since": T[5]},  # after every record
    {"until": T[0], "service": "shop"},  # before every record
]


def matches(row: dict[str, Any], wanted: AuditFilter) -> bool:
    return (all(getattr(wanted, f) is None or row[f] == getattr(wanted, f) for f in FIELDS)
            and (not wanted.types or row["type"] in wanted.types)
            and (wanted.since is None or row["occurred_at"] >= wanted.since)
            and (wanted.until is None or row["occurred_at"] < wanted.until))


def walks(wanted: AuditFilter) -> list[tuple[str, bool]]:
    """Every way a query could be read, (range, fields merged): what the plan chooses among."""
    asked = audit_plan.shape_of(wanted)
    ranges = audit_plan.walkable(asked) + ([TIME] if asked.timed else [])
    ranges += [LOG] if not audit_plan.walkable(asked) else []
    return [(walk, False) for walk in ranges] + [(walk, True) for walk in asked.fields if len(asked.fields) > 1]


async def seeded(database: Database) -> Database:
    await database.create_all(metadata)
    async with database.transaction() as tx:
        await tx.session.execute(event_log.insert(), [
            {"seq": r["seq"], "event_id": f"e{r['seq']}", "type": r["type"], "subject": "s", "occurred_at": r["occurred_at"],
             "recorded_at": START, "payload": "{}", "prev_hash": f"{r['seq']:064d}", "hash": f"{r['seq'] + 1:064d}"}
            for r in LOG_ROWS])
        await AuditIndex(tx.session).add(LOG_ROWS)
    return database


@pytest.fixture
async def sqlite_log(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}")
    try:
        yield await seeded(database)
    finally:
        await database.dispose()


async def pages_by_cursor(session: Any, wanted: AuditFilter, walk: str, merge: bool, limit: int) -> list[int]:
    found, after = [], 0
    while page := await audit_search.page(session, audit_index, wanted, walk, after=after, offset=0, limit=limit,
                                          merge=merge):
        assert len(page) <= limit and page[0] > after  # a cursor that did not move would page forever
        found += page
        after = page[-1]
    return found


async def agrees_with_the_log(database: Database) -> None:
    for given in FILTERS:
        wanted = AuditFilter(**given)
        expected = [r["seq"] for r in LOG_ROWS if matches(r, wanted)]
        async with database.sessions() as session:
            for walk, merge in walks(wanted):
                said = f"{wanted.described()} walking {walk}{' merged' if merge else ''}"
                assert await pages_by_cursor(session, wanted, walk, merge, 37) == expected, said
                by_number = [await audit_search.page(session, audit_index, wanted, walk, after=0, offset=n * 37, limit=37,
                                                     merge=merge) for n in range(3)]
                assert sum(by_number, []) == expected[:111], said
                middle = expected[len(expected) // 2] if expected else 700
                assert await audit_search.page(session, audit_index, wanted, walk, after=middle, offset=0, limit=5,
                                               merge=merge) == [s for s in expected if s > middle][:5], said
                for cap in (0, 10, len(expected), 5000):
                    counted = await audit_search.count(session, audit_index, wanted, walk, cap, merge)
                    assert counted == min(len(expected), cap + 1), said
            # And the plan's own choice, as `audit show` asks.
            index = AuditIndex(session)
            rows = await index.page(wanted, after=None, offset=0, limit=50)
            assert [r["seq"] for r in rows] == expected[:50], wanted.described()
            assert await index.count(wanted, 100) == min(len(expected), 101), wanted.described()


async def test_every_walk_finds_what_filtering_the_log_row_by_row_finds(sqlite_log: Database) -> None:
    await agrees_with_the_log(sqlite_log)


async def test_a_wide_time_range_alone_falls_back_to_reading_it_when_the_log_walk_finds_too_few(
        sqlite_log: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_search, "LOG_WALK", 10)  # fewer records than a page holds: every walk falls back
    await agrees_with_the_log(sqlite_log)


async def test_a_field_without_types_is_read_type_by_type(sqlite_log: Database) -> None:
    async with sqlite_log.sessions() as session:
        # The types a team has records of, found by stepping through its index: here all of them.
        web = await audit_search._types(session, audit_index, AuditFilter(team="web"), "team")
        assert web == sorted({r["type"] for r in LOG_ROWS if r["team"] == "web"})
        assert await audit_search._types(session, audit_index, AuditFilter(team="nobody"), "team") == []


@pytest.mark.postgres
async def test_every_walk_agrees_with_the_log_on_postgresql() -> None:
    async with own_database() as url:
        database = Database(url)
        try:
            await agrees_with_the_log(await seeded(database))
        finally:
            await database.dispose()


def test_the_walks_exercised_cover_every_kind() -> None:
    exercised = {way for f in FILTERS for way in walks(AuditFilter(**f))}
    assert {walk for walk, _ in exercised} >= {*FIELDS, TYPES, TIME, LOG} and any(merge for _, merge in exercised)
