"""Recompute the collector's projections (release status, DORA, the audit index) from its event log, in one
transaction.

After a change to how they are computed (a log written before they existed gets them when the
collector starts).
A collector running meanwhile waits for the transaction (SQLite has one writer; PostgreSQL locks
the rows); its projector then carries on from the rebuilt cursor (the log's head at the rebuild).
"""

from sqlalchemy import delete, text

from libs.runtime import service_database
from services.metrics_collector.audit_handlers import index_backlog
from services.metrics_collector.audit_store import audit_index
from libs.settings import Settings
from services.metrics_collector.projections import Projections
from services.metrics_collector.projector import move_cursor
from services.metrics_collector.store import NAME, EventLog, metadata

REBUILD_CACHE_KIB = 256 * 1024


async def rebuild_projections(settings: Settings) -> int:
    """Rebuild from the log in the settings' database; returns how many releases the projections hold."""
    db = service_database(NAME, settings)
    try:
        await db.create_all(metadata)  # a log from before the projections gets their tables first
        async with db.transaction() as tx:
            if db.is_sqlite:
                # A rebuild rewrites every index of every projection in one transaction: with SQLite's default
                # 2 MiB page cache, at a million records most of its time went to re-reading evicted pages.
                await tx.session.execute(text(f"PRAGMA cache_size=-{REBUILD_CACHE_KIB}"))
            await tx.session.execute(delete(audit_index))
            head = (await EventLog(tx.session).head())[0]
            await index_backlog(tx.session, upto=head)
            releases = await Projections(tx.session).rebuild()
            await move_cursor(tx.session, head)  # a collector running meanwhile projects what it appends after
            return releases
    finally:
        await db.dispose()
