"""Which index range `audit show` walks for a filter, chosen from how many entries each range holds: pure,
no database (audit_search runs the plan).

audit_index has, per logged record, an index (field, type, seq, occurred_at) for each of FIELDS, one on
(type, seq, occurred_at) and one on (occurred_at, seq). A page is the first `limit` matches after a seq, in
log order (seq); a count stops at COUNT_CAP + 1 matches. SQLite keeps no statistics: it knows neither that
a page only needs the first matches in seq order nor which of two filters is the narrower, so for SQLite the
choice is made here. (PostgreSQL keeps statistics and combines indexes itself: it is given every filter in
one statement, audit_search.plain_page; run through these walks instead it was slower, 60-150 ms where its
own plans took 15-35 at 10^5 records.)

- A field's range (or, with no field, the types') is read a type at a time: within one field value and one
  type the index is in seq order, so a page takes the first `limit` entries of each type's range and
  merges them (a k-way merge, `limit` per type), at the same cost at any size of the log. The time range,
  if any, is checked within those entries (the event time is in the index).
- Other fields are checked on each row the walked range yields (one lookup by seq, about LOOKUP_COST index
  entries' worth). With the matches spread alike through the log, a page then costs `limit` x (range /
  matches) lookups and a count at most (COUNT_CAP + 1) x (range / matches): the narrowest range, the one
  with the most matches per entry, is the one to walk. Ranges are counted up to SIZE_PROBE entries (one
  covering index range each); past it they are taken in FIELDS order, most selective first as logs usually
  are. Where the fields' ranges are of a size (reading them all costs less than looking up the narrowest
  one's rows), they are instead intersected as they are read side by side in seq order, a type at a time
  (SQLite merges two ordered selects of an INTERSECT as it reads them, stopping where the LIMIT does).
  Two fields whose ranges are both wide but whose matches are few (or none) still cost the ranges read in
  full: only an index on the pair would make that flat.
- The time range is the one range not in log order: occurred_at is the sender's clock, seq the order the
  collector logged in, and an event replayed from the bus after an outage, or sent late, is logged long
  after it occurred, so no seq bound can be derived from a time. A page read from the time range reads all
  of it (looking each row up when anything else is asked) and sorts it by seq: that is done only when it
  costs less than PAGE_READ_MAX and less than reading the narrowest other range whole. A time range alone
  is read whole when it holds fewer than SIZE_PROBE entries (its index answers alone); a wider one is first
  looked for in the log itself (the next LOG_WALK records, enough where the matches are spread through the
  log, as for a window of its history), and read whole only when that finds too few (as where they are
  bunched, as for the last days of a long log). A count keeps no order: it reads the cheapest range whole.
"""

from dataclasses import dataclass

from contracts.audit_queries import COUNT_CAP, AuditFilter

FIELDS = ("release_id", "service", "team", "actor", "environment")  # ties go to the first: usually the narrowest
TYPES = "type"  # the types' own ranges (type, seq, occurred_at), walked when no field is given
TIME = "occurred_at"  # the time range (occurred_at, seq), not in log order
LOG = "seq"  # every record in log order, walked when no field and no type is given

SIZE_PROBE = COUNT_CAP + 1  # a range is counted up to this many entries to compare it with the others
# One row looked up by seq costs about what reading 30 entries of a covering index does (SQLite, 10^6 records:
# 2.5 µs a lookup, 0.05-0.1 µs an entry).
LOOKUP_COST = 30
PAGE_READ_MAX = 60_000  # index entries' worth (2,000 lookups) a page may spend reading the time range whole
LOG_WALK = 2_000  # records a page of a wide time range alone walks in log order before reading the range


@dataclass(frozen=True)
class Shape:
    """What a filter asks, its values aside: all a plan depends on (and all a statement's SQL does)."""

    fields: tuple[str, ...]  # the fields given, in FIELDS order
    types: bool  # whether types are given
    since: bool
    until: bool

    @property
    def timed(self) -> bool:
        return self.since or self.until


def shape_of(wanted: AuditFilter) -> Shape:
    return Shape(tuple(f for f in FIELDS if getattr(wanted, f) is not None), bool(wanted.types),
                 wanted.since is not None, wanted.until is not None)


def walkable(asked: Shape) -> list[str]:
    """The ranges in log order the filter could be read from, in the order ties are settled."""
    return list(asked.fields) or ([TYPES] if asked.types else [])


def to_size(asked: Shape) -> list[str]:
    """The ranges whose sizes the choice needs (none when there is one way to read the filter)."""
    ranges = walkable(asked) + ([TIME] if asked.timed else [])
    return ranges if len(ranges) > 1 or ranges == [TIME] else []


def checked(asked: Shape, walk: str) -> tuple[list[str], bool, bool]:
    """What a walk checks on each entry's row, looked up by seq: (fields, the types, the time)."""
    fields = [f for f in asked.fields if f != walk]
    return fields, asked.types and walk in (TIME, LOG), asked.timed and walk == LOG


def cost(asked: Shape, walk: str, sizes: dict[str, int]) -> int:
    """Reading the whole range, in index entries' worth."""
    fields, types, _ = checked(asked, walk)
    return sizes.get(walk, 0) * (1 + (LOOKUP_COST if fields or types else 0))


def page_walk(asked: Shape, sizes: dict[str, int]) -> str:
    """The range a page of matches is read from, given `to_size`'s sizes (each at most SIZE_PROBE)."""
    ranges = walkable(asked)
    if not ranges:
        return TIME if asked.timed and sizes[TIME] < SIZE_PROBE else LOG
    narrowest = min(ranges, key=lambda name: cost(asked, name, sizes))  # min keeps the first of equals
    if asked.timed and cost(asked, TIME, sizes) <= min(PAGE_READ_MAX, cost(asked, narrowest, sizes) - 1):
        return TIME
    return narrowest


def merged(asked: Shape, walk: str, sizes: dict[str, int]) -> bool:
    """Whether to intersect every field's range, a type at a time, as they are read side by side in seq order
    (SQLite merges two ordered selects so, stopping where the page or the count does), rather than walk `walk`'s
    and look each row up: when reading all of them costs less than looking up the walked one's rows."""
    fields = asked.fields
    return walk in fields and len(fields) > 1 and sum(sizes.get(f, 0) for f in fields) < cost(asked, walk, sizes)


def count_walk(asked: Shape, sizes: dict[str, int]) -> str:
    """The range matches are counted from: the cheapest to read whole, in no particular order."""
    ranges = walkable(asked) + ([TIME] if asked.timed else [])
    return min(ranges, key=lambda name: cost(asked, name, sizes)) if ranges else LOG
