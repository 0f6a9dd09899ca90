"""The incident webhook: PagerDuty Events API v2 events over HTTP, on 127.0.0.1 only.

    POST http://127.0.0.1:<SLIPWAY_INCIDENT_WEBHOOK_PORT>/v2/enqueue
    X-Slipway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The path is PagerDuty's own, so a tool that sends to PagerDuty can send here unchanged but for the
host and the signature. Answers as PagerDuty does (202 {"status": "success", "dedup_key": ...},
400 {"status": "invalid event", "errors": [...]}); a call that is not signed with the shared secret
gets 401. Every refusal is also an IncidentWebhookRefused event. Reach it from elsewhere through a
reverse proxy that terminates TLS; it never listens beyond loopback.
"""

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from libs.bus import describe
from libs.settings import Settings
from services.gatekeeper.incident_commands import IncidentHandlers
from services.gatekeeper.pagerduty import SIGNATURE_HEADER, PagerDutyEvent, signature_refusal

log = logging.getLogger("slipway.gatekeeper.webhook")
HOST = "127.0.0.1"
PATH = "/v2/enqueue"
MAX_BODY = 512 * 1024  # PagerDuty's own limit on one event
PORT_FILE = "gatekeeper-incident-webhook.json"


def port_file(data_dir: Path) -> Path:
    """Where the running webhook writes its port and URL (a test, or `slipway up`, reads it there)."""
    return data_dir / PORT_FILE


class IncidentWebhook:
    def __init__(self, settings: Settings, handlers: IncidentHandlers) -> None:
        self.settings, self.handlers = settings, handlers
        secret = settings.incident_webhook_secret
        self.secret = secret.get_secret_value().encode() if secret else None
        self.window_s = settings.command_window_s
        # (timestamp, body) of each accepted call -> (until when it is kept, the answer it got)
        self._answered: dict[str, tuple[float, dict[str, str | None]]] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{PATH}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(PATH, self.receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.settings.incident_webhook_port or 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        port_file(self.settings.data_dir).write_text(json.dumps({"url": self.url, "port": self.port, "pid": os.getpid()}))
        log.info("incident webhook listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            port_file(self.settings.data_dir).unlink(missing_ok=True)

    async def receive(self, request: web.Request) -> web.Response:
        remote = request.remote or "unknown"
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return await self._refuse(f"the body is larger than {MAX_BODY} bytes", 413, remote)
        now = time.time()
        header = request.headers.get(SIGNATURE_HEADER)
        if problem := signature_refusal(self.secret, header, body, now, self.window_s):
            return await self._refuse(problem, 401, remote)
        # A sender's retry and a captured call replayed look the same: either gets the first answer, and
        # nothing happens twice (a replayed trigger cannot reopen a resolved incident, nor a resolve close a new one).
        key = _replay_key(header or "", body)
        if (earlier := self._earlier_answer(key, now)) is not None:
            return web.json_response({**earlier, "message": f"a repeat of an earlier call: {earlier['message']}"},
                                     status=202)
        try:
            event = PagerDutyEvent.model_validate_json(body)
            environment = event.environment(self.settings.incident_default_environment)
        except ValidationError as invalid:
            return await self._refuse(f"not a PagerDuty Events API v2 event: {describe(invalid)}", 400, remote,
                                      _loose_dedup_key(body))
        except (ValueError, RecursionError) as unreadable:
            return await self._refuse(f"not a PagerDuty Events API v2 event: {unreadable}", 400, remote,
                                      _loose_dedup_key(body))
        outcome = await self.handlers.on_pagerduty(event, environment)
        answer = {"status": "success", "message": outcome.message, "dedup_key": outcome.dedup_key,
                  "incident_id": outcome.incident_id}
        # Kept while the signature's timestamp could still pass the window check (a window either side).
        self._answered[key] = (now + 2 * self.window_s, answer)
        return web.json_response(answer, status=202)

    def _earlier_answer(self, key: str, now: float) -> dict[str, str | None] | None:
        self._answered = {seen: kept for seen, kept in self._answered.items() if kept[0] > now}
        kept = self._answered.get(key)
        return kept[1] if kept else None

    async def _refuse(self, reason: str, status: int, remote: str, dedup_key: str | None = None) -> web.Response:
        log.warning("incident webhook refused a call from %s (%d): %s", remote, status, reason)
        await self.handlers.webhook_refused(reason, status, remote, dedup_key)
        kind = "invalid event" if status == 400 else "unauthorized" if status == 401 else "refused"
        return web.json_response({"status": kind, "message": reason, "errors": [reason]}, status=status)


def _replay_key(header: str, body: bytes) -> str:
    """One key per signed (timestamp, body), however the header's parts are ordered or repeated."""
    stamp = next((part.strip()[2:] for part in header.split(",") if part.strip().startswith("t=")), "")
    return f"{stamp}:{hashlib.sha256(body).hexdigest()}"


def _loose_dedup_key(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    key = value.get("dedup_key") if isinstance(value, dict) else None
    return key[:255] if isinstance(key, str) else None
