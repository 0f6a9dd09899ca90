"""Wiring of the dashboard: NATS (as service:dashboard, read-only) -> live feed and queries -> FastAPI on uvicorn.

`build` makes the ASGI app and connects nothing; its lifespan connects, starts the live feed and
stops both. `run` is the process: it binds 127.0.0.1 (the port from settings, 0 = a free one),
writes the address to the data directory, logs "dashboard is up on <url>" once it serves.
"""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from libs.bus import let_go
from libs.dashboard_ledger import TokenLedger
from libs.identities import IdentityStore
from libs.nats_auth import connect_options
from libs.service_catalogue import ServiceCatalogue
from libs.settings import Settings
from services.dashboard.address import HOST, remove_address, write_address
from services.dashboard.auth import Authenticator, login_routes
from services.dashboard.handlers import read_api
from services.dashboard.live import LiveFeed
from services.dashboard.metrics import DashboardMetrics
from services.dashboard.queries import NatsQueries

NAME = "dashboard"
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("slipway")


def build(settings: Settings) -> FastAPI:
    metrics = DashboardMetrics()
    feed = LiveFeed(metrics)
    queries = NatsQueries()
    registry = settings.identity_registry
    ledger = TokenLedger(registry.parent) if registry is not None else None
    authenticator = Authenticator(IdentityStore(registry.parent).get if registry is not None else None,
                                  revoked_at=ledger.revoked_at if ledger is not None else lambda _: None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        connection = await nats.connect(settings.nats_url, name=NAME, max_reconnect_attempts=-1,
                                        **connect_options(settings.credentials))
        queries.connection = connection
        try:
            await feed.start(connection)
            yield
        finally:
            await feed.stop()
            await let_go(connection)  # the server may be gone: then it is closed

    app = FastAPI(title="slipway dashboard", summary="Read API, Prometheus metrics and live page of slipway",
                  version="1", lifespan=lifespan,
                  # Swagger UI and ReDoc load their scripts from a CDN: nothing here is fetched from elsewhere.
                  docs_url=None, redoc_url=None)
    app.include_router(read_api(queries, feed, metrics, ServiceCatalogue.load(settings.service_catalogue), authenticator))
    app.include_router(login_routes(authenticator))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


class DashboardServer(uvicorn.Server):
    """uvicorn on 127.0.0.1 that says when it serves: after the lifespan started and the socket listens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((HOST, settings.dashboard_port))
        self.url = f"http://{HOST}:{self.socket.getsockname()[1]}"
        self.ready = asyncio.Event()
        # Open event streams would hold a graceful stop forever: they get two seconds, then are closed.
        super().__init__(uvicorn.Config(build(settings), log_level="warning", access_log=False,
                                        timeout_graceful_shutdown=2, lifespan="on"))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            write_address(self.settings.data_dir, self.socket.getsockname()[1])
            log.info("%s is up on %s (NATS %s)", NAME, self.url, self.settings.nats_url)
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Here, not after serve(): uvicorn re-raises a captured SIGTERM once serve() ends, which ends the process.
        remove_address(self.settings.data_dir)
        await super().shutdown(sockets)

    async def run_until_stopped(self) -> None:
        """Serve until SIGTERM/SIGINT (or `should_exit`); the address file goes when it stops serving."""
        await self.serve(sockets=[self.socket])


def run() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(DashboardServer(settings).run_until_stopped())
