"""The SQL of `audit show`'s search of audit_index: range sizes, a count and a page of seqs, walking the
range audit_plan chose (why each walk costs what it does is said there).

Each statement is written so that the walked range's index is the only one its WHERE clause can use: the
walked field (or types) and the time within it are terms on that index, and the other filters sit in one
scalar subquery on the same row looked up by seq (its primary key), which no planner turns into a different
walk. A page from the time range is ordered by `seq + 0`, which no index holds, so SQLite reads the time
range and sorts it rather than walking the whole log in seq order to find it. Per type, a page reads
`offset + limit` matches of that type's range in seq order, and the types' pages are merged by one UNION
ALL ordered by seq.
"""

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, func, intersect, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.audit_queries import AuditFilter
from services.metrics_collector.audit_plan import FIELDS, LOG, LOG_WALK, SIZE_PROBE, TIME, TYPES, checked
from services.metrics_collector.audit_plan import timed as has_time


def kinds(wanted: AuditFilter) -> list[str]:
    """The types asked for, each once (a repeated one would repeat its records in a merged page)."""
    return sorted(set(wanted.types))


async def sizes(session: AsyncSession, index: Table, wanted: AuditFilter, ranges: list[str]) -> dict[str, int]:
    """Entries in each named range, counted up to SIZE_PROBE, in one statement."""
    if not ranges:
        return {}
    # A range's own size, the time left out: the walk reads all of its entries whatever their time.
    counted = [select(func.count()).select_from(select(index.c.seq).where(*_range(index, wanted, name, timed=False))
                                                .limit(SIZE_PROBE).subquery()).scalar_subquery().label(name)
               for name in ranges]
    found = (await session.execute(select(*counted))).one()
    return {name: int(found._mapping[name]) for name in ranges}


async def count(session: AsyncSession, index: Table, wanted: AuditFilter, walk: str, cap: int,
                merge: bool = False) -> int:
    """Matches, up to cap + 1, counted from the walked range in no particular order (or from every field's
    range intersected, a type at a time, with `merge`)."""
    if merge:
        each = kinds(wanted) or await _types_within(session, index, walk, getattr(wanted, walk))
        if not each:
            return 0
        matching: Any = union_all(*(select(_intersected(index, wanted, kind).subquery().c.seq) for kind in each))
    else:
        i = _alias(index, "i")
        matching = select(i.c.seq).where(*_range(i, wanted, walk), *_checks(index, i, wanted, walk))
    return int(await session.scalar(select(func.count()).select_from(matching.limit(cap + 1).subquery())) or 0)


async def page(session: AsyncSession, index: Table, wanted: AuditFilter, walk: str, *, after: int, offset: int,
               limit: int, merge: bool = False) -> list[int]:
    """The seqs of the page: matches after `after` in log order, `offset` of them skipped (every field's range
    intersected, a type at a time, with `merge`)."""
    i = _alias(index, "i")
    if walk == TIME:
        query = (select(i.c.seq).where(*_range(i, wanted, TIME), i.c.seq > after, *_checks(index, i, wanted, TIME))
                 .order_by(i.c.seq + 0).offset(offset).limit(limit))
        return list(await session.scalars(query))
    if walk == LOG:
        if has_time(wanted):
            return await _log_then_time(session, index, wanted, after=after, offset=offset, limit=limit)
        query = select(i.c.seq).where(i.c.seq > after).order_by(i.c.seq).offset(offset).limit(limit)
        return list(await session.scalars(query))
    each = kinds(wanted) or await _types_within(session, index, walk, getattr(wanted, walk))
    if not each:
        return []  # the field's value has no records
    checks = _checks(index, i, wanted, walk)
    per_type = [_intersected(index, wanted, kind, after).limit(offset + limit) if merge else
                select(i.c.seq).where(*_range(i, wanted, walk, kind), i.c.seq > after, *checks)
                .order_by(i.c.seq).limit(offset + limit) for kind in each]
    if len(per_type) == 1:
        return list(await session.scalars(per_type[0].offset(offset).limit(limit)))
    merged = union_all(*(select(part.subquery().c.seq) for part in per_type)).subquery()
    query = select(merged.c.seq).order_by(merged.c.seq).offset(offset).limit(limit)
    return list(await session.scalars(query))


def _intersected(index: Table, wanted: AuditFilter, kind: str, after: int = 0) -> Any:
    """The seqs every field's range of one type holds (the time within each), in seq order: each range is in
    seq order in its index, so SQLite merges them as it reads, no further than the LIMIT put on this."""
    ranges = [select(index.c.seq).where(*_range(index, wanted, f, kind), index.c.seq > after)
              for f in FIELDS if getattr(wanted, f) is not None]
    both = intersect(*ranges)
    return both.order_by(both.selected_columns.seq)


async def _log_then_time(session: AsyncSession, index: Table, wanted: AuditFilter, *, after: int, offset: int,
                         limit: int) -> list[int]:
    """A wide time range alone: the next LOG_WALK records in log order, their times checked; if they hold
    fewer than the page, the time range read whole (its index answers alone) and sorted by seq."""
    i = _alias(index, "i")
    window = select(i.c.seq).where(i.c.seq > after).order_by(i.c.seq).limit(LOG_WALK).subquery()
    walked = (select(window.c.seq).where(*_checks(index, window, wanted, LOG)).order_by(window.c.seq)
              .offset(offset).limit(limit))
    found = list(await session.scalars(walked))
    if len(found) == limit:
        return found
    return await page(session, index, wanted, TIME, after=after, offset=offset, limit=limit)


async def _types_within(session: AsyncSession, index: Table, field: str, value: str) -> list[str]:
    """The types a field's value has records of, each found by one step of its (field, type, seq) index
    (the next type after the last one found): as many steps as types, whatever the range's size."""
    first, step = _alias(index, "first"), _alias(index, "step")
    found = select(select(func.min(first.c.type)).where(first.c[field] == value).scalar_subquery()
                   .label("type")).cte("found", recursive=True)
    following = select(func.min(step.c.type)).where(step.c[field] == value, step.c.type > found.c.type)
    found = found.union_all(select(following.scalar_subquery()).where(found.c.type.is_not(None)))
    return [kind for kind in await session.scalars(select(found.c.type)) if kind is not None]


def _range(table: Any, wanted: AuditFilter, walk: str, kind: str | None = None,
           timed: bool = True) -> list[ColumnElement[bool]]:
    """The terms that pick the walked range out of its index (one type's part of it, given `kind`), and the
    time range within it unless `timed` is false: the field and type indexes end with the event time."""
    c = table.c
    types = [c.type == kind] if kind is not None else ([c.type.in_(kinds(wanted))] if wanted.types else [])
    within = _time(c.occurred_at, wanted) if timed else []
    if walk in FIELDS:
        return [c[walk] == getattr(wanted, walk), *types, *within]
    if walk == TYPES:
        return [*types, *within]
    if walk == TIME:
        return _time(c.occurred_at, wanted)
    assert walk == LOG, walk
    return []


def _checks(index: Table, walked: Any, wanted: AuditFilter, walk: str) -> list[ColumnElement[bool]]:
    """The filters the walk does not hold, on the walked entry's row (one lookup by seq)."""
    fields, types, time = checked(wanted, walk)
    row = _alias(index, "row")
    terms = [row.c[f] == getattr(wanted, f) for f in fields]
    if types:
        terms.append(row.c.type.in_(kinds(wanted)))
    if time:
        terms.extend(_time(row.c.occurred_at, wanted))
    # A scalar subquery, not EXISTS: PostgreSQL turns an EXISTS into a join, which reads the whole table or
    # the whole other range instead of the few rows a page needs; a correlated scalar subquery it runs per row.
    looked_up = select(literal_column("1")).where(row.c.seq == walked.c.seq, *terms).scalar_subquery()
    return [looked_up == 1] if terms else []


@cache
def _alias(index: Table, name: str) -> Any:
    # Made once: an alias copies every column of the table, a good part of a query's own cost in Python.
    return index.alias(name)


def _time(column: Any, wanted: AuditFilter) -> list[ColumnElement[bool]]:
    terms = []
    if wanted.since is not None:
        terms.append(column >= wanted.since)
    if wanted.until is not None:
        terms.append(column < wanted.until)
    return terms

