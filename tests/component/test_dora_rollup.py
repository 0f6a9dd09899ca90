"""The rolled-up DORA histograms (whole weeks and edge days, every scope) count what the facts themselves count,
for random windows and scopes, on a real SQLite file the bench's seeder filled."""

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from libs.runtime import service_database
from libs.settings import Settings
from services.metrics_collector.dora import Window
from services.metrics_collector.dora_projection import dora_facts
from services.metrics_collector.dora_rollup import DAY, WEEK, DoraRollup, changes, dora_rollup, split
from services.metrics_collector.store import NAME
from slipway.bench_seed import seed_database

RELEASES = 1500  # 38 days of them, several per scope and day: every weekday at some window's edges
WINDOWS = 40


def test_a_window_is_its_whole_weeks_and_the_days_at_either_end() -> None:
    # Wednesday 2026-11-04 to Monday 2026-11-30: weeks from Monday 9th to Sunday 29th, then the edges.
    weeks, edges = split(Window(date(2026, 11, 4), date(2026, 11, 30), 27))
    assert weeks == (date(2026, 11, 9), date(2026, 11, 23))
    assert edges == [(date(2026, 11, 4), date(2026, 11, 8)), (date(2026, 11, 30), date(2026, 11, 30))]
    assert split(Window(date(2026, 11, 9), date(2026, 11, 22), 14)) == ((date(2026, 11, 9), date(2026, 11, 16)), [])
    assert split(Window(date(2026, 11, 10), date(2026, 11, 16), 7)) == (None, [(date(2026, 11, 10), date(2026, 11, 16))])


def test_replacing_a_fact_moves_its_counts_in_every_scope_and_period() -> None:
    fact = {"service": "shop", "environment": "prod", "team": "payments", "day": date(2026, 11, 26), "kind": "lead",
            "bucket": 7}
    moved = changes([fact], [fact | {"bucket": 8}, fact | {"bucket": None}])
    assert len(moved) == 32 and set(moved.values()) == {-1, 1}  # 8 scopes x day and week, for each bucket
    assert moved[("*", "*", "*", WEEK, date(2026, 11, 23), "lead", 8)] == 1
    assert moved[("prod", "payments", "shop", DAY, date(2026, 11, 26), "lead", 7)] == -1


async def test_rolled_up_histograms_count_what_the_facts_count_for_random_windows(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    now = datetime.now(UTC)
    await seed_database(settings, RELEASES, now)
    db, rng, counted = service_database(NAME, settings), random.Random(9), 0
    try:
        async with db.sessions() as session:
            rollup = DoraRollup(session)
            for _ in range(WINDOWS):
                last = now.date() - timedelta(days=rng.randrange(0, 20))
                span = Window(last - timedelta(days=rng.randrange(0, 75)), last, 1)
                service, environment, team = (rng.choice([None, "svc-1", "svc-4"]), rng.choice([None, "prod"]),
                                              rng.choice([None, "team-2"]))
                f = dora_facts.c
                facts = select(f.team, f.kind, f.bucket, func.count()).where(
                    f.bucket.is_not(None), f.day >= span.first, f.day <= span.last,
                    *(f[name] == value for name, value in (("service", service), ("environment", environment),
                                                           ("team", team)) if value is not None))
                expected: dict[str, Counter] = {}
                per_team: dict[str, dict[str, Counter]] = {}
                for row_team, kind, bucket, count in await session.execute(facts.group_by(f.team, f.kind, f.bucket)):
                    expected.setdefault(kind, Counter())[bucket] += count
                    per_team.setdefault(row_team, {}).setdefault(kind, Counter())[bucket] = count
                found = await rollup.histograms(span, service, environment, team, None)
                assert {k: dict(v) for k, v in expected.items()} == found.get("", {}), (span, service, environment, team)
                counted += bool(expected)
                if team is None:
                    teams = await rollup.histograms(span, service, environment, None, ["team-0", "team-2"])
                    assert teams == {t: {k: dict(v) for k, v in kinds.items()} for t, kinds in per_team.items()
                                     if t in ("team-0", "team-2")}
            assert counted > WINDOWS // 2  # most windows hold facts: the comparisons compare something
            # Nothing is kept at a count of zero: a bucket emptied by a rewritten release leaves no row behind.
            assert await session.scalar(select(func.count()).where(dora_rollup.c.count <= 0)) == 0
    finally:
        await db.dispose()
