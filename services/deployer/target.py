"""What the deployer needs from a deploy target, chosen by configuration (`deploy_target`).

The deployer records the handles a target gives it and hands them back unread: only the target
that made a handle knows what is inside (process ids and ports for the local driver, anything
else for another one), so Kubernetes, Nomad or SSH drivers plug in behind the same calls.
A version runs as a pool of instances, numbered by slot; the router splits traffic by pool.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from services.deployer.local.admin_auth import Refusals


class TargetError(RuntimeError):
    """The target refused or failed an operation."""


# The configuration an environment declares, as environment variables of its instances (by environment name).
ConfigSource = Callable[[str], Mapping[str, str]]


def no_config(environment: str) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class Handle:
    """Something a target runs (a router or an instance), as the target describes it to itself."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "data": dict(self.data)}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> "Handle":
        parsed = json.loads(raw)
        return cls(parsed["kind"], parsed["data"])

    @property
    def identity(self) -> str:
        """Tells two runs of the same thing apart (a restarted process is another identity)."""
        return self.to_json()


@dataclass(frozen=True)
class Endpoints:
    """Where users reach a service through its router, and where its per-version metrics are read."""

    url: str
    metrics_url: str
    admin_url: str


@dataclass(frozen=True)
class PilotRule:
    """Requests carrying `header` or `cookie` (any non-empty value) go to `version`, whatever the weights."""

    version: str
    header: str
    cookie: str


@dataclass(frozen=True)
class Pool:
    """The instances of one version and the percent of traffic they share."""

    version: str
    instances: tuple[Handle, ...]
    weight: int


class DeployTarget(Protocol):
    async def ensure_router(self, service: str, environment: str, known: Handle | None, region: str = "") -> Handle:
        """The traffic splitter for a service in an environment (in one of its regions, or for all of it when
        `region` is ""): adopt `known` if alive, else start it (in `known`'s region when it names one).
        The handle carries its region as `data["region"]` (absent for the whole environment)."""
        ...

    def endpoints(self, router: Handle) -> Endpoints:
        ...

    async def start_instance(
        self, service: str, environment: str, version: str, slot: int, artifact_path: Path, known: Handle | None = None,
        region: str = "",
    ) -> Handle:
        """A running, ready instance `slot` of `version`: adopt `known` if alive, else start it (in `region`, else in
        `known`'s; "" serves the whole environment) with the environment's declared configuration. The handle
        carries its region as `data["region"]` (absent for the whole environment)."""
        ...

    async def running_config(self, instance: Handle) -> Mapping[str, str] | None:
        """The configuration the instance runs with, asked of what runs; None when it cannot be told."""
        ...

    async def set_weights(self, router: Handle, pools: list[Pool]) -> None:
        """Shift traffic: percent per pool, summing to 100 (or nothing routed at all)."""
        ...

    async def set_pilot(self, router: Handle, rule: PilotRule | None) -> None:
        """Route a pilot group to a version ahead of the weights, or (None) no longer."""
        ...

    async def smoke_test(self, router: Handle, version: str) -> str | None:
        """Requests pinned to `version` through the router, whatever its weight; what went wrong, or None."""
        ...

    async def check_health(self, instance: Handle) -> str | None:
        """Ask the instance itself (not through the router) whether it is healthy; what is wrong, or None."""
        ...

    async def admin_refusals(self, router: Handle) -> Refusals:
        """The calls to change `router` it refused since it started, because they lacked the deployer's credentials."""
        ...

    async def drain(self, router: Handle, instances: list[Handle]) -> None:
        """Wait (bounded) until `router`, which no longer routes to `instances`, has nothing in flight to them."""
        ...

    async def stop_instance(self, instance: Handle) -> None:
        """Tear an instance down; no error if it is already gone."""
        ...

    async def stop_router(self, router: Handle) -> None:
        """Tear a router down for good (its environment is gone); no error if it is already gone."""
        ...

    async def stop_unrecorded(self, known: Iterable[Handle]) -> list[str]:
        """Stop everything this target started that is not in `known` (recorded); describe what was stopped."""
        ...

    def describe(self, handle: Handle) -> str:
        """`handle` for people (in logs and events): a process id and port, a pod name, ..."""
        ...

    def is_alive(self, handle: Handle) -> bool:
        """Whether what runs behind `handle` still runs (answering or not)."""
        ...

    async def close(self) -> None:
        """Let go of connections; what runs keeps running."""
        ...
