"""Queries over what the gatekeeper knows beyond releases: the inventory of what is live where, and the
evidence recorded for an artifact digest (what promotion gates and `requires` are judged against)."""

from contracts import subjects
from contracts.commands import CommandResult
from contracts.governance import ListEvidence, ListInventory
from libs.commands import serve_command
from libs.runtime import Runtime
from services.gatekeeper import inventory_store

EVIDENCE_LISTED_MAX = 200  # newest first; bounded so a reply stays far under NATS's 1 MB


class InventoryQueries:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def inventory(self, query: ListInventory) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            rows = await inventory_store.live_in(tx.session, query.environment)
        live = [{"environment": r["environment"], "service": r["service"], "version": r["version"],
                 "release_id": r["release_id"], "since": r["at"].isoformat()} for r in rows]
        where = query.environment or "every environment"
        return CommandResult(ok=True, message=f"{len(live)} service(s) live in {where}", data={"live": live})

    async def evidence(self, query: ListEvidence) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            rows = await inventory_store.evidence_of(tx.session, query.digest, EVIDENCE_LISTED_MAX)
        found = [{"kind": r["kind"], "outcome": r["outcome"], "passed": r["passed"], "team": r["team"],
                  "service": r["service"] or None, "url": r["url"], "actor": r["actor"], "at": r["at"].isoformat(),
                  "event_id": r["event_id"]} for r in rows]
        return CommandResult(ok=True, message=f"{len(found)} evidence record(s) for {query.digest}",
                             data={"digest": query.digest, "evidence": found})


def register(runtime: Runtime) -> None:
    queries = InventoryQueries(runtime)
    serve_command(runtime.broker, subjects.CMD_LIST_INVENTORY, ListInventory, queries.inventory)
    serve_command(runtime.broker, subjects.CMD_LIST_EVIDENCE, ListEvidence, queries.evidence)
