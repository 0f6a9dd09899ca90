"""The health-watcher's own data: analyses in progress, so a restart resumes them."""

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import StepStarted

metadata = MetaData()

analyses = Table(
    "analyses",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("step_index", Integer, primary_key=True),
    Column("step", Text, nullable=False),
    Column("done", Boolean, nullable=False, default=False),
)


async def add(session: AsyncSession, step: StepStarted) -> bool:
    """Record the analysis of a step; False when that release's step is already recorded (a duplicate)."""
    known = select(analyses.c.release_id).where(
        analyses.c.release_id == step.release_id, analyses.c.step_index == step.step_index
    )
    if (await session.execute(known)).first() is not None:
        return False
    await session.execute(
        analyses.insert().values(release_id=step.release_id, step_index=step.step_index, step=step.model_dump_json(), done=False)
    )
    return True


async def pending(session: AsyncSession) -> list[StepStarted]:
    rows = (await session.execute(select(analyses.c.step).where(analyses.c.done.is_(False)))).scalars().all()
    return [StepStarted.model_validate_json(row) for row in rows]


async def finish(session: AsyncSession, step: StepStarted) -> bool:
    """True for the one caller that closes the analysis; a second close is a no-op."""
    result = await session.execute(
        update(analyses)
        .where(analyses.c.release_id == step.release_id, analyses.c.step_index == step.step_index, analyses.c.done.is_(False))
        .values(done=True)
    )
    return result.rowcount == 1
