"""Drift: what the deployer runs compared with the environment declarations, on a schedule and on demand, and
put back as declared where the declaration's `drift.reconcile` says.

On demand (`slipway env drift ENV`, a signed CheckDrift) every drifted service is recorded as a
DriftDetected and the findings are the reply; with `--reconcile` each is then reconciled (refused
with the reason when the declaration says `off`). On the schedule (`SLIPWAY_DRIFT_INTERVAL_S`) a
service's drift is recorded when it differs from what the last round found, so a lasting drift is
one event, not one per round, and reconciled when the declaration says `auto`. Declarations are
read at every check: an edited file counts at once, a broken one is reported with file, line and
field and nothing is compared. What runs is read from the store and asked of the target: whether
each instance is alive, and the configuration it runs with.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from contracts.commands import CheckDrift, CommandResult, SignedCommand
from contracts.environment_events import DriftDetected, DriftFinding, DriftReconciled
from libs.commands import Signed, refusal
from libs.environments import DeclarationSource, Declarations, config_environment
from libs.policy_yaml import PolicyError
from libs.runtime import Runtime
from services.deployer import store
from services.deployer.artifacts import ArtifactStore
from services.deployer.drift import Instance, Running, drift
from services.deployer.reconcile import Reconcile
from services.deployer.reconcile_rules import reconcile_refusal
from services.deployer.target import ConfigSource, DeployTarget, TargetError

log = logging.getLogger("slipway.deployer.environments")
SOURCE = "deployer"
Key = tuple[str, str]  # (service, environment)
Findings = dict[Key, list[DriftFinding]]


def declared_config(directory: Path) -> ConfigSource:
    """The configuration each environment declares now, for the target to give the instances it starts."""
    source = DeclarationSource(directory)

    def config_for(environment: str) -> dict[str, str]:
        try:
            declared = source.current().get(environment)
        except PolicyError as broken:
            raise TargetError(f"the environment declarations cannot be read, so {environment}'s configuration is "
                              f"unknown: {broken.problems[0]}") from broken
        return config_environment(declared.config) if declared is not None else {}

    return config_for


class Drift:
    def __init__(self, runtime: Runtime, directory: Path, target: DeployTarget, artifacts: ArtifactStore,
                 lock_for: Callable[[str, str], asyncio.Lock],
                 ignored: Callable[[], Awaitable[set[str]]] | None = None) -> None:
        self.runtime, self.declared, self.target, self.lock_for = runtime, DeclarationSource(directory), target, lock_for
        self.ignored = ignored  # environments nobody should run anything in any more (expired previews)
        self.reconciler = Reconcile(runtime, target, artifacts, self.running_one)
        self._last: Findings = {}  # what the last scheduled round found, to record only changes

    async def compare(self, declarations: Declarations, environment: str | None = None) -> Findings:
        """Every service the store records (in `environment`, or everywhere) with what differs; [] when nothing."""
        gone = await self.ignored() if self.ignored is not None else set()
        return {key: drift(declarations.get(key[1]), key[1], running)
                for key, running in (await self.running(environment)).items() if key[1] not in gone}

    async def running(self, environment: str | None, service: str | None = None) -> dict[Key, Running]:
        async with self.runtime.db.transaction() as tx:
            by_key: dict[Key, list[store.Running]] = defaultdict(list)
            for instance in await store.all_instances(tx.session):
                by_key[(instance.service, instance.environment)].append(instance)
            lives = {(row.service, row.environment): row.version
                     for row in (await tx.session.execute(select(store.live))).all()}
            wanted = [key for key in sorted(by_key.keys() | lives.keys())
                      if environment in (None, key[1]) and service in (None, key[0])]
            in_flight = {key: await store.rollout_in_flight(tx.session, *key) for key in wanted}
        # The target is asked outside the transaction: reading what runs must not hold the database.
        return {key: Running(key[0], lives.get(key), tuple([await self._instance(i) for i in by_key.get(key, [])]),
                             in_flight[key]) for key in wanted}

    async def running_one(self, service: str, environment: str) -> Running:
        return (await self.running(environment, service)).get((service, environment), Running(service, None))

    async def _instance(self, recorded: store.Running) -> Instance:
        alive = self.target.is_alive(recorded.handle)
        config = await self.target.running_config(recorded.handle) if alive else None
        return Instance(recorded.version, recorded.slot, recorded.handle.data.get("region") or None, config, alive)

    async def check_drift(self, command: CheckDrift, by: Signed) -> CommandResult:
        try:
            declarations = self.declared.current()
        except PolicyError as broken:
            return refusal("the environment declarations cannot be read: " +
                           "; ".join(str(p) for p in broken.problems[:20]))
        if command.reconcile and (refused := reconcile_refusal(
                declarations.get(command.environment), command.environment, on_demand=True)):
            return refusal(f"not reconciled: {refused}")
        findings = await self.compare(declarations, command.environment)
        drifted = {key: found for key, found in findings.items() if found}
        await self._record(drifted, declarations, "command", by.actor, by.proof)
        compared = ", ".join(service for service, _ in findings) or "nothing runs there"
        message = (f"{len(drifted)} of {len(findings)} service(s) in {command.environment} drifted from the "
                   f"declaration" if drifted else f"no drift in {command.environment} ({compared})")
        data: dict = {"drift": {service: [f.model_dump(mode="json") for f in found]
                                for (service, _), found in drifted.items()}}
        if command.reconcile:
            done = [event for key in drifted
                    if (event := await self._reconcile(declarations, key, "command", by.actor, by.proof))]
            data["reconciled"] = {e.service: e.model_dump(mode="json", include={
                "version", "started", "stopped", "restarted", "left"}) for e in done}
            message += f"; reconciled {sum(1 for e in done if e.started or e.stopped or e.restarted)} service(s)"
        return CommandResult(ok=True, message=message, data=data)

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
        for key in changed:
            if reconcile_refusal(declarations.get(key[1]), key[1], on_demand=False) is None:
                await self._reconcile(declarations, key, "schedule")

    async def _reconcile(self, declarations: Declarations, key: Key, trigger: str, actor: str = SOURCE,
                         proof: SignedCommand | None = None) -> DriftReconciled | None:
        declared = declarations.get(key[1])
        if declared is None:
            return None
        async with self.lock_for(*key):
            return await self.reconciler.apply(declared, *key, trigger=trigger, actor=actor, proof=proof,
                                               declaration=_file_of(declarations, key[1]))

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
