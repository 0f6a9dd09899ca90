"""Runs releases as real local processes behind one weighted router per service and environment.

Layout under ``run_dir``: ``pids/<name>.pid`` (the pid that runs under a name now, for people),
``logs/<name>.log``, ``routers/<service>.<environment>.json`` (routes a restarted router
restores) and ``secrets/<name>.token`` (a router's admin token, readable by its owner only, so a
restarted deployer can still change the routers it adopts). Handles are plain data so the
deployer can persist them and adopt live processes after its own restart instead of starting
duplicates.

Every process is marked with ``run_dir`` in its environment from the moment it exists (see
``processes.spawn``), so one that was started but never recorded (the deployer died in between)
is still found: ``stop_unrecorded`` stops it when the deployer restarts, and ``stop_all`` (behind
``slipway down`` and stopping the stack) stops every process started under ``run_dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx

from libs.faults import CrashPoint, crash_if_planned
from libs.flag_files import FLAGS_FILE_ENV, flags_file
from services.deployer.local import processes
from services.deployer.local.admin_auth import TOKEN_ENV, Refusals, parse_refusals
from services.deployer.local.handles import (
    InstanceHandle, RouterHandle, instance_name, process_name, router_name, safe_name,
)
from services.deployer.target import TargetError

log = logging.getLogger("slipway.deployer.local")
READY_TIMEOUT = 20.0
DRAIN_S, DRAIN_POLL_S = 10.0, 0.02
ADMIN_TIMEOUT = httpx.Timeout(5.0)
# Names the configuration an instance was given (each value is an environment variable of its own), so
# what it runs with can be read back from the process itself.
CONFIG_KEYS_ENV = "SLIPWAY_CONFIG_KEYS"


class LocalDriverError(TargetError):
    """A local router refused or failed an operation."""


def _same(presented: str | None, token: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


class LocalDriver:
    def __init__(
        self, run_dir: Path, python: str = sys.executable,
        crash_points: tuple[CrashPoint, ...] = (), crash_marker_dir: Path | None = None,
        flags_dir: Path | None = None,
    ) -> None:
        # Absolute, because it is the mark every started process carries and is matched verbatim.
        self.run_dir = Path(run_dir).resolve()
        self.python = python
        # Recovery tests (libs/faults.py): die right after starting a process, before anyone records it.
        self.crash_points = crash_points
        self.crash_marker_dir = crash_marker_dir or self.run_dir
        # Serialises start/adopt per process name so concurrent calls cannot start duplicates.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # The data directory whose flags/<environment>.flagd.json the gatekeeper keeps: each instance is told
        # its environment's file (libs.flag_files), so feature flags change what it serves without a deployment.
        self.flags_dir = flags_dir
        self._http: httpx.AsyncClient | None = None
        # Routers started without waiting for them (ensure_router(ready=False)), by pid: their readiness, awaited
        # before anything is asked of them, so an application starts while its router is still booting.
        self._booting: dict[int, asyncio.Task[None]] = {}

    def http(self) -> httpx.AsyncClient:
        """One client for the driver's life (built on first use): building one costs 30-40 ms of CPU.

        Plain HTTP to 127.0.0.1, so no TLS and no CA bundle loaded; never a proxy from the environment."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=ADMIN_TIMEOUT, trust_env=False, verify=False)
        return self._http

    async def close(self) -> None:
        """Let go of the HTTP connections; every process keeps running."""
        for booting in self._booting.values():
            booting.cancel()
        self._booting.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _answers_ok(self, url: str) -> bool:
        try:
            return (await self.http().get(url, timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def ensure_router(
        self, service: str, environment: str, known: RouterHandle | None, region: str = "", ready: bool = True
    ) -> RouterHandle:
        """A router for `service` in `environment` that answers, or with `ready` False one that may still be booting:
        the driver's own calls to it (and `router_ready`) then wait for it first."""
        region = region or (known.region if known else "")
        name = router_name(service, environment, region)
        async with self._locks[name]:
            if known is not None:  # one still booting is judged once it has had its chance to answer
                with contextlib.suppress(TimeoutError):
                    await self.router_ready(known)
            token = self._read_token(name) if known is not None else None
            if known is not None and await self._adoptable(known):
                if token is not None and _same(processes.started_with(known.pid, TOKEN_ENV), token):
                    return known
                # Started before routers had tokens (or with a token nobody holds): it would take
                # weights from anyone, so it is restarted with the token on the same ports.
                log.warning("router %s (pid %d) does not hold its admin token; restarting it with one",
                            name, known.pid)
                await asyncio.to_thread(processes.stop, known.pid)
            # A dead router comes back with the token it had; a new one gets a new token.
            token = token or self._new_token(name)
            # Restart on the same ports so URLs the deployer already handed out stay valid.
            port, admin_port = (known.port, known.admin_port) if known else processes.free_ports(2)
            state_file = self._state_file(service, environment, region)
            state_file.parent.mkdir(parents=True, exist_ok=True)
            argv = [self.python, "-m", "services.deployer.local.router", "--port", str(port),
                    "--admin-port", str(admin_port), "--state-file", str(state_file)]
            health_url = f"http://127.0.0.1:{admin_port}/healthz"
            if ready:
                pid = await self._start(name, argv, health_url, {TOKEN_ENV: token})
            else:
                pid = self._spawn(name, argv, {TOKEN_ENV: token})
                self._boot_in_background(name, pid, health_url)
            return RouterHandle(service, environment, pid, port, admin_port, region)

    def _boot_in_background(self, name: str, pid: int, health_url: str) -> None:
        booting = asyncio.create_task(self._await_ready(name, pid, health_url), name=f"boot {name}")
        # Its failure is raised to whoever waits for it; one nobody waits for is not an unretrieved exception.
        booting.add_done_callback(lambda task: task.cancelled() or task.exception())
        self._booting[pid] = booting

    async def router_ready(self, router: RouterHandle) -> None:
        """Wait until a router started with ready=False answers (at once for any other); TimeoutError if it never does."""
        booting = self._booting.get(router.pid)
        if booting is None:
            return
        try:
            await asyncio.shield(booting)  # a cancelled caller leaves the boot to others who wait for it
        finally:
            if booting.done():  # answered, or stopped for never answering: either way it boots no more
                self._booting.pop(router.pid, None)

    def token_file(self, service: str, environment: str, region: str = "") -> Path:
        return self._token_path(router_name(service, environment, region))

    async def start_instance(
        self,
        service: str,
        environment: str,
        version: str,
        artifact_path: Path,
        known: InstanceHandle | None = None,
        slot: int = 0,
        region: str = "",
        config: Mapping[str, str] | None = None,
    ) -> InstanceHandle:
        """Adopt `known` if it answers; else start it (on its port and in its region, when known) with `config`
        in its environment: a restarted instance gets the configuration declared now."""
        name = instance_name(service, environment, version, slot)
        async with self._locks[name]:
            if known is not None and await self._adoptable(known):
                return known
            port = known.port if known else processes.free_port()
            region = region or (known.region if known else "")
            argv = [self.python, str(artifact_path), "--port", str(port)]
            config = dict(config or {})
            env = {**config, CONFIG_KEYS_ENV: ",".join(sorted(config))}
            if self.flags_dir:
                env[FLAGS_FILE_ENV] = str(flags_file(self.flags_dir, environment))
            pid = await self._start(name, argv, f"http://127.0.0.1:{port}/healthz", env)
            return InstanceHandle(service, environment, version, pid, port, str(artifact_path), slot, region, config)

    def running_config(self, instance: InstanceHandle) -> dict[str, str] | None:
        """The configuration the process runs with, read from its own environment; None when it is gone."""
        environ = processes.environ_of(instance.pid)
        if not environ:
            return None
        keys = [key for key in environ.get(CONFIG_KEYS_ENV, "").split(",") if key]
        return {key: environ[key] for key in keys if key in environ}

    async def set_weights(
        self, router: RouterHandle, weights: list[tuple[InstanceHandle, int]]
    ) -> None:
        """One instance per version: each its own pool."""
        await self.set_pools(router, [(i.version, [i], w) for i, w in weights])

    async def set_pools(
        self, router: RouterHandle, pools: list[tuple[str, list[InstanceHandle], int]]
    ) -> None:
        backends = [{"version": version, "urls": [i.url for i in pool], "weight": w} for version, pool, w in pools]
        await self._admin(router, "PUT", "/routes", {"backends": backends},
                          f"weights {[(version, w) for version, _, w in pools]}")

    async def set_pilot(self, router: RouterHandle, pilot: dict[str, str] | None) -> None:
        """Route requests of a pilot group ({version, header, cookie}) to its version, or (None) no longer."""
        if pilot is None:
            await self._admin(router, "DELETE", "/pilot", None, "clearing its pilot group")
        else:
            await self._admin(router, "PUT", "/pilot", pilot, f"pilot group {pilot}")

    async def _admin(self, router: RouterHandle, method: str, path: str, body: object, what: str) -> None:
        where = f"router for {router.service}/{router.environment}{'/' + router.region if router.region else ''} " \
                f"at {router.admin_url}"
        await self.router_ready(router)
        token = self._read_token(process_name(router))
        if token is None:
            missing = self.token_file(router.service, router.environment, router.region)
            raise LocalDriverError(f"{where}: its admin token file {missing} is missing")
        try:
            response = await self.http().request(method, f"{router.admin_url}{path}", json=body,
                                                 headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as err:
            raise LocalDriverError(f"{where} unreachable: {err!r}") from err
        if response.status_code != 200:
            raise LocalDriverError(f"{where} rejected {what}: HTTP {response.status_code} {response.text}")

    async def admin_refusals(self, router: RouterHandle) -> Refusals:
        """The admin calls `router` refused since it started (they lacked its token)."""
        where = f"router for {router.service}/{router.environment} at {router.admin_url}"
        await self.router_ready(router)
        try:
            response = await self.http().get(f"{router.admin_url}/refusals")
            response.raise_for_status()
            return parse_refusals(response.json())
        except (httpx.HTTPError, ValueError) as err:
            raise LocalDriverError(f"{where} did not report its refusals: {err!r}") from err

    async def drain(self, router: RouterHandle, instances: list[InstanceHandle], deadline_s: float = DRAIN_S) -> None:
        """Wait until `router` has no request in flight to `instances` (already out of its routes), at most deadline_s.

        Past the deadline the instances are stopped all the same: a request that hangs must not hold up a rollback.
        """
        urls = {instance.url for instance in instances}
        await self.router_ready(router)
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                busy = (await self.http().get(f"{router.admin_url}/in-flight")).json()["in_flight"]
            except (httpx.HTTPError, ValueError, KeyError) as err:
                log.warning("cannot read what %s/%s has in flight; not draining: %r",
                            router.service, router.environment, err)
                return
            if not urls & set(busy) or time.monotonic() >= deadline:
                return
            await asyncio.sleep(DRAIN_POLL_S)

    async def stop_instance(self, instance: InstanceHandle) -> None:
        name = process_name(instance)
        async with self._locks[name]:
            # stop() blocks while it waits for the exit; keep the event loop responsive.
            await asyncio.to_thread(processes.stop, instance.pid)
            self._pid_file(name).unlink(missing_ok=True)

    async def stop_router(self, router: RouterHandle) -> None:
        """Stop a router for good: its process, and the routes, token and pid file a restart would use."""
        name = process_name(router)
        async with self._locks[name]:
            if (booting := self._booting.pop(router.pid, None)) is not None:
                booting.cancel()  # stopped for good: nobody waits for it to answer
            await asyncio.to_thread(processes.stop, router.pid)
            self._pid_file(name).unlink(missing_ok=True)
            self._token_path(name).unlink(missing_ok=True)
            self._state_file(router.service, router.environment, router.region).unlink(missing_ok=True)

    async def stop_unrecorded(self, known: Iterable[RouterHandle | InstanceHandle]) -> list[str]:
        """Stop every process started under ``run_dir`` that is not one of ``known``; say which."""
        recorded = {(process_name(handle), handle.pid) for handle in known}
        groups = await asyncio.to_thread(processes.marked_groups, self.run_dir)
        strays = [(pgid, name) for pgid, name in sorted(groups.items()) if (name, pgid) not in recorded]
        for pgid, _ in strays:
            await asyncio.to_thread(processes.stop, pgid)
        return [f"{name} (pid {pgid})" for pgid, name in strays]

    def is_alive(self, handle: RouterHandle | InstanceHandle) -> bool:
        return processes.is_alive(handle.pid)

    def _state_file(self, service: str, environment: str, region: str = "") -> Path:
        """The routes a restarted router restores."""
        return self.run_dir / "routers" / f"{safe_name(service, environment, *((region,) if region else ()))}.json"

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def _token_path(self, name: str) -> Path:
        return self.run_dir / "secrets" / f"{name}.token"

    def _read_token(self, name: str) -> str | None:
        try:
            return self._token_path(name).read_text("utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _new_token(self, name: str) -> str:
        """A fresh token, in a file only this user can read before the secret is written to it."""
        path = self._token_path(name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        token = secrets.token_urlsafe(32)
        # mkstemp creates the file with O_EXCL and mode 0600; renamed into place once complete.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(token)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return token

    async def _adoptable(self, known: RouterHandle | InstanceHandle) -> bool:
        """A known process is reused only if it is both alive and answering.

        A live but unresponsive one is stopped so its ports are free for the restart.
        """
        if not processes.is_alive(known.pid):
            return False
        if await self._answers_ok(known.health_url):
            return True
        await asyncio.to_thread(processes.stop, known.pid)
        return False

    async def _start(
        self, name: str, argv: list[str], health_url: str, secret_env: dict[str, str] | None = None
    ) -> int:
        pid = self._spawn(name, argv, secret_env)
        await self._await_ready(name, pid, health_url)
        return pid

    def _spawn(self, name: str, argv: list[str], secret_env: dict[str, str] | None = None) -> int:
        pid = processes.spawn(argv, self._log_path(name), self.run_dir, name, secret_env)
        pid_file = self._pid_file(name)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{pid}\n")
        crash_if_planned(self.crash_points, self.crash_marker_dir, "spawned", "local-driver", name)
        return pid

    async def _await_ready(self, name: str, pid: int, health_url: str) -> None:
        """Until `health_url` answers; a process that never does is stopped, with its log's end in the error."""
        try:
            await processes.wait_http_ok(health_url, READY_TIMEOUT, pid=pid, client=self.http())
        except TimeoutError as err:
            await asyncio.to_thread(processes.stop, pid)
            self._pid_file(name).unlink(missing_ok=True)
            tail = processes.log_tail(self._log_path(name))
            raise TimeoutError(f"{name} failed to become ready: {err}\n{tail}") from err

    def _log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"


def stop_all(run_dir: Path) -> int:
    """Stop every process started under ``run_dir``, recorded or not; returns how many were running."""
    run_dir = Path(run_dir).resolve()
    groups = processes.marked_groups(run_dir)
    for pgid in groups:
        processes.stop(pgid)
    for pid_file in (run_dir / "pids").glob("*.pid"):
        pid_file.unlink(missing_ok=True)
    return len(groups)
