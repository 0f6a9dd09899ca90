"""What the deployer needs from a deploy target. The `local` driver is the one implementation today;
Kubernetes, Nomad or SSH drivers plug in behind the same calls.

The handles are the local driver's (process ids and ports), because they are what the deployer
records so a restart can adopt what runs; a second driver will make them opaque.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from services.deployer.local.admin_auth import Refusals
from services.deployer.local.driver import InstanceHandle, RouterHandle


class DeployTarget(Protocol):
    async def ensure_router(self, service: str, environment: str, known: RouterHandle | None) -> RouterHandle:
        """The traffic splitter for a service in an environment: adopt `known` if alive, else start it."""
        ...

    async def start_instance(
        self, service: str, environment: str, version: str, artifact_path: Path, known: InstanceHandle | None = None
    ) -> InstanceHandle:
        """A running, ready instance of `version`: adopt `known` if alive, else start it."""
        ...

    async def set_weights(self, router: RouterHandle, weights: list[tuple[InstanceHandle, int]]) -> None:
        """Shift traffic: percent per instance, summing to 100 (or nothing routed at all)."""
        ...

    async def admin_refusals(self, router: RouterHandle) -> Refusals:
        """The calls to change `router` it refused since it started, because they lacked the deployer's credentials."""
        ...

    async def stop_instance(self, instance: InstanceHandle) -> None:
        """Tear an instance down; no error if it is already gone."""
        ...

    async def stop_unrecorded(self, known: Iterable[RouterHandle | InstanceHandle]) -> list[str]:
        """Stop everything this target started that is not in `known` (recorded); describe what was stopped."""
        ...

    def is_alive(self, handle: RouterHandle | InstanceHandle) -> bool:
        """Whether the process behind `handle` still runs (answering or not)."""
        ...
