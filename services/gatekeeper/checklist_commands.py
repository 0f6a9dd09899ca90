"""`slipway checklist report`: which readiness checklist items, left undone, came before failures or blocks."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from contracts import subjects
from contracts.commands import CommandResult
from contracts.governance import ChecklistReport
from libs.commands import serve_command
from services.gatekeeper import workflow_store as ws
from services.gatekeeper.policy_source import PolicySource
from services.gatekeeper.rules.checklist import Ended, item_records, refinements

RELEASES_READ_MAX = 20_000  # the newest ended releases a report reads: bounded work per question


class ChecklistQueries:
    def __init__(self, runtime, policy: PolicySource) -> None:  # noqa: ANN001 - libs.runtime.Runtime
        self.runtime, self.policy = runtime, policy

    async def report(self, query: ChecklistReport) -> CommandResult:
        since = datetime.now(UTC) - timedelta(days=query.days)
        async with self.runtime.db.transaction() as tx:
            rows = await ws.ended_releases(tx.session, since, RELEASES_READ_MAX)
        records = item_records((Ended(*row) for row in rows), self.policy.current())
        suggestions = refinements(records, query.min_releases)
        items = [asdict(r) | {"lift": round(r.lift, 4)} for r in records]
        return CommandResult(ok=True, message=f"{len(rows)} ended release(s) in {query.days} days, "
                             f"{len(suggestions)} suggestion(s)",
                             data={"releases": len(rows), "items": items, "suggestions": suggestions})


def register(runtime, policy: PolicySource) -> None:  # noqa: ANN001 - libs.runtime.Runtime
    serve_command(runtime.broker, subjects.CMD_CHECKLIST_REPORT, ChecklistReport,
                  ChecklistQueries(runtime, policy).report)
