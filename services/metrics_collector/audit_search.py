"""The SQL of `audit show`'s search of audit_index: range sizes, a count and a page of seqs, walking the
range audit_plan chose (why each walk costs what it does is said there).

Each statement is written so that the walked range's index is the only one its WHERE clause can use: the
walked field (or types) and the time within it are terms on that index, and the other filters sit in one
scalar subquery on the same row looked up by seq (its primary key), which no planner turns into a different
walk. A page from the time range is ordered by `seq + 0`, which no index holds, so SQLite reads the time
range and sorts it rather than walking the whole log in seq order to find it. Per type, a page reads
`offset + limit` matches of that type's range in seq order, and the types' pages are merged by one UNION
ALL ordered by seq.

A statement is built once per Shape and run with the filter's values as parameters: building one of a
dozen selects in SQLAlchemy took longer (6 ms for eight types) than SQLite takes to answer it.
"""

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, intersect, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.audit_queries import AuditFilter
from services.metrics_collector.audit_plan import (FIELDS, LOG, LOG_WALK, SIZE_PROBE, TIME, TYPES, Shape, checked,
                                                   shape_of)


def kinds(wanted: AuditFilter) -> list[str]:
    """The types asked for, each once (a repeated one would repeat its records in a merged page)."""
    return sorted(set(wanted.types))


async def sizes(session: AsyncSession, index: Table, wanted: AuditFilter, ranges: list[str]) -> dict[str, int]:
    """Entries in each named range, counted up to SIZE_PROBE, in one statement."""
    if not ranges:
        return {}
    found = (await session.execute(_sizes(index, shape_of(wanted), tuple(ranges)), _values(wanted))).one()
    return {name: int(found._mapping[name]) for name in ranges}


async def count(session: AsyncSession, index: Table, wanted: AuditFilter, walk: str, cap: int,
                merge: bool = False) -> int:
    """Matches, up to cap + 1, counted from the walked range in no particular order (or from every field's
    range intersected, a type at a time, with `merge`)."""
    each = await _types(session, index, wanted, walk) if merge else []
    if merge and not each:
        return 0  # the field's value has no records
    statement = _count(index, shape_of(wanted), walk, len(each) if merge else 0)
    return int(await session.scalar(statement, _values(wanted, each) | {"cap": cap + 1}) or 0)


async def page(session: AsyncSession, index: Table, wanted: AuditFilter, walk: str, *, after: int, offset: int,
               limit: int, merge: bool = False) -> list[int]:
    """The seqs of the page: matches after `after` in log order, `offset` of them skipped (every field's range
    intersected, a type at a time, with `merge`)."""
    shape, each = shape_of(wanted), []
    if walk == LOG and shape.timed:
        return await _log_then_time(session, index, wanted, after=after, offset=offset, limit=limit)
    if walk not in (TIME, LOG):
        each = await _types(session, index, wanted, walk)
        if not each:
            return []  # the field's value has no records
    values = _values(wanted, each) | {"after": after, "offset": offset, "limit": limit, "reach": offset + limit}
    return list(await session.scalars(_page(index, shape, walk, len(each), merge), values))


async def plain_count(session: AsyncSession, index: Table, wanted: AuditFilter, cap: int) -> int:
    """Matches, up to cap + 1, with every filter in one statement: for a planner that has statistics."""
    statement = select(func.count()).select_from(_plain(index, shape_of(wanted)).limit(bindparam("cap")).subquery())
    return int(await session.scalar(statement, _values(wanted) | {"cap": cap + 1}) or 0)


async def plain_page(session: AsyncSession, index: Table, wanted: AuditFilter, *, after: int, offset: int,
                     limit: int) -> list[int]:
    """The page's seqs with every filter in one statement: for a planner that has statistics."""
    plain = _plain(index, shape_of(wanted))
    statement = (plain.where(index.c.seq > bindparam("after")).order_by(index.c.seq)
                 .offset(bindparam("offset")).limit(bindparam("limit")))
    return list(await session.scalars(statement, _values(wanted) | {"after": after, "offset": offset, "limit": limit}))


async def _log_then_time(session: AsyncSession, index: Table, wanted: AuditFilter, *, after: int, offset: int,
                         limit: int) -> list[int]:
    """A wide time range alone: the next LOG_WALK records in log order, their times checked; if they hold
    fewer than the page, the time range read whole (its index answers alone) and sorted by seq."""
    values = _values(wanted) | {"after": after, "offset": offset, "limit": limit, "walked": LOG_WALK}
    found = list(await session.scalars(_log_window(index, shape_of(wanted)), values))
    if len(found) == limit:
        return found
    return await page(session, index, wanted, TIME, after=after, offset=offset, limit=limit)


async def _types(session: AsyncSession, index: Table, wanted: AuditFilter, walk: str) -> list[str]:
    """The types a walk reads a range of: those asked for, else those the walked field's value has records of."""
    if wanted.types or walk == TYPES:
        return kinds(wanted)
    found = await session.scalars(_types_within(index, walk), {f"v_{walk}": getattr(wanted, walk)})
    return [kind for kind in found if kind is not None]


def _values(wanted: AuditFilter, each: list[str] | None = None) -> dict[str, Any]:
    """The filter's values, named as the statements' parameters are."""
    values: dict[str, Any] = {f"v_{f}": getattr(wanted, f) for f in FIELDS if getattr(wanted, f) is not None}
    if wanted.types:
        values["kinds"] = kinds(wanted)
    if wanted.since is not None:
        values["since"] = wanted.since
    if wanted.until is not None:
        values["until"] = wanted.until
    return values | {f"k{n}": kind for n, kind in enumerate(each or [])}


# --- the statements, one per shape --------------------------------------------------------------------------


@cache
def _sizes(index: Table, shape: Shape, ranges: tuple[str, ...]) -> Any:
    # A range's own size, the time left out: the walk reads all of its entries whatever their time.
    counted = [select(func.count()).select_from(select(index.c.seq).where(*_range(index, shape, name, timed=False))
                                                .limit(SIZE_PROBE).subquery()).scalar_subquery().label(name)
               for name in ranges]
    return select(*counted)


@cache
def _count(index: Table, shape: Shape, walk: str, merged_types: int) -> Any:
    if merged_types:
        matching: Any = union_all(*(select(_intersected(index, shape, n, after=False).subquery().c.seq)
                                    for n in range(merged_types)))
    else:
        i = _alias(index, "i")
        matching = select(i.c.seq).where(*_range(i, shape, walk), *_checks(index, i, shape, walk))
    return select(func.count()).select_from(matching.limit(bindparam("cap")).subquery())


@cache
def _page(index: Table, shape: Shape, walk: str, types: int, merge: bool) -> Any:
    i = _alias(index, "i")
    after, offset, limit = bindparam("after"), bindparam("offset"), bindparam("limit")
    if walk == TIME:
        return (select(i.c.seq).where(*_range(i, shape, TIME), i.c.seq > after, *_checks(index, i, shape, TIME))
                .order_by(i.c.seq + 0).offset(offset).limit(limit))
    if walk == LOG:
        return select(i.c.seq).where(i.c.seq > after).order_by(i.c.seq).offset(offset).limit(limit)
    checks = _checks(index, i, shape, walk)
    per_type = [_intersected(index, shape, n).limit(bindparam("reach")) if merge else
                select(i.c.seq).where(*_range(i, shape, walk, bindparam(f"k{n}")), i.c.seq > after, *checks)
                .order_by(i.c.seq).limit(bindparam("reach")) for n in range(types)]
    if types == 1:
        return per_type[0].offset(offset).limit(limit)
    merged = union_all(*(select(part.subquery().c.seq) for part in per_type)).subquery()
    return select(merged.c.seq).order_by(merged.c.seq).offset(offset).limit(limit)


@cache
def _plain(index: Table, shape: Shape) -> Any:
    terms = [index.c[f] == bindparam(f"v_{f}") for f in shape.fields]
    if shape.types:
        terms.append(index.c.type.in_(bindparam("kinds", expanding=True)))
    return select(index.c.seq).where(*terms, *_time(index.c.occurred_at, shape))


@cache
def _log_window(index: Table, shape: Shape) -> Any:
    i = _alias(index, "i")
    window = select(i.c.seq).where(i.c.seq > bindparam("after")).order_by(i.c.seq).limit(bindparam("walked")).subquery()
    return (select(window.c.seq).where(*_checks(index, window, shape, LOG)).order_by(window.c.seq)
            .offset(bindparam("offset")).limit(bindparam("limit")))


@cache
def _types_within(index: Table, field: str) -> Any:
    """The types a field's value has records of, each found by one step of its (field, type, seq) index
    (the next type after the last one found): as many steps as types, whatever the range's size."""
    first, step, value = _alias(index, "first"), _alias(index, "step"), bindparam(f"v_{field}")
    found = select(select(func.min(first.c.type)).where(first.c[field] == value).scalar_subquery()
                   .label("type")).cte("found", recursive=True)
    following = select(func.min(step.c.type)).where(step.c[field] == value, step.c.type > found.c.type)
    found = found.union_all(select(following.scalar_subquery()).where(found.c.type.is_not(None)))
    return select(found.c.type)


def _intersected(index: Table, shape: Shape, n: int, after: bool = True) -> Any:
    """The seqs every field's range of the n-th type holds (the time within each), in seq order: each range
    is in seq order in its index, so SQLite merges them as it reads, no further than the LIMIT put on this."""
    ranges = [select(index.c.seq).where(*_range(index, shape, f, bindparam(f"k{n}")),
                                        *([index.c.seq > bindparam("after")] if after else []))
              for f in shape.fields]
    both = intersect(*ranges)
    return both.order_by(both.selected_columns.seq)


def _range(table: Any, shape: Shape, walk: str, kind: Any = None, timed: bool = True) -> list[ColumnElement[bool]]:
    """The terms that pick the walked range out of its index (one type's part of it, given `kind`), and the
    time range within it unless `timed` is false: the field and type indexes end with the event time."""
    c = table.c
    types = [c.type == kind] if kind is not None else ([c.type.in_(bindparam("kinds", expanding=True))]
                                                        if shape.types else [])
    within = _time(c.occurred_at, shape) if timed else []
    if walk in FIELDS:
        return [c[walk] == bindparam(f"v_{walk}"), *types, *within]
    if walk == TYPES:
        return [*types, *within]
    if walk == TIME:
        return _time(c.occurred_at, shape)
    assert walk == LOG, walk
    return []


def _checks(index: Table, walked: Any, shape: Shape, walk: str) -> list[ColumnElement[bool]]:
    """The filters the walk does not hold, on the walked entry's row (one lookup by seq)."""
    fields, types, time = checked(shape, walk)
    row = _alias(index, "row")
    terms = [row.c[f] == bindparam(f"v_{f}") for f in fields]
    if types:
        terms.append(row.c.type.in_(bindparam("kinds", expanding=True)))
    if time:
        terms.extend(_time(row.c.occurred_at, shape))
    # A scalar subquery, not EXISTS: PostgreSQL turns an EXISTS into a join, which reads the whole table or
    # the whole other range instead of the few rows a page needs; a correlated scalar subquery it runs per row.
    looked_up = select(literal_column("1")).where(row.c.seq == walked.c.seq, *terms).scalar_subquery()
    return [looked_up == 1] if terms else []


@cache
def _alias(index: Table, name: str) -> Any:
    return index.alias(name)


def _time(column: Any, shape: Shape) -> list[ColumnElement[bool]]:
    since = [column >= bindparam("since")] if shape.since else []
    return since + ([column < bindparam("until")] if shape.until else [])
