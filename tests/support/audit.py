"""Waiting for the metrics-collector's audit to cover a test's signed commands."""

from contracts import subjects
from contracts.commands import CommandResult, VerifyAudit
from libs.client import send_command
from tests.support.poll import eventually


async def audit_once_logged(nats_url: str, signed_commands: int, what: str) -> CommandResult:
    """`slipway audit verify`'s report once at least `signed_commands` signed commands are in the log."""

    async def audit() -> CommandResult | None:
        result = await send_command(nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
        return result if result.data.get("signed_commands", 0) >= signed_commands else None

    return await eventually(audit, 10, what)
