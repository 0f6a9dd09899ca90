"""A release's events in the order things happened, and the time between them (pure)."""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # sorts an event without a readable time first


def event_time(event: Event) -> datetime | None:
    """`occurred_at` as an aware datetime (UTC when it names no zone); None when it is not a time."""
    try:
        moment = datetime.fromisoformat(str(event.get("occurred_at")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def in_time_order(events: Iterable[Event]) -> list[Event]:
    # Stable: events with the same time keep the log's order.
    return sorted(events, key=lambda e: event_time(e) or EPOCH)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None
