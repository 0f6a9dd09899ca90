"""Drift: what the deployer runs compared with the environment declarations, on a schedule and on demand.

On demand (`slipway env drift ENV`, a signed CheckDrift) every drifted service is recorded as a
DriftDetected and the findings are the reply. On the schedule (`SLIPWAY_DRIFT_INTERVAL_S`) a
service's drift is recorded when it differs from what the last round found, so a lasting drift is
one event, not one per round. Declarations are read at every check: an edited file counts at once,
a broken one is reported with file, line and field and nothing is compared. Reconciling (starting or
stopping instances to match) is not done here yet.
"""

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from contracts.commands import CheckDrift, CommandResult, SignedCommand
from contracts.environment_events import DriftDetected, DriftFinding
from libs.commands import Signed, refusal
from libs.environments import DeclarationSource, Declarations
from libs.policy_yaml import PolicyError
from libs.runtime import Runtime
from services.deployer import store
from services.deployer.drift import Running, drift
from services.deployer.target import Handle

log = logging.getLogger("slipway.deployer.environments")
SOURCE = "deployer"
Findings = dict[tuple[str, str], list[DriftFinding]]  # (service, environment) -> what differs


class Drift:
    def __init__(self, runtime: Runtime, directory: Path, is_alive: Callable[[Handle], bool],
                 ignored: Callable[[], Awaitable[set[str]]] | None = None) -> None:
        self.runtime, self.declared, self.is_alive = runtime, DeclarationSource(directory), is_alive
        self.ignored = ignored  # environments nobody should run anything in any more (expired previews)
        self._last: Findings = {}  # what the last scheduled round found, to record only changes

    async def compare(self, declarations: Declarations, environment: str | None = None) -> Findings:
        """Every service the store records (in `environment`, or everywhere) with what differs; [] when nothing."""
        gone = await self.ignored() if self.ignored is not None else set()
        return {key: drift(declarations.get(key[1]), key[1], running)
                for key, running in (await self.running(environment)).items() if key[1] not in gone}

    async def running(self, environment: str | None) -> dict[tuple[str, str], Running]:
        async with self.runtime.db.transaction() as tx:
            instances = [i for i in await store.all_instances(tx.session)
                         if environment is None or i.environment == environment]
            lives = {(row.service, row.environment): row.version
                     for row in (await tx.session.execute(select(store.live))).all()
                     if environment is None or row.environment == environment}
            by_key: dict[tuple[str, str], list[store.Running]] = defaultdict(list)
            for instance in instances:
                by_key[(instance.service, instance.environment)].append(instance)
            found = {}
            for key in sorted(by_key.keys() | lives.keys()):
                own = by_key.get(key, [])
                found[key] = Running(
                    service=key[0], live_version=lives.get(key),
                    instances={v: sum(1 for i in own if i.version == v) for v in {i.version for i in own}},
                    down=[i.version for i in own if not self.is_alive(i.handle)],
                    in_flight=await store.rollout_in_flight(tx.session, *key),
                )
        return found

    async def check_drift(self, command: CheckDrift, by: Signed) -> CommandResult:
        try:
            declarations = self.declared.current()
        except PolicyError as broken:
            return refusal("the environment declarations cannot be read: " +
                           "; ".join(str(p) for p in broken.problems[:20]))
        findings = await self.compare(declarations, command.environment)
        drifted = {key: found for key, found in findings.items() if found}
        await self._record(drifted, declarations, "command", by.actor, by.proof)
        compared = ", ".join(service for service, _ in findings) or "nothing runs there"
        message = (f"{len(drifted)} of {len(findings)} service(s) in {command.environment} drifted from the "
                   f"declaration" if drifted else f"no drift in {command.environment} ({compared})")
        return CommandResult(ok=True, message=message, data={"drift": {
            service: [f.model_dump(mode="json") for f in found] for (service, _), found in drifted.items()}})

    async def scheduled(self) -> None:
        try:
            declarations = self.declared.current()
        except PolicyError as broken:
            log.error("drift not checked: the environment declarations cannot be read: %s", broken)
            return
        findings = await self.compare(declarations)
        changed = {key: found for key, found in findings.items() if found and self._last.get(key) != found}
        await self._record(changed, declarations, "schedule")
        self._last = findings

    async def _record(self, drifted: Findings, declarations: Declarations, trigger: str, actor: str = SOURCE,
                      proof: SignedCommand | None = None) -> None:
        if not drifted:
            return
        await self.runtime.emit(*(DriftDetected(
            service=service, environment=environment, actor=actor, source=SOURCE,
            findings=found, trigger=trigger, declaration=_file_of(declarations, environment), signed_command=proof,
        ) for (service, environment), found in drifted.items()))


def _file_of(declarations: Declarations, environment: str) -> str:
    declared = declarations.get(environment)
    return str(declarations.directory / f"{declared.name}.yaml") if declared is not None else ""
