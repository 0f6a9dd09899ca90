"""The read models follow the log (real nats-server, the collector in this process, its SQLite file): a
projection that fails never keeps an event out of the audit trail, it catches up once the fault is gone,
and a query always sees every event the log held when it was asked, whatever the projector was doing."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import QueryReleases
from contracts.queries import ReleasesReply
from libs.client import publish_event, send_command
from libs.settings import Settings
from services.metrics_collector import projector
from services.metrics_collector.app import build
from services.metrics_collector.intake import Intake
from services.metrics_collector.projections import Projections
from services.metrics_collector.projector import CURSOR
from tests.component.test_metrics_collector import logged
from tests.component.test_metrics_collector_projections import artifact, shipped  # noqa: F401 - a fixture
from tests.conftest import running
from tests.support.poll import eventually


def cursor(settings: Settings) -> int:
    with sqlite3.connect(settings.data_dir / "metrics-collector.db") as db:
        found = db.execute("SELECT seq FROM projection_cursor WHERE name = ?", (CURSOR,)).fetchone()
    db.close()
    return int(found[0]) if found else 0


async def status(settings: Settings) -> tuple[str, ReleasesReply]:
    answer = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases())
    assert answer.ok, answer.message
    return answer.message, ReleasesReply.model_validate(answer.data)


async def test_a_failing_projection_keeps_no_event_out_of_the_log_and_catches_up_once_fixed(
    settings: Settings, artifact: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setattr(projector, "RETRY_S", (0.05, 0.2))
    broken = {"on": True}
    refresh = Projections.refresh

    async def failing(self: Projections, *args: object, **kwargs: object) -> None:
        if broken["on"]:
            raise RuntimeError("a projection bug meeting an event it did not expect")
        await refresh(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Projections, "refresh", failing)
    events = shipped(artifact, "4.0.0", datetime.now(UTC) - timedelta(hours=1), fail=False)
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        audit = await logged(settings, len(events))
        assert "intact" in audit.message, audit.message
        message, reply = await status(settings)  # answered as soon as projecting fails, not after QUERY_WAIT_S
        assert reply.total == 0 and f"the last {len(events)} events logged" in message, message
        assert "projecting them fails (RuntimeError: a projection bug" in message, message
        assert cursor(settings) == 0, "nothing half-projected: a failed chunk rolls back whole"

        broken["on"] = False
        await eventually(lambda: cursor(settings) == len(events), 10, "the projector catching up")
        message, reply = await status(settings)
    assert [(r.version, r.state) for r in reply.releases] == [("4.0.0", "succeeded")]
    assert "not counted yet" not in message, message


async def test_a_query_sees_every_event_logged_before_it_was_asked_even_while_the_projector_gives_way(
    settings: Settings, artifact: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    # As in a flood that never ends: the intake always has a backlog and the projector would wait a minute.
    monkeypatch.setattr(projector, "MAX_LAG_S", 60.0)
    monkeypatch.setattr(Intake, "backlog", property(lambda _self: True, lambda _self, _value: None), raising=False)
    events = shipped(artifact, "5.0.0", datetime.now(UTC) - timedelta(hours=1), fail=True)
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        assert cursor(settings) < len(events), "the projector gave way to the intake"
        message, reply = await status(settings)
    assert [(r.version, r.state) for r in reply.releases] == [("5.0.0", "rolled back")], message
    assert cursor(settings) == len(events)
