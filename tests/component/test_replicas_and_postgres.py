"""Replicas share a durable consumer; a service runs the same on PostgreSQL as on SQLite."""

import uuid
from pathlib import Path

import pytest

from libs.client import publish_event
from libs.settings import Settings
from services.artifact_verifier.app import build as build_verifier
from services.gatekeeper.app import build as build_gatekeeper
from tests.component.test_store_and_outbox import POSTGRES_URL, postgres_reachable
from tests.conftest import running
from tests.support.people import People
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


async def test_two_replicas_share_the_work_and_verify_each_release_once(
    settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"shared")
    requests = [release_for(artifact, f"1.0.{n}") for n in range(20)]
    expected = sorted(r.release_id for r in requests)

    def verified() -> list[dict]:
        # A relay may publish a row twice (same event id, dropped by JetStream, seen here twice);
        # processing a request twice would instead mint a second event id for the same release.
        unique = {b["event_id"]: b for b in watcher.matching(lambda _s, b: b.get("type") == "ArtifactVerified")}
        return list(unique.values())

    async with running(build_verifier(settings)), running(build_verifier(settings)):
        for request in requests:
            await publish_event(settings.nats_url, request)
        # Two replicas work in parallel, so results arrive in any order.
        await watcher.wait_until(lambda: sorted({b["release_id"] for b in verified()}) == expected)
    assert sorted(b["release_id"] for b in verified()) == expected


@pytest.mark.postgres
async def test_gatekeeper_decides_with_its_state_in_postgresql(
    settings: Settings, watcher: EventWatcher, tmp_path: Path, people: People
) -> None:
    if not postgres_reachable():
        pytest.skip("no PostgreSQL server reachable on 127.0.0.1:5432")
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from contracts import subjects
    from contracts.commands import FreezeEnvironment
    from contracts.events import ArtifactVerified
    from contracts.release import ReleaseSpec

    environment = f"pg-{uuid.uuid4().hex[:8]}"
    # A database of its own, made and dropped here: what an earlier run left in the shared one cannot matter.
    database = f"slipway_test_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"
    on_postgres = settings.model_copy(update={"database_url": url})
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"pg")
    request = release_for(artifact, environment=environment)
    verified = ArtifactVerified.caused_by(
        request, "artifact-verifier", release=ReleaseSpec.model_validate(request.model_dump()), size_bytes=2
    )
    try:
        async with running(build_gatekeeper(on_postgres)):
            now = datetime.now(UTC)
            reply = await people.send("alice", subjects.CMD_FREEZE, FreezeEnvironment(
                environment=environment, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1),
                reason="postgres test"))
            assert reply.ok, reply.message
            await publish_event(settings.nats_url, verified)
            queued = await watcher.wait_type("ReleaseWaiting", release_id=request.release_id)
        # The committed policy queues a release behind a freeze; the workflow's state is in PostgreSQL too.
        assert queued["waiting_for"] == "queued-for-window" and "postgres test" in queued["summary"]
    finally:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM slipway_gatekeeper.freezes WHERE environment = :e"), {"e": environment}
            )
            waited = await conn.scalar(
                text("SELECT count(*) FROM slipway_gatekeeper.workflows WHERE environment = :e"), {"e": environment})
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()
    assert (count, waited) == (1, 1)
