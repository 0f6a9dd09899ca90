"""slipway's own change records, in the gatekeeper's database (its own MetaData, beside store.py's tables)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import Database, UtcDateTime
from services.gatekeeper.changes import ChangeRecord, ChangeState

SOURCE = "slipway"
NUMBER_DIGITS = 7  # CHG0000001, the shape ServiceNow gives its numbers

metadata = MetaData()

change_records = Table(
    "change_records",
    metadata,
    # The number comes from the row's sequence, so replicas sharing a PostgreSQL database never hand out one twice.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("number", String(40), unique=True, nullable=True),
    Column("summary", String(500), nullable=False),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),
    Column("risk", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", UtcDateTime(), nullable=True),
    Column("approval_comment", String(500), nullable=True),
)


@dataclass(frozen=True)
class NewChange:
    summary: str
    starts_at: datetime
    ends_at: datetime
    risk: str
    requested_by: str
    created_at: datetime


async def add(session: AsyncSession, change: NewChange) -> str:
    """Store a new change record waiting for approval; its number."""
    result = await session.execute(change_records.insert().values(
        **change.__dict__, state=ChangeState.AUTHORIZE.value,
    ))
    number = f"CHG{result.inserted_primary_key[0]:0{NUMBER_DIGITS}d}"
    await session.execute(update(change_records).where(change_records.c.seq == result.inserted_primary_key[0])
                          .values(number=number))
    return number


async def approve(session: AsyncSession, number: str, approver: str, comment: str, at: datetime) -> bool:
    """Mark `number` approved; False when it was approved in the meantime (a concurrent approval)."""
    result = await session.execute(
        update(change_records)
        .where(change_records.c.number == number, change_records.c.approved_by.is_(None))
        .values(state=ChangeState.SCHEDULED.value, approved_by=approver, approved_at=at, approval_comment=comment)
    )
    return result.rowcount == 1


async def load(session: AsyncSession, number: str) -> ChangeRecord | None:
    row = (await session.execute(select(change_records).where(change_records.c.number == number))).mappings().first()
    if row is None:
        return None
    return ChangeRecord(
        number=row["number"], source=SOURCE, state=ChangeState(row["state"]),
        approval="approved" if row["approved_by"] else "requested", starts_at=row["starts_at"],
        ends_at=row["ends_at"], type="normal", risk=row["risk"], summary=row["summary"],
        requested_by=row["requested_by"], approved_by=row["approved_by"],
    )


class SlipwayChangeRecords:
    """The ChangeRecords port over slipway's own registry."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, number: str) -> ChangeRecord | None:
        async with self.db.transaction() as tx:
            return await load(tx.session, number)
