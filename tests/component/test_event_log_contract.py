"""One contract for the audit log, run against both stores it supports: SQLite (the default) and
PostgreSQL (by URL, on 127.0.0.1:5432; skipped with the reason where no server answers).

A real metrics-collector on a real nats-server appends what is published; the test then reads and
tampers with the store itself, as an attacker with database access would.
"""

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import subjects
from contracts.commands import CommandResult, QueryDora, QueryReleases, VerifyAudit
from contracts.events import DeploymentSucceeded, ReleaseRequested
from libs.client import publish_event, publish_raw, send_command
from libs.runtime import service_database
from libs.settings import Settings
from services.metrics_collector import domain
from services.metrics_collector.app import build
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.postgres import own_database
from tests.support.releases import release_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def log_settings(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        yield settings
        return
    async with own_database() as url:
        yield settings.model_copy(update={"database_url": url})


async def audit(settings: Settings) -> CommandResult:
    return await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit(), timeout=30)


async def logged(settings: Settings, count: int) -> CommandResult:
    async def complete() -> CommandResult | None:
        report = await audit(settings)
        return report if report.data["records"] >= count else None

    return await eventually(complete, 20, f"an audit log of {count} records")


def succeeded(request: ReleaseRequested, at: datetime) -> DeploymentSucceeded:
    return DeploymentSucceeded.caused_by(request, "deployer", occurred_at=at, version=request.version,
                                         previous_version="0.9.0")


async def test_each_event_is_logged_once_and_reports_read_only_what_counts(log_settings: Settings, tmp_path: Path) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"contract")
    now = datetime.now(UTC)
    requests = [release_for(artifact, f"1.0.{n}", occurred_at=now - timedelta(minutes=30 - n)) for n in range(3)]
    successes = [succeeded(r, now - timedelta(minutes=10 - n)) for n, r in enumerate(requests)]
    unknown = {"event_id": "contract-unknown", "type": "ReleaseTeleported", "release_id": requests[0].release_id,
               "occurred_at": now.isoformat()}
    future = succeeded(requests[1], now + timedelta(days=3))
    async with running(build(log_settings)):
        for event in [*requests, *successes]:
            await publish_event(log_settings.nats_url, event)
        # The same events again under new message ids: past JetStream's de-duplication, caught by the log's.
        for event in successes:
            await publish_raw(log_settings.nats_url, event.subject, event.model_dump_json().encode(),
                              {"Nats-Msg-Id": f"again-{event.event_id}"})
        await publish_raw(log_settings.nats_url, "slipway.evt.release.teleported", json.dumps(unknown).encode(),
                          {"Nats-Msg-Id": "contract-unknown"})
        await publish_event(log_settings.nats_url, future)
        report = await logged(log_settings, 8)
        first = await send_command(log_settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=2))
        beyond = await send_command(log_settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=2, page=5))
        dora = await send_command(log_settings.nats_url, subjects.CMD_DORA, QueryDora(days=1))
        # Asked again once more has surely arrived: the duplicates did not add records.
        await publish_event(log_settings.nats_url, release_for(artifact, "2.0.0"))
        after = await logged(log_settings, 9)
    assert report.ok and report.data["records"] == 8 and report.data["flagged_count"] == 2, report.message
    assert after.ok and after.data["records"] == 9
    assert first.ok and first.data["total"] == 3 and len(first.data["releases"]) == 2
    assert beyond.ok and beyond.data["total"] == 3 and beyond.data["releases"] == []
    # Three deployments; neither the unknown event nor the one dated three days ahead counts.
    assert dora.ok and dora.data["deployments"] == 3, dora.data


Tamper = Callable[[AsyncConnection, list[int]], Awaitable[int]]  # returns the seq verification must name


async def edit(conn: AsyncConnection, seqs: list[int]) -> int:
    victim = seqs[2]
    await conn.execute(text("UPDATE event_log SET payload = replace(payload, '1.0.', '6.6.') WHERE seq = :s"),
                       {"s": victim})
    return victim


async def delete(conn: AsyncConnection, seqs: list[int]) -> int:
    await conn.execute(text("DELETE FROM event_log WHERE seq = :s"), {"s": seqs[2]})
    return seqs[3]  # the first record whose link now points at nothing


async def reorder(conn: AsyncConnection, seqs: list[int]) -> int:
    a, b = seqs[2], seqs[3]
    for old, new in ((a, -1), (b, a), (-1, b)):
        await conn.execute(text("UPDATE event_log SET seq = :new WHERE seq = :old"), {"old": old, "new": new})
    return a


async def insert(conn: AsyncConnection, seqs: list[int]) -> int:
    after = seqs[2]
    # Make room after `after`, then put a forged record there (its own hash is right; its link is not).
    shift = 10_000
    await conn.execute(text("UPDATE event_log SET seq = seq + :n WHERE seq > :a"), {"n": shift, "a": after})
    await conn.execute(text("UPDATE event_log SET seq = seq - :n WHERE seq > :n"), {"n": shift - 1})
    forged = json.dumps({"event_id": "forged", "type": "DeploymentSucceeded"})
    prev = "f" * 64
    await conn.execute(text(
        "INSERT INTO event_log (seq, event_id, type, subject, occurred_at, recorded_at, payload, prev_hash, hash) "
        "VALUES (:seq, 'forged', 'DeploymentSucceeded', 'slipway.evt.deploy.succeeded', :at, :at, :payload, :prev, :hash)"),
        {"seq": after + 1, "at": datetime.now(UTC).replace(tzinfo=None), "payload": forged, "prev": prev,
         "hash": domain.chain_hash(prev, forged)})
    return after + 1


@pytest.mark.parametrize("tamper", [edit, delete, reorder, insert], ids=lambda t: t.__name__)
async def test_tampering_is_found_and_located(log_settings: Settings, tmp_path: Path, tamper: Tamper) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"contract")
    requests = [release_for(artifact, f"1.0.{n}") for n in range(6)]
    async with running(build(log_settings)):
        for event in requests:
            await publish_event(log_settings.nats_url, event)
        assert (await logged(log_settings, len(requests))).ok
        store = service_database("metrics-collector", log_settings)  # the collector's file, or its schema
        try:
            async with store.engine.begin() as conn:
                seqs = list((await conn.scalars(text("SELECT seq FROM event_log ORDER BY seq"))).all())
                where = await tamper(conn, seqs)
        finally:
            await store.dispose()
        report = await audit(log_settings)
    assert not report.ok, report.message
    assert report.data["first_bad_seq"] == where, report.message
    assert f"record {where}" in report.message
