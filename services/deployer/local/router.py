"""Local weighted reverse proxy that stands in for a load balancer in front of a service.

    SLIPWAY_ROUTER_ADMIN_TOKEN=... python -m services.deployer.local.router --port P --admin-port A --state-file F

The public listener proxies every request to a backend picked by ``choose_backend``; the admin
listener lets the deployer change weights and read per-version error rates and latencies. Routes
are persisted to the state file so a restarted router carries on with the same traffic split.

Reading the admin listener is open (the health-watcher reads it); changing anything needs the
deployer's token, from the environment because argv is readable by every user in ``ps``. A call
without it is refused, counted and logged, and ``GET /refusals`` shows the count and the last ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path

# aiohttp builds a verifying TLS context when imported, reading the system's CA bundle: about 100 ms of a router's
# start. The router only speaks plain HTTP on 127.0.0.1, so it is pointed at no bundle before aiohttp is imported.
os.environ["SSL_CERT_FILE"] = os.devnull
os.environ["SSL_CERT_DIR"] = os.devnull

import aiohttp  # noqa: E402 - after the CA bundle is turned away
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from services.deployer.local.admin_auth import (
    MIN_TOKEN_LENGTH, RECENT_REFUSALS, TOKEN_ENV, Refusal, admin_refusal,
)
from services.deployer.local.routing import (
    PIN_HEADER, SERVED_BY_HEADER, Backend, Pilot, Sample, choose_backend, parse_backends, parse_pilot, summarise,
)

SAMPLE_BUFFER_SIZE = 50_000  # bounds memory; at demo rates this still covers many minutes
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Connection-scoped headers must not be forwarded (RFC 9110 §7.6.1); lengths are recomputed.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
)


class RouterState:
    def __init__(
        self, state_file: Path, backends: list[Backend], session: aiohttp.ClientSession, admin_token: str,
        pilot: Pilot | None = None,
    ) -> None:
        self.state_file = state_file
        self.backends = backends
        self.pilot = pilot
        self.session = session
        self.admin_token = admin_token
        self.samples: deque[Sample] = deque(maxlen=SAMPLE_BUFFER_SIZE)
        self.rng = random.Random()
        self.refused = 0
        self.recent_refusals: deque[Refusal] = deque(maxlen=RECENT_REFUSALS)
        # Requests being proxied per instance URL: the deployer stops an instance taken out of the routes
        # only once nothing is in flight to it (draining), so no request is cut off.
        self.in_flight: Counter[str] = Counter()

    def replace_routes(self, backends: list[Backend], pilot: Pilot | None) -> None:
        # Persist first: if the write fails the router keeps serving the routes it can restore.
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        document = {"backends": [b.to_dict() for b in backends], "pilot": pilot.to_dict() if pilot else None}
        tmp.write_text(json.dumps(document), "utf-8")
        os.replace(tmp, self.state_file)
        self.backends, self.pilot = backends, pilot


STATE = web.AppKey("state", RouterState)


def load_routes(state_file: Path) -> tuple[list[Backend], Pilot | None]:
    if not state_file.exists():
        return [], None
    try:
        document = json.loads(state_file.read_text("utf-8"))
        return parse_backends(document), parse_pilot(document.get("pilot"))
    except ValueError as err:  # json.JSONDecodeError is a ValueError too
        raise ValueError(f"cannot restore routes from {state_file}: {err}") from err


def forwardable(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    """End-to-end headers only; pairs rather than a dict so repeated ones (Set-Cookie) survive."""
    dropped = HOP_BY_HOP | {token.strip().lower() for value in headers.getall("Connection", [])
                            for token in value.split(",")}
    return [(name, value) for name, value in headers.items() if name.lower() not in dropped]


async def proxy(request: web.Request) -> web.Response:
    state = request.app[STATE]
    pilot = state.pilot
    in_pilot = pilot is not None and pilot.includes(request.headers.get(pilot.header), request.cookies.get(pilot.cookie))
    backend = choose_backend(state.backends, state.rng, request.headers.get(PIN_HEADER),
                             pilot.version if pilot is not None and in_pilot else None)
    if backend is None:
        return web.json_response({"error": "no backend has traffic weight"}, status=503)
    body = await request.read()
    started = time.perf_counter()
    url = backend.pick_url(state.rng)
    state.in_flight[url] += 1
    try:
        async with state.session.request(
            request.method,
            URL(url + request.raw_path, encoded=True),
            headers=forwardable(request.headers),
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.Response(
                status=upstream.status,
                body=await upstream.read(),
                headers=forwardable(upstream.headers),
            )
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        reason = f"backend {backend.version} failed: {err!r}"
        response = web.json_response({"error": reason}, status=502)
    finally:
        state.in_flight[url] -= 1
        if not state.in_flight[url]:
            del state.in_flight[url]
    latency_ms = (time.perf_counter() - started) * 1000
    state.samples.append(Sample(time.time(), backend.version, response.status < 500, latency_ms))
    response.headers[SERVED_BY_HEADER] = backend.version
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def routes_response(state: RouterState) -> web.Response:
    return web.json_response({"backends": [backend.to_dict() for backend in state.backends],
                              "pilot": state.pilot.to_dict() if state.pilot else None})


async def get_routes(request: web.Request) -> web.Response:
    return routes_response(request.app[STATE])


async def put_routes(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
    except ValueError as err:
        return web.json_response({"error": f"body is not valid JSON: {err}"}, status=400)
    try:
        backends = parse_backends(payload)
    except ValueError as err:
        return web.json_response({"error": str(err)}, status=400)
    state = request.app[STATE]
    return _replace(state, backends, state.pilot)


def _replace(state: RouterState, backends: list[Backend], pilot: Pilot | None) -> web.Response:
    try:
        state.replace_routes(backends, pilot)
    except OSError as err:
        return web.json_response({"error": f"could not persist routes: {err}"}, status=500)
    return routes_response(state)


async def put_pilot(request: web.Request) -> web.Response:
    """The pilot group's rule; it routes a request only while its version is one of the backends."""
    try:
        pilot = parse_pilot(await request.json())
    except ValueError as err:  # not JSON, or not a rule
        return web.json_response({"error": str(err)}, status=400)
    state = request.app[STATE]
    return _replace(state, state.backends, pilot)


async def delete_pilot(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _replace(state, state.backends, None)


async def refusals(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"count": state.refused,
                              "recent": [refusal.to_dict() for refusal in state.recent_refusals]})


# Everything that is not a read changes the router, so it needs the token, whatever the route.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def require_token(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.method in READ_METHODS:
        return await handler(request)
    state = request.app[STATE]
    reason = admin_refusal(request.headers.get("Authorization"), state.admin_token)
    if reason is None:
        return await handler(request)
    remote = request.remote or "unknown"
    state.refused += 1
    state.recent_refusals.append(Refusal(time.time(), remote, reason))
    print(f"refused {request.method} {request.path} from {remote}: {reason} "
          f"({state.refused} refused since start)", flush=True)
    return web.json_response({"error": f"refused: {reason}"}, status=401,
                             headers={"WWW-Authenticate": 'Bearer realm="slipway-router"'})


async def in_flight(request: web.Request) -> web.Response:
    return web.json_response({"in_flight": dict(request.app[STATE].in_flight)})


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        since = float(request.query.get("since", "0"))
    except ValueError:
        return web.json_response({"error": "since must be a unix timestamp"}, status=400)
    now = time.time()
    stats = summarise(list(state.samples), since, versions=[b.version for b in state.backends])
    versions = {version: item.to_dict() for version, item in stats.items()}
    return web.json_response({"now": now, "versions": versions})


def build_apps(state: RouterState) -> tuple[web.Application, web.Application]:
    """The public proxy app and the admin app, sharing one routing state."""
    public, admin = web.Application(), web.Application(middlewares=[require_token])
    public[STATE] = admin[STATE] = state
    public.router.add_route("*", "/{tail:.*}", proxy)
    admin.add_routes([web.get("/healthz", healthz), web.get("/routes", get_routes),
                      web.put("/routes", put_routes), web.get("/metrics", metrics),
                      web.put("/pilot", put_pilot), web.delete("/pilot", delete_pilot),
                      web.get("/refusals", refusals), web.get("/in-flight", in_flight)])
    return public, admin


async def run_router(
    port: int, admin_port: int, state_file: Path, backends: list[Backend], admin_token: str,
    pilot: Pilot | None = None,
) -> None:
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    # Decompression stays off so compressed bodies are passed through byte for byte.
    async with aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT, auto_decompress=False) as session:
        state = RouterState(state_file, backends, session, admin_token, pilot)
        # Short shutdown grace: the driver escalates to SIGKILL after a few seconds anyway.
        runners = [web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
                   for app in build_apps(state)]
        try:
            # Public first: once the admin /healthz answers, the public port is listening too.
            for runner, listen_port in zip(runners, (port, admin_port)):
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", listen_port).start()
            print(f"router proxying on 127.0.0.1:{port}, admin on 127.0.0.1:{admin_port}",
                  flush=True)
            await stop_requested.wait()
        finally:
            for runner in reversed(runners):
                await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="slipway local weighted router")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--state-file", type=Path, required=True)
    args = parser.parse_args(argv)
    admin_token = os.environ.get(TOKEN_ENV, "")
    if len(admin_token) < MIN_TOKEN_LENGTH:
        # An open admin listener would take weights from anyone on the machine.
        sys.exit(f"router failed to start: {TOKEN_ENV} must hold the deployer's admin token "
                 f"(at least {MIN_TOKEN_LENGTH} characters)")
    try:
        backends, pilot = load_routes(args.state_file)
    except ValueError as err:
        # Refuse to start rather than silently serve no routes after a restart.
        sys.exit(f"router failed to start: {err}")
    asyncio.run(run_router(args.port, args.admin_port, args.state_file, backends, admin_token, pilot))


if __name__ == "__main__":
    main()
