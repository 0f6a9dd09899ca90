"""The collector's signed checkpoints against a real nats-server and a real SQLite file tampered with by hand:
`audit verify` starts from the newest checkpoint that holds and still finds every kind of tampering."""

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import subjects
from contracts.audit_queries import CheckpointAudit, ShowAudit
from contracts.commands import CommandResult, VerifyAudit
from contracts.identity import Kind
from libs.client import publish_event, send_command
from libs.identities import IdentityStore, seed_path
from libs.settings import Settings
from services.metrics_collector.app import build
from services.metrics_collector.domain import chain_hash
from tests.component.test_audit_show import slipway
from tests.support.postgres import own_database
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.releases import release_for

EVERY = 4
EVENTS = 10


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    """The collector with a key of its own in the registry, as `slipway up` runs it, signing every EVERY records."""
    assert settings.identity_registry is not None
    store = IdentityStore(settings.identity_registry.parent)
    store.create(Kind.SERVICE, "metrics-collector")
    return settings.model_copy(update={"credentials": seed_path(store.directory, Kind.SERVICE, "metrics-collector"),
                                       "audit_checkpoint_every": EVERY})


@pytest.fixture
async def logged(keyed: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """A running collector whose log holds EVENTS records (checkpoints signed at 4 and 8)."""
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"app")
    async with running(build(keyed)):
        for n in range(EVENTS):
            await publish_event(keyed.nats_url, release_for(artifact, f"1.{n}.0"))

        async def complete() -> CommandResult | None:
            audit = await verify(keyed)
            return audit if audit.data["records"] >= EVENTS else None

        await eventually(complete, 10, f"{EVENTS} records logged")
        yield keyed


async def verify(settings: Settings, **options: object) -> CommandResult:
    return await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit(**options), timeout=30)


def database(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.data_dir / "metrics-collector.db")


def rewrite(settings: Settings, seq: int, rehash: bool) -> None:
    """Edit record `seq`'s payload; with `rehash`, recompute its hash and every later one as a careful forger would."""
    with database(settings) as db:
        db.execute("UPDATE event_log SET payload = replace(payload, 'shop', 'shoq') WHERE seq = ?", (seq,))
        if rehash:
            rows = db.execute("SELECT seq, payload, prev_hash FROM event_log WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()
            prev = rows[0][2]
            for row_seq, payload, _ in rows:
                digest = chain_hash(prev, payload)
                db.execute("UPDATE event_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row_seq))
                prev = digest
    db.close()


async def test_checkpoints_are_signed_every_n_records_and_on_demand_and_verify_starts_from_the_newest(
    logged: Settings,
) -> None:
    audit = await verify(logged)
    assert audit.ok, audit.message
    assert (audit.data["mode"], audit.data["checkpoint_seq"], audit.data["rehashed"], audit.data["checkpoints"]) == (
        "checkpoint", 8, 2, 2)
    assert "from signed checkpoint 8, 2 records after it re-hashed" in audit.message

    made = await send_command(logged.nats_url, subjects.CMD_AUDIT_CHECKPOINT, CheckpointAudit())
    assert made.ok and made.data["checkpoint"]["seq"] == EVENTS and made.data["checkpoint"]["records"] == EVENTS
    assert made.data["checkpoint"]["signer"] == "service:metrics-collector"
    again = await verify(logged)
    assert (again.data["checkpoint_seq"], again.data["rehashed"], again.data["checkpoints"]) == (EVENTS, 0, 3)

    full = await verify(logged, full=True)
    assert full.ok and (full.data["mode"], full.data["rehashed"]) == ("full", EVENTS)
    ranged = await verify(logged, from_seq=3, to_seq=6)
    assert ranged.ok and (ranged.data["mode"], ranged.data["checked_from"], ranged.data["checked_to"],
                          ranged.data["rehashed"], ranged.data["checkpoints"]) == ("range", 3, 6, 4, 1)


async def test_an_edit_after_the_newest_checkpoint_is_found_at_its_record(logged: Settings, tmp_path: Path) -> None:
    code, out, _ = await slipway("--nats-url", logged.nats_url, "audit", "verify", data_dir=tmp_path / "cli")
    assert code == 0 and "verified from signed checkpoint 8: re-hashed 2 records (9..10)" in out, out
    rewrite(logged, 9, rehash=False)
    audit = await verify(logged)
    assert not audit.ok and audit.data["first_bad_seq"] == 9 and audit.data["checkpoint_seq"] == 8
    assert "BROKEN at record 9" in audit.message and "payload or hash was edited" in audit.message
    code, _, err = await slipway("--nats-url", logged.nats_url, "audit", "verify", "--from", "2", "--to", "9",
                                 data_dir=tmp_path / "cli")
    assert code == 1 and "broken at seq 9: record 9 does not match its hash" in err, err
    code, _, err = await slipway("--nats-url", logged.nats_url, "audit", "verify", "--full", "--from", "2",
                                 data_dir=tmp_path / "cli")
    assert code == 2 and "either full or a range" in err, err


async def test_a_rewrite_before_a_checkpoint_breaks_it_and_a_full_verify_finds_an_edit_it_cannot(
    logged: Settings,
) -> None:
    rewrite(logged, 6, rehash=True)  # the chain still links: only the signed checkpoint at 8 knows better
    audit = await verify(logged)
    assert not audit.ok and audit.data["first_bad_seq"] is None
    assert [b["seq"] for b in audit.data["bad_checkpoints"]] == [8]
    assert "record 8 no longer has the hash checkpoint 8 signed" in audit.message
    assert audit.data["checkpoint_seq"] == 4  # the newest one that still holds, re-hashed from there

    rewrite(logged, 2, rehash=False)  # before every checkpoint, hashes left alone: only re-hashing sees it
    full = await verify(logged, full=True)
    assert not full.ok and full.data["first_bad_seq"] == 2 and "record 2 does not match its hash" in full.message


async def test_a_deleted_record_breaks_the_count_of_every_checkpoint_after_it(logged: Settings) -> None:
    with database(logged) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM audit_index WHERE seq = 3")
        db.execute("DELETE FROM event_log WHERE seq = 3")
    db.close()
    audit = await verify(logged)
    assert not audit.ok and audit.data["mode"] == "full"  # no checkpoint holds: everything is re-hashed
    assert {b["seq"] for b in audit.data["bad_checkpoints"]} == {4, 8}
    assert "1 deleted (the first missing record is 3)" in audit.data["bad_checkpoints"][0]["reason"]
    assert audit.data["first_bad_seq"] == 4 and "1 record(s) before it were deleted" in audit.message


async def test_a_forged_or_edited_checkpoint_is_refused_and_verify_starts_from_one_that_holds(
    logged: Settings,
) -> None:
    with database(logged) as db:
        signature = db.execute("SELECT signature FROM audit_checkpoints WHERE seq = 8").fetchone()[0]
        hash_at_10 = db.execute("SELECT hash FROM event_log WHERE seq = 10").fetchone()[0]
        # A checkpoint made up at the head with a signature copied from another one...
        db.execute("INSERT INTO audit_checkpoints SELECT 10, ?, 10, created_at, signer, signature "
                   "FROM audit_checkpoints WHERE seq = 8", (hash_at_10,))
        # ...and an edit to what a real one counted.
        db.execute("UPDATE audit_checkpoints SET records = 3 WHERE seq = 4")
    db.close()
    audit = await verify(logged)
    assert not audit.ok and signature
    bad = {b["seq"]: b["reason"] for b in audit.data["bad_checkpoints"]}
    assert set(bad) == {10, 4}
    assert all("forged or edited: the signature does not verify with service:metrics-collector's registered key" in r
               for r in bad.values())
    assert (audit.data["checkpoint_seq"], audit.data["rehashed"], audit.data["first_bad_seq"]) == (8, 2, None)


async def test_without_a_key_the_collector_signs_nothing_and_says_why(settings: Settings) -> None:
    async with running(build(settings)):
        made = await send_command(settings.nats_url, subjects.CMD_AUDIT_CHECKPOINT, CheckpointAudit())
        audit = await verify(settings)
    assert not made.ok and "cannot sign checkpoints" in made.message
    assert audit.ok and audit.data["mode"] == "full"


@pytest.mark.postgres
async def test_checkpoints_filters_and_tampering_work_the_same_on_postgresql(keyed: Settings, tmp_path: Path) -> None:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"app")
    async with own_database() as url:
        on_postgres = keyed.model_copy(update={"database_url": url})
        async with running(build(on_postgres)):
            for n in range(EVENTS):
                await publish_event(keyed.nats_url, release_for(artifact, f"1.{n}.0", service=("shop", "cart")[n % 2]))

            async def complete() -> CommandResult | None:
                audit = await verify(keyed)
                return audit if audit.data["records"] >= EVENTS else None

            audit = await eventually(complete, 15, f"{EVENTS} records logged")
            assert audit.ok and (audit.data["checkpoint_seq"], audit.data["rehashed"]) == (8, 2), audit.message
            carts = await send_command(keyed.nats_url, subjects.CMD_AUDIT_SHOW, ShowAudit(service="cart", limit=3))
            assert carts.ok and carts.data["total"] == 5 and len(carts.data["events"]) == 3
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                schema = "slipway_metrics_collector"
                await conn.execute(text(f"UPDATE {schema}.event_log SET payload = replace(payload, 'shop', 'shoq') "
                                        "WHERE seq = 9"))
                await conn.execute(text(f"UPDATE {schema}.audit_checkpoints SET records = 3 WHERE seq = 4"))
            await engine.dispose()
            tampered = await verify(keyed)
        assert not tampered.ok and tampered.data["first_bad_seq"] == 9
        assert [b["seq"] for b in tampered.data["bad_checkpoints"]] == [4]


async def test_a_count_of_matches_stops_past_its_cap(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from contracts.audit_queries import AuditFilter
    from libs.store import Database
    from services.metrics_collector.audit_store import AuditIndex
    from services.metrics_collector.store import event_log, metadata

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}")
    await db.create_all(metadata)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as tx:
            await tx.session.execute(event_log.insert(), [
                {"seq": n, "event_id": f"e{n}", "type": "StepVerdict", "subject": "s", "occurred_at": now,
                 "recorded_at": now, "payload": "{}", "prev_hash": f"{n:064d}", "hash": f"{n + 1:064d}"}
                for n in range(1, 11)])
            await AuditIndex(tx.session).add([
                {"seq": n, "type": "StepVerdict", "release_id": None, "service": ("shop", "cart")[n % 2],
                 "environment": "prod", "team": None, "actor": None, "occurred_at": now} for n in range(1, 11)])
        async with db.sessions() as session:
            index = AuditIndex(session)
            counts = [await index.count(AuditFilter(service="shop"), cap) for cap in (3, 5, 100)]
            assert counts == [4, 5, 5]  # past the cap: cap + 1, so "more than cap" can be told
            assert await index.count(AuditFilter(types=["StepVerdict"]), 100) == 10
    finally:
        await db.dispose()
