"""Incidents on the gatekeeper against a real nats-server and SQLite: people's signed open/resolve, and the
PagerDuty Events API v2 webhook over real HTTP with its HMAC signature."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from contracts import subjects
from contracts.governance import IncidentSeverity, ListIncidents, OpenIncident, ResolveIncident
from libs.client import send_command
from libs.settings import Settings
from services.gatekeeper import incident_store
from services.gatekeeper.pagerduty import SIGNATURE_HEADER, sign
from services.gatekeeper.webhook import port_file
from tests.conftest import running
from tests.support.governance import Governed, governed_gatekeeper
from tests.support.people import People
from tests.support.watch import EventWatcher

SECRET = "whsec-test-0123456789"


async def halting(governed: Governed, environment: str, at_least: IncidentSeverity) -> list[str]:
    async with governed.runtime.db.transaction() as tx:
        return [i.incident_id for i in await incident_store.open_incidents(tx.session, environment, at_least)]


async def test_people_open_and_resolve_incidents_and_the_query_sees_them(
    settings: Settings, watcher: EventWatcher, people: People
) -> None:
    governed = governed_gatekeeper(settings)
    async with running(governed.app):
        opened = await people.send("dev", subjects.CMD_OPEN_INCIDENT, OpenIncident(
            environment="prod", severity=IncidentSeverity.CRITICAL, summary="checkout returns 500", component="shop"))
        assert opened.ok, opened.message
        incident_id = opened.data["incident_id"]
        event = await watcher.wait_type("IncidentOpened", incident_id=incident_id)
        assert (event["actor"], event["environment"], event["severity"], event["origin"], event["component"]) == \
            ("person:dev", "prod", "critical", "slipway", "shop")
        assert event["signed_command"]["signer"] == "person:dev"
        assert await halting(governed, "prod", IncidentSeverity.ERROR) == [incident_id]
        assert await halting(governed, "staging", IncidentSeverity.INFO) == []

        listed = await send_command(settings.nats_url, subjects.CMD_LIST_INCIDENTS, ListIncidents(environment="prod"))
        assert [i["incident_id"] for i in listed.data["incidents"]] == [incident_id]

        resolve = ResolveIncident(incident_id=incident_id, comment="rolled back the config")
        by_developer = await people.send("dev", subjects.CMD_RESOLVE_INCIDENT, resolve)
        assert by_developer.message == "refused: role sre needed for resolve_incident; person:dev has developer"
        refusal = await watcher.wait_type("CommandRefused", about=incident_id, actor="person:dev")
        assert refusal["reason"] == "role sre needed for resolve_incident; person:dev has developer"
        assert await halting(governed, "prod", IncidentSeverity.INFO) == [incident_id]

        resolved = await people.send("sam", subjects.CMD_RESOLVE_INCIDENT, resolve)
        assert (resolved.ok, resolved.message) == (True, f"incident {incident_id} resolved by person:sam")
        event = await watcher.wait_type("IncidentResolved", incident_id=incident_id)
        assert (event["actor"], event["comment"], event["environment"]) == ("person:sam", "rolled back the config", "prod")
        assert await halting(governed, "prod", IncidentSeverity.INFO) == []

        again = await people.send("sam", subjects.CMD_RESOLVE_INCIDENT, resolve)
        assert again.ok is False and again.message.startswith(f"refused: incident {incident_id} was already resolved by "
                                                              "person:sam at ")
        refusal = await watcher.wait_type("CommandRefused", about=incident_id, actor="person:sam")
        assert refusal["environment"] == "prod"  # the handler knows the incident, so it names its environment
    assert len(watcher.matching(lambda _s, b: b.get("type") == "IncidentResolved")) == 1


# --- the webhook ---------------------------------------------------------------------------------


@pytest.fixture
async def webhook(settings: Settings) -> AsyncIterator[tuple[Governed, str]]:
    configured = Settings.model_validate({**settings.model_dump(), "incident_webhook_port": 0,
                                          "incident_webhook_secret": SECRET})
    governed = governed_gatekeeper(configured)
    async with running(governed.app):
        written = json.loads(port_file(settings.data_dir).read_text())
        assert written["url"] == f"http://127.0.0.1:{written['port']}/v2/enqueue"
        yield governed, written["url"]
    assert not port_file(settings.data_dir).exists()  # removed at stop: nobody is sent to a dead port


async def post(url: str, body: bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({SIGNATURE_HEADER: header} if header else {})
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, content=body, headers=headers)


async def signed_post(url: str, document: dict[str, Any]) -> httpx.Response:
    body = json.dumps(document).encode()
    return await post(url, body, sign(SECRET.encode(), body, int(time.time())))


TRIGGER = {
    "routing_key": "R0123456789abcdef0123456789abcdef", "event_action": "trigger", "dedup_key": "prom-db-down",
    "payload": {"summary": "primary database unreachable", "source": "prometheus-eu-1", "severity": "critical",
                "component": "orders-db", "custom_details": {"environment": "prod"}},
}


async def test_a_signed_trigger_opens_an_incident_once_and_a_resolve_closes_it(
    webhook: tuple[Governed, str], watcher: EventWatcher
) -> None:
    governed, url = webhook
    answer = await signed_post(url, TRIGGER)
    assert answer.status_code == 202, answer.text
    reply = answer.json()
    assert (reply["status"], reply["dedup_key"]) == ("success", "prom-db-down")
    incident_id = reply["incident_id"]
    event = await watcher.wait_type("IncidentOpened", incident_id=incident_id)
    assert (event["origin"], event["actor"], event["severity"], event["reported_by"], event["component"]) == \
        ("pagerduty", "webhook:pagerduty", "critical", "prometheus-eu-1", "orders-db")
    assert event["signed_command"] is None
    assert await halting(governed, "prod", IncidentSeverity.CRITICAL) == [incident_id]

    fired_again = {**TRIGGER, "payload": {**TRIGGER["payload"], "summary": "primary database still unreachable"}}
    repeat = await signed_post(url, fired_again)  # the monitoring tool fires again while the incident is open
    assert repeat.status_code == 202 and repeat.json()["incident_id"] == incident_id
    assert repeat.json()["message"] == f"incident {incident_id} is already open for this dedup_key"

    acknowledged = await signed_post(url, {"event_action": "acknowledge", "dedup_key": "prom-db-down"})
    assert acknowledged.status_code == 202
    assert await halting(governed, "prod", IncidentSeverity.CRITICAL) == [incident_id]

    resolved = await signed_post(url, {"event_action": "resolve", "dedup_key": "prom-db-down"})
    assert resolved.status_code == 202 and resolved.json()["message"] == f"incident {incident_id} resolved"
    event = await watcher.wait_type("IncidentResolved", incident_id=incident_id)
    assert (event["origin"], event["dedup_key"]) == ("pagerduty", "prom-db-down")
    assert await halting(governed, "prod", IncidentSeverity.INFO) == []
    assert len(watcher.matching(lambda _s, b: b.get("type") == "IncidentOpened")) == 1


async def refused(watcher: EventWatcher, answer: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.json()["message"] == reason
    event = await watcher.wait_type("IncidentWebhookRefused", reason=reason)
    assert (event["status"], event["remote_address"], event["source"]) == (status, "127.0.0.1", "gatekeeper")
    return event


@pytest.mark.parametrize(("header", "reason"), [
    (None, "unsigned: the X-Slipway-Signature header is missing (t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>)"),
    ("wrong", "bad signature: no v1 signature matches the body with the shared secret"),
])
async def test_a_call_without_a_good_signature_is_refused_with_the_reason_and_recorded(
    webhook: tuple[Governed, str], watcher: EventWatcher, header: str | None, reason: str
) -> None:
    governed, url = webhook
    body = json.dumps(TRIGGER).encode()
    signature = sign(b"not the shared secret", body, int(time.time())) if header == "wrong" else None
    await refused(watcher, await post(url, body, signature), 401, reason)
    assert await halting(governed, "prod", IncidentSeverity.INFO) == []
    assert not watcher.matching(lambda _s, b: b.get("type") == "IncidentOpened")


async def test_a_repeated_call_gets_its_first_answer_and_changes_nothing(
    webhook: tuple[Governed, str], watcher: EventWatcher
) -> None:
    governed, url = webhook
    trigger = json.dumps(TRIGGER).encode()
    captured = sign(SECRET.encode(), trigger, int(time.time()))
    first = await post(url, trigger, captured)
    incident_id = first.json()["incident_id"]
    assert (await signed_post(url, {"event_action": "resolve", "dedup_key": "prom-db-down"})).status_code == 202
    await watcher.wait_type("IncidentResolved", incident_id=incident_id)

    reordered = ",".join(reversed(captured.split(",")))  # the captured signature, its parts in another order
    replayed = await post(url, trigger, reordered)
    assert replayed.status_code == 202 and replayed.json()["incident_id"] == incident_id
    assert replayed.json()["message"] == f"a repeat of an earlier call: incident {incident_id} opened in prod"
    assert await halting(governed, "prod", IncidentSeverity.INFO) == []  # not reopened
    assert len(watcher.matching(lambda _s, b: b.get("type") == "IncidentOpened")) == 1


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not a PagerDuty Events API v2 event: (body): Invalid JSON: key must be a string at line 1 column 2"),
    (json.dumps({"event_action": "trigger", "dedup_key": "k1"}).encode(),
     "not a PagerDuty Events API v2 event: (body): Value error, a trigger needs a payload (summary, source, severity)"),
    (json.dumps({"event_action": "trigger", "dedup_key": "k2", "payload": {
        "summary": "x", "source": "y", "severity": "critical", "custom_details": {"environment": "PROD!"}}}).encode(),
     "not a PagerDuty Events API v2 event: payload.custom_details.environment 'PROD!' is not an environment name"),
])
async def test_a_malformed_payload_is_refused_with_the_reason_and_the_webhook_keeps_working(
    webhook: tuple[Governed, str], watcher: EventWatcher, body: bytes, reason: str
) -> None:
    governed, url = webhook
    event = await refused(watcher, await post(url, body, sign(SECRET.encode(), body, int(time.time()))), 400, reason)
    assert event["dedup_key"] == (json.loads(body)["dedup_key"] if body.startswith(b"{\"") else None)
    assert not watcher.matching(lambda _s, b: b.get("type") == "IncidentOpened")
    assert (await signed_post(url, TRIGGER)).status_code == 202


async def test_without_a_secret_every_call_is_refused(settings: Settings, watcher: EventWatcher) -> None:
    configured = settings.model_copy(update={"incident_webhook_port": 0})
    async with running(governed_gatekeeper(configured).app):
        url = json.loads(port_file(settings.data_dir).read_text())["url"]
        body = json.dumps(TRIGGER).encode()
        await refused(watcher, await post(url, body, sign(SECRET.encode(), body, int(time.time()))), 401,
                      "no webhook secret is configured (SLIPWAY_INCIDENT_WEBHOOK_SECRET): every call is refused")


async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    webhook: tuple[Governed, str], watcher: EventWatcher
) -> None:
    _, url = webhook
    body = json.dumps({**TRIGGER, "padding": "x" * 600_000}).encode()
    await refused(watcher, await post(url, body, sign(SECRET.encode(), body, int(time.time()))), 413,
                  "the body is larger than 524288 bytes")
