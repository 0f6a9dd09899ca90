"""People's change-record commands on the gatekeeper: create and approve (signed), show (a query).

`register(runtime)` wires them onto a gatekeeper runtime and returns the ChangeRecords source the
settings choose, for the release workflow to ask.
"""

from datetime import UTC, datetime

from contracts import subjects
from contracts.commands import CommandResult
from contracts.events import ChangeRecordApproved, ChangeRecordCreated
from contracts.governance import (
    ApproveChangeRecord, CreateChangeRecord, ShowChangeRecord,
)
from libs.commands import Refused, Signed, serve_command, serve_signed_command
from libs.runtime import Runtime
from services.gatekeeper import change_store
from services.gatekeeper.change_store import NewChange, SlipwayChangeRecords
from services.gatekeeper.changes import ChangeRecords, ChangeSourceUnavailable, approval_refusal
from services.gatekeeper.servicenow import ServiceNowChangeRecords

SOURCE = "gatekeeper"


def change_records(runtime: Runtime) -> ChangeRecords:
    if runtime.settings.change_source == "servicenow":
        return ServiceNowChangeRecords.from_settings(runtime.settings)
    return SlipwayChangeRecords(runtime.db)


class ChangeCommands:
    def __init__(self, runtime: Runtime, records: ChangeRecords) -> None:
        self.runtime, self.records = runtime, records

    def _refused(self, reason: str, number: str | None = None) -> Refused:
        return Refused(reason, number)

    async def create(self, command: CreateChangeRecord, by: Signed) -> CommandResult:
        if not isinstance(self.records, SlipwayChangeRecords):
            raise self._refused(f"change records come from {self.runtime.settings.change_source} here "
                                "(SLIPWAY_CHANGE_SOURCE): create the change there")
        now = datetime.now(UTC)
        if command.ends_at <= now:
            raise self._refused(f"the implementation window would already be over (ends_at "
                                f"{command.ends_at.isoformat()} is in the past)")
        async with self.runtime.db.transaction() as tx:
            number = await change_store.add(tx.session, NewChange(
                summary=command.summary, starts_at=command.starts_at, ends_at=command.ends_at,
                risk=command.risk.value, requested_by=by.actor, created_at=now,
            ))
            await tx.emit(ChangeRecordCreated(
                actor=by.actor, source=SOURCE, number=number, summary=command.summary, starts_at=command.starts_at,
                ends_at=command.ends_at, risk=command.risk, signed_command=by.proof,
            ))
        self.runtime.relay.wake()
        return CommandResult(ok=True, message=f"change {number} created by {by.actor}: waiting for a change "
                                              "manager's approval", data={"number": number})

    async def approve(self, command: ApproveChangeRecord, by: Signed) -> CommandResult:
        number = command.number
        async with self.runtime.db.transaction() as tx:
            change = await change_store.load(tx.session, number)
            if problem := approval_refusal(change, number, by.actor):
                raise self._refused(problem, number)
            if not await change_store.approve(tx.session, number, by.actor, command.comment, datetime.now(UTC)):
                raise self._refused(f"change {number} was approved by someone else meanwhile", number)
            await tx.emit(ChangeRecordApproved(
                actor=by.actor, source=SOURCE, number=number, comment=command.comment, signed_command=by.proof,
            ))
        self.runtime.relay.wake()
        return CommandResult(ok=True, message=f"change {number} approved by {by.actor}")

    async def show(self, command: ShowChangeRecord) -> CommandResult:
        try:
            change = await self.records.get(command.number)
        except ChangeSourceUnavailable as exc:
            return CommandResult(ok=False, message=str(exc))
        if change is None:
            return CommandResult(ok=False, message=f"no change record {command.number} in "
                                                   f"{self.runtime.settings.change_source}")
        return CommandResult(ok=True, message=f"change {change.number}: {change.state.value}, {change.approval}",
                             data={"change": change.as_data()})


def register(runtime: Runtime) -> ChangeRecords:
    """Serve the change-record commands on the gatekeeper's runtime; the ChangeRecords source it uses."""
    records = change_records(runtime)
    commands = ChangeCommands(runtime, records)
    serve_signed_command(runtime, subjects.CMD_CREATE_CHANGE, CreateChangeRecord, commands.create)
    serve_signed_command(runtime, subjects.CMD_APPROVE_CHANGE, ApproveChangeRecord, commands.approve)
    serve_command(runtime.broker, subjects.CMD_SHOW_CHANGE, ShowChangeRecord, commands.show)
    return records
