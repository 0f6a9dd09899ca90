"""A deploy target that runs nothing: it remembers what it was asked for, so handler tests need no processes.

Tests read `started`, `stopped` and `weights` and can make the next starts or smoke tests fail. An instance
runs with the configuration `config_for` gives for its environment, kept in its handle; a test changes what one
runs with in `configs` (as if someone edited it in place).
"""

from collections.abc import Iterable
from pathlib import Path

from services.deployer.local.admin_auth import Refusals
from services.deployer.target import ConfigSource, Endpoints, Handle, PilotRule, Pool

ROUTER, INSTANCE = "memory-router", "memory-instance"


class MemoryTarget:
    def __init__(self, config_for: ConfigSource | None = None) -> None:
        self.config_for = config_for  # None: instances run with no declared configuration, and none is compared
        self.configs: dict[str, dict[str, str]] = {}  # identity -> the configuration it runs with
        self.routers_stopped: list[tuple[str, str]] = []  # (service, environment)
        self.running: dict[str, Handle] = {}  # identity -> handle
        self.started: list[tuple[str, int]] = []  # (version, slot), in order
        self.stopped: list[tuple[str, int]] = []
        # (service, env) or for a region's router (service, env, region) -> every split asked for
        self.weights: dict[tuple[str, ...], list[dict[str, int]]] = {}
        self.pilots: dict[tuple[str, ...], PilotRule | None] = {}  # the pilot rule each router has now
        self.smoke_tested: list[str] = []
        self.routed: dict[str, list[tuple[Handle, ...]]] = {}  # router identity -> instances it routes to, by pool
        self.fail_starts: set[str] = set()  # versions whose instances fail to start
        self.fail_smoke: set[str] = set()  # versions whose smoke test fails
        self.fail_health: set[str] = set()  # versions whose instances answer their health check badly
        self.failing_stops: dict[str, int] = {}  # version -> how many of the next stops of its instances fail
        self._generation = 0

    def _run(self, kind: str, **data: object) -> Handle:
        self._generation += 1
        handle = Handle(kind, {**data, "generation": self._generation})
        self.running[handle.identity] = handle
        return handle

    async def ensure_router(self, service: str, environment: str, known: Handle | None, region: str = "") -> Handle:
        if known is not None and known.identity in self.running:
            return known
        region = region or (str(known.data.get("region", "")) if known else "")
        return self._run(ROUTER, service=service, environment=environment, **({"region": region} if region else {}))

    @staticmethod
    def _key(router: Handle) -> tuple[str, ...]:
        region = router.data.get("region")
        return (router.data["service"], router.data["environment"], *((region,) if region else ()))

    def endpoints(self, router: Handle) -> Endpoints:
        where = "/".join(("http://memory", *self._key(router)))
        return Endpoints(url=where, metrics_url=f"{where}/admin/metrics", admin_url=f"{where}/admin")

    async def start_instance(
        self, service: str, environment: str, version: str, slot: int, artifact_path: Path, known: Handle | None = None,
        region: str = "",
    ) -> Handle:
        if known is not None and known.identity in self.running:
            return known
        if version in self.fail_starts:
            raise TimeoutError(f"{service} {version} slot {slot} failed to become ready")
        self.started.append((version, slot))
        region = region or (str(known.data.get("region", "")) if known is not None else "")
        config = dict(self.config_for(environment)) if self.config_for is not None else {}
        where = {"region": region} if region else {}
        handle = self._run(INSTANCE, service=service, environment=environment, version=version, slot=slot,
                           config=config, **where)
        if self.config_for is not None:
            self.configs[handle.identity] = config
        return handle

    async def running_config(self, instance: Handle) -> dict[str, str] | None:
        return self.configs.get(instance.identity)

    async def set_weights(self, router: Handle, pools: list[Pool]) -> None:
        for pool in pools:
            for instance in pool.instances:
                if instance.identity not in self.running:
                    raise OSError(f"instance {dict(instance.data)} is not running")
        self.weights.setdefault(self._key(router), []).append({pool.version: pool.weight for pool in pools})
        self.routed[router.identity] = [pool.instances for pool in pools]

    async def set_pilot(self, router: Handle, rule: PilotRule | None) -> None:
        self.pilots[self._key(router)] = rule

    async def smoke_test(self, router: Handle, version: str) -> str | None:
        self.smoke_tested.append(version)
        return f"{version} answered HTTP 500" if version in self.fail_smoke else None

    async def check_health(self, instance: Handle) -> str | None:
        version = instance.data["version"]
        return f"{version} instance {instance.data['slot']} is unhealthy" if version in self.fail_health else None

    async def admin_refusals(self, router: Handle) -> Refusals:
        return Refusals(0, ())

    async def drain(self, router: Handle, instances: list[Handle]) -> None:
        for instance in instances:
            if any(instance in pool for pool in self.routed.get(router.identity, [])):
                raise OSError(f"{dict(instance.data)} is drained while the router still sends it traffic")

    async def stop_instance(self, instance: Handle) -> None:
        version = instance.data["version"]
        if self.failing_stops.get(version, 0) > 0:
            self.failing_stops[version] -= 1
            raise OSError(f"{version} instance {instance.data['slot']} did not stop")
        if self.running.pop(instance.identity, None) is not None:
            self.stopped.append((instance.data["version"], instance.data["slot"]))

    async def stop_router(self, router: Handle) -> None:
        if self.running.pop(router.identity, None) is not None:
            self.routers_stopped.append((router.data["service"], router.data["environment"]))

    async def stop_unrecorded(self, known: Iterable[Handle]) -> list[str]:
        recorded = {handle.identity for handle in known}
        strays = [identity for identity in self.running if identity not in recorded]
        for identity in strays:
            del self.running[identity]
        return strays

    def describe(self, handle: Handle) -> str:
        return f"{handle.kind} {handle.data['generation']}"

    def is_alive(self, handle: Handle) -> bool:
        return handle.identity in self.running

    def split(self, service: str, environment: str, region: str = "") -> dict[str, int]:
        """The traffic split last asked for."""
        return self.weights.get((service, environment, *((region,) if region else ())), [{}])[-1]

    def live_instances(self, version: str, region: str | None = None) -> list[int]:
        return sorted(h.data["slot"] for h in self.running.values() if h.data.get("version") == version
                      and (region is None or h.data.get("region", "") == region))

    async def close(self) -> None:
        return None
