"""The local driver behind the deploy target port: its process ids and ports travel inside opaque handles."""

import asyncio
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import httpx

from services.deployer.local.admin_auth import Refusals
from services.deployer.local.driver import LocalDriver
from services.deployer.local.handles import InstanceHandle, RouterHandle
from services.deployer.local.routing import PIN_HEADER, SERVED_BY_HEADER
from services.deployer.target import ConfigSource, Endpoints, Handle, PilotRule, Pool, no_config

ROUTER, INSTANCE = "local-router", "local-instance"
SMOKE_PATHS = ("/healthz", *(f"/smoke/{n}" for n in range(9)))  # a version failing half its requests passes 1 in 1024


def _data(local: RouterHandle | InstanceHandle) -> dict:
    # No region for the whole environment: handles recorded before regions existed stay equal to their adoptions.
    data = asdict(local)
    if not data["region"]:
        del data["region"]
    return data


def router_handle(router: RouterHandle) -> Handle:
    return Handle(ROUTER, _data(router))


def instance_handle(instance: InstanceHandle) -> Handle:
    # Nor any configuration, for the same reason.
    data = _data(instance)
    if not data["config"]:
        del data["config"]
    return Handle(INSTANCE, data)


def as_router(handle: Handle) -> RouterHandle:
    if handle.kind != ROUTER:
        raise ValueError(f"a {handle.kind} handle is not a local router")
    return RouterHandle(**handle.data)


def as_instance(handle: Handle) -> InstanceHandle:
    if handle.kind != INSTANCE:
        raise ValueError(f"a {handle.kind} handle is not a local instance")
    return InstanceHandle(**handle.data)


def _local(handle: Handle) -> RouterHandle | InstanceHandle:
    return as_router(handle) if handle.kind == ROUTER else as_instance(handle)


class LocalTarget:
    def __init__(self, driver: LocalDriver, config_for: ConfigSource = no_config) -> None:
        self.driver, self.config_for = driver, config_for

    async def ensure_router(self, service: str, environment: str, known: Handle | None, region: str = "") -> Handle:
        adopted = as_router(known) if known is not None else None
        # Not waited for here: the first instance starts while the router boots; the driver waits for it before
        # its first use (routes set, smoke tests).
        return router_handle(await self.driver.ensure_router(service, environment, adopted, region, ready=False))

    def endpoints(self, router: Handle) -> Endpoints:
        local = as_router(router)
        return Endpoints(url=local.url, metrics_url=local.metrics_url, admin_url=local.admin_url)

    async def start_instance(
        self, service: str, environment: str, version: str, slot: int, artifact_path: Path, known: Handle | None = None,
        region: str = "",
    ) -> Handle:
        adopted = as_instance(known) if known is not None else None
        started = await self.driver.start_instance(service, environment, version, artifact_path, adopted, slot, region,
                                                   self.config_for(environment))
        return instance_handle(started)

    async def running_config(self, instance: Handle) -> dict[str, str] | None:
        return self.driver.running_config(as_instance(instance))  # one small /proc read

    async def set_weights(self, router: Handle, pools: list[Pool]) -> None:
        await self.driver.set_pools(
            as_router(router), [(p.version, [as_instance(i) for i in p.instances], p.weight) for p in pools])

    async def set_pilot(self, router: Handle, rule: PilotRule | None) -> None:
        await self.driver.set_pilot(as_router(router), asdict(rule) if rule is not None else None)

    async def smoke_test(self, router: Handle, version: str) -> str | None:
        local = as_router(router)
        await self.driver.router_ready(local)
        url = local.url
        # At once, so a slow version's smoke test takes one request's time, not ten.
        problems = await asyncio.gather(*(self._smoke(f"{url}{path}", path, version) for path in SMOKE_PATHS))
        return next((problem for problem in problems if problem is not None), None)

    async def _smoke(self, url: str, path: str, version: str) -> str | None:
        try:
            response = await self.driver.http().get(url, headers={PIN_HEADER: version})
        except httpx.HTTPError as err:
            return f"GET {path} pinned to {version} failed: {err!r}"
        served = response.headers.get(SERVED_BY_HEADER)
        if response.status_code >= 500 or served != version:
            return f"GET {path} pinned to {version} answered HTTP {response.status_code} from {served or 'nobody'}"
        return None

    async def check_health(self, instance: Handle) -> str | None:
        url = as_instance(instance).health_url
        try:
            response = await self.driver.http().get(url)
        except httpx.HTTPError as err:
            return f"GET {url} failed: {err!r}"
        return None if response.status_code == 200 else f"GET {url} answered HTTP {response.status_code}"

    async def admin_refusals(self, router: Handle) -> Refusals:
        return await self.driver.admin_refusals(as_router(router))

    async def drain(self, router: Handle, instances: list[Handle]) -> None:
        await self.driver.drain(as_router(router), [as_instance(i) for i in instances])

    async def stop_instance(self, instance: Handle) -> None:
        await self.driver.stop_instance(as_instance(instance))

    async def stop_router(self, router: Handle) -> None:
        await self.driver.stop_router(as_router(router))

    async def stop_unrecorded(self, known: Iterable[Handle]) -> list[str]:
        return await self.driver.stop_unrecorded([_local(handle) for handle in known])

    def describe(self, handle: Handle) -> str:
        local = _local(handle)
        return f"process {local.pid} on port {local.port}"

    def is_alive(self, handle: Handle) -> bool:
        return self.driver.is_alive(_local(handle))

    async def close(self) -> None:
        await self.driver.close()
