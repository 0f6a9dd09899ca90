"""Feature flags on the gatekeeper: an approved release's declared flags are added off, and people change a
flag's exposure (`slipway flags set / rollout`, signed) without a deployment; anyone may list them.

The gatekeeper owns them because exposing a feature is a governance decision like approving a release:
it already checks people's signed commands and knows the declared environments, and the deployer only
moves versions. The flag rows change in the same transaction as the event; the environment's flagd file
is rendered from the rows after each change and at start (so a crash in between heals at the next start).
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from contracts import subjects
from contracts.commands import CommandResult
from contracts.events import ReleaseApproved
from contracts.flags import ChangeFlag, FlagChanged, FlagsDeclared, ListFlags
from libs.commands import Refused, Signed, serve_command, serve_signed_command
from libs.consume import consume
from libs.environments import DeclarationSource
from libs.policy_yaml import PolicyError
from libs.runtime import Runtime
from libs.store import Transaction
from services.gatekeeper import flag_store
from services.gatekeeper.flag_files import write_flags
from services.gatekeeper.flags import Flag, change_refusal, undeclared

SOURCE = "gatekeeper"
CONSUMER = "gatekeeper-flags"


class FlagCommands:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.declarations = DeclarationSource(runtime.settings.environments_dir)
        # One change at a time in this process: each file is rendered from the rows the change just committed.
        self._turn = asyncio.Lock()

    async def on_release_approved(self, approved: ReleaseApproved) -> None:
        if not approved.release.flags:
            return

        async def add_declared(tx: Transaction) -> None:
            present = [flag.key for flag in await flag_store.listed(tx.session, approved.environment)]
            added = undeclared(approved.release.flags, present)
            now = datetime.now(UTC)
            for declared in added:
                await flag_store.add(tx.session, Flag(declared.key, approved.environment, 0, declared.description,
                                                      approved.release_id), now)
            if added:
                await tx.emit(FlagsDeclared.caused_by(approved, SOURCE, flags=added))

        async with self._turn:
            await self.runtime.process_once(CONSUMER, approved, add_declared)
            await self._render(approved.environment)

    async def change(self, command: ChangeFlag, by: Signed) -> CommandResult:
        declared = self._declared_environments(command)
        async with self._turn:
            async with self.runtime.db.transaction() as tx:
                flags = {flag.key: flag for flag in await flag_store.listed(tx.session, command.environment)}
                if problem := change_refusal(command.flag, command.environment, declared, list(flags)):
                    raise Refused(problem, command.flag, command.environment)
                before = flags[command.flag]
                if before.percent != command.percent:
                    await flag_store.expose(tx.session, command.environment, command.flag, command.percent,
                                            datetime.now(UTC))
                    await tx.emit(FlagChanged(
                        flag=command.flag, environment=command.environment, before=before.percent,
                        percent=command.percent, actor=by.actor, source=SOURCE, signed_command=by.proof))
            if not tx.emitted:
                return CommandResult(ok=True, message=f"flag {command.flag} in {command.environment} is already "
                                     f"{before.exposure}: nothing changed", data=before.as_data())
            path = await self._render(command.environment)
        self.runtime.relay.wake()
        after = replace(before, percent=command.percent)
        return CommandResult(ok=True, message=f"flag {command.flag} in {command.environment}: {before.exposure} -> "
                             f"{after.exposure} by {by.actor} ({path})", data=after.as_data())

    async def list_flags(self, command: ListFlags) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            flags = await flag_store.listed(tx.session, command.environment)
        return CommandResult(ok=True, message=f"{len(flags)} flag(s)", data={"flags": [f.as_data() for f in flags]})

    async def render_all(self) -> None:
        """Every environment's file from the rows: what a crash between a commit and its file left behind is healed."""
        async with self.runtime.db.transaction() as tx:
            environments = await flag_store.environments(tx.session)
        async with self._turn:
            for environment in environments:
                await self._render(environment)

    async def _render(self, environment: str) -> Path:
        async with self.runtime.db.transaction() as tx:
            flags = await flag_store.listed(tx.session, environment)
        return await asyncio.to_thread(write_flags, self.runtime.settings.data_dir, environment, flags)

    def _declared_environments(self, command: ChangeFlag) -> list[str]:
        """The declared environments, and the command's own when it is a preview of a declared template."""
        try:
            declarations = self.declarations.current()
        except (PolicyError, OSError) as broken:
            raise Refused(f"the environment declarations in {self.declarations.directory} cannot be read, so "
                          f"{command.environment} cannot be checked: {broken}", command.flag,
                          command.environment) from None
        own = [command.environment] if declarations.get(command.environment) is not None else []
        return sorted(set(declarations.environments) | set(own))


def register(runtime: Runtime) -> FlagCommands:
    flags = FlagCommands(runtime)
    consume(runtime.broker, runtime.settings, subject=subjects.RELEASE_APPROVED, durable=CONSUMER,
            model=ReleaseApproved, handle=flags.on_release_approved)
    serve_signed_command(runtime, subjects.CMD_CHANGE_FLAG, ChangeFlag, flags.change)
    serve_command(runtime.broker, subjects.CMD_LIST_FLAGS, ListFlags, flags.list_flags)
    runtime.on_start.append(flags.render_all)
    return flags
