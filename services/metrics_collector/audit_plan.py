"""Which index range `audit show` walks for a filter, chosen from how many entries each range holds: pure,
no database (audit_search runs the plan).

audit_index has, per logged record, an index (field, type, seq) for each of FIELDS, one on (type, seq) and
one on (occurred_at, seq). A page is the first `limit` matches after a seq, in log order (seq); a count
stops at COUNT_CAP + 1 matches. Neither SQLite (no statistics) nor PostgreSQL knows that a page only needs
the first matches in seq order, or which of two filters is the narrower, so the choice is made here:

- A field's range (or, with no field, the types') is read a type at a time: within one field value and one
  type the index is in seq order, so a page takes the first `limit` entries of each type's range and
  merges them (a k-way merge, `limit` per type), at the same cost at any size of the log.
- The filters the walked range does not hold are checked on each row it yields (one lookup by seq checks
  them all). With the matches spread alike through the log, a page then costs `limit` x (range / matches)
  lookups and a count at most (COUNT_CAP + 1) x (range / matches): the narrowest range, the one with the
  most matches per entry, is the one to walk. Ranges are counted up to SIZE_PROBE entries (one covering
  index range each); past it they are taken in FIELDS order, most selective first as logs usually are.
  Two filters whose ranges are both wide but whose matches are few (or none) cost the narrower range
  walked in full: only an index on the pair would make that flat.
- The time range is the one range not in log order: occurred_at is the sender's clock, seq the order the
  collector logged in, and an event replayed from the bus after an outage, or sent late, is logged long
  after it occurred. So a page read from the time range reads all of it and sorts it by seq: that is done
  only when it holds at most TIME_READ_MAX entries and fewer than any other range, or when it is the only
  filter (its index then answers alone, without lookups). Otherwise the time is checked per row of the
  walked range, and a time range alone that is wide is found by walking the log itself (LOG_WALK records
  at most, enough where the matches are spread, as in a log queried over a window of its history) before
  falling back to reading the time range (where they are bunched, as in a log queried for its last days).
  A count has no order to keep: it counts from whichever range is the smallest, the time range included.
"""

from contracts.audit_queries import COUNT_CAP, AuditFilter

FIELDS = ("release_id", "service", "team", "actor", "environment")  # ties go to the first: usually the narrowest
TYPES = "type"  # the types' own ranges (type, seq), walked when no field is given
TIME = "occurred_at"  # the time range (occurred_at, seq), not in log order
LOG = "seq"  # every record in log order, walked when no field and no type is given

SIZE_PROBE = COUNT_CAP + 1  # a range is counted up to this many entries to compare it with the others
TIME_READ_MAX = 2_000  # entries of the time range a page reads whole, looking each one's row up
LOG_WALK = 2_000  # records a page of a wide time range alone walks in log order before reading the range


def timed(wanted: AuditFilter) -> bool:
    return wanted.since is not None or wanted.until is not None


def walkable(wanted: AuditFilter) -> list[str]:
    """The ranges in log order the filter could be read from, in the order ties are settled."""
    fields = [f for f in FIELDS if getattr(wanted, f) is not None]
    return fields or ([TYPES] if wanted.types else [])


def to_size(wanted: AuditFilter) -> list[str]:
    """The ranges whose sizes the choice needs (none when there is one way to read the filter)."""
    ranges = walkable(wanted) + ([TIME] if timed(wanted) else [])
    return ranges if len(ranges) > 1 or ranges == [TIME] else []


def page_walk(wanted: AuditFilter, sizes: dict[str, int]) -> str:
    """The range a page of matches is read from, given `to_size`'s sizes (each at most SIZE_PROBE)."""
    ranges = walkable(wanted)
    if not ranges:
        return TIME if timed(wanted) and sizes[TIME] < SIZE_PROBE else LOG
    narrowest = min(ranges, key=lambda name: sizes.get(name, 0))  # min keeps the first of equals
    if timed(wanted) and sizes[TIME] <= TIME_READ_MAX and sizes[TIME] < sizes[narrowest]:
        return TIME
    return narrowest


def count_walk(wanted: AuditFilter, sizes: dict[str, int]) -> str:
    """The range matches are counted from: the smallest, in no particular order."""
    ranges = walkable(wanted) + ([TIME] if timed(wanted) else [])
    return min(ranges, key=lambda name: sizes.get(name, 0)) if ranges else LOG


def checked(wanted: AuditFilter, walk: str) -> tuple[list[str], bool, bool]:
    """What is checked on each row a walk yields: (fields, the types, the time)."""
    fields = [f for f in FIELDS if getattr(wanted, f) is not None and f != walk]
    types = bool(wanted.types) and walk not in FIELDS and walk != TYPES
    return fields, types, timed(wanted) and walk != TIME
