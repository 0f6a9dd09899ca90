"""Change records on the gatekeeper against a real nats-server and SQLite: slipway's own registry (signed
create/approve, four-eyes) and a ServiceNow Table API served by a small local HTTP server."""

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from contracts import subjects
from contracts.governance import ApproveChangeRecord, ChangeRisk, CreateChangeRecord, ShowChangeRecord
from contracts.identity import Role
from libs.client import send_command
from libs.embedded_nats import free_port
from libs.settings import Settings
from services.gatekeeper.changes import ChangeSourceUnavailable, ChangeState, deployment_allowed
from services.gatekeeper.servicenow import ServiceNowChangeRecords
from services.metrics_collector.app import build as collector
from tests.conftest import running
from tests.support.governance import governed_gatekeeper
from tests.support.audit import audit_once_logged
from tests.support.people import People
from tests.support.watch import EventWatcher


def window(hours: float = 2) -> CreateChangeRecord:
    now = datetime.now(UTC)
    return CreateChangeRecord(summary="Upgrade shop to 2.0", starts_at=now - timedelta(minutes=5),
                              ends_at=now + timedelta(hours=hours), risk=ChangeRisk.HIGH)


@pytest.fixture
def managers(people: People) -> People:
    people.add("carol", Role.CHANGE_MANAGER)
    people.add("erin", Role.CHANGE_MANAGER)
    return people


async def test_a_change_is_created_approved_by_another_change_manager_and_then_allows_deployments(
    settings: Settings, watcher: EventWatcher, managers: People
) -> None:
    governed = governed_gatekeeper(settings)
    async with running(governed.app), running(collector(settings)):
        created = await managers.send("dev", subjects.CMD_CREATE_CHANGE, window())
        assert created.ok, created.message
        number = created.data["number"]
        assert number == "CHG0000001"
        event = await watcher.wait_type("ChangeRecordCreated", number=number)
        assert (event["actor"], event["correlation_id"], event["risk"]) == ("person:dev", number, "high")
        assert "release_id" not in event and event["schema_version"] == 2  # a change record is not a release
        assert event["signed_command"]["signer"] == "person:dev"
        pending = await governed.changes.get(number)
        assert pending is not None and (pending.state, pending.approval) == (ChangeState.AUTHORIZE, "requested")
        assert deployment_allowed(pending, number, datetime.now(UTC)).reason == \
            f"change {number} is not approved (approval: requested, state: authorize)"

        approved = await managers.send("erin", subjects.CMD_APPROVE_CHANGE,
                                        ApproveChangeRecord(number=number, comment="rollback plan checked"))
        assert (approved.ok, approved.message) == (True, f"change {number} approved by person:erin")
        event = await watcher.wait_type("ChangeRecordApproved", number=number)
        assert (event["actor"], event["comment"]) == ("person:erin", "rollback plan checked")
        change = await governed.changes.get(number)
        assert change is not None and change.approved and change.approved_by == "person:erin"
        assert deployment_allowed(change, number, datetime.now(UTC)).allowed

        shown = await send_command(settings.nats_url, subjects.CMD_SHOW_CHANGE, ShowChangeRecord(number=number))
        assert shown.ok and shown.data["change"]["approval"] == "approved"
        assert shown.data["change"]["requested_by"] == "person:dev"

        # The audit re-verifies both signed commands and finds them the causes of their events.
        report = await audit_once_logged(settings.nats_url, 2, "both change events logged")
        assert report.ok and report.data["unverified_count"] == 0, report.message


async def refused(watcher: EventWatcher, answer: Any, reason: str, actor: str, number: str) -> None:
    assert (answer.ok, answer.message) == (False, f"refused: {reason}")
    event = await watcher.wait_type("CommandRefused", reason=reason)
    assert (event["actor"], event["about"], event["source"]) == (actor, number, "gatekeeper")


async def test_four_eyes_and_other_bad_approvals_are_refused_and_recorded(
    settings: Settings, watcher: EventWatcher, managers: People
) -> None:
    governed = governed_gatekeeper(settings)
    async with running(governed.app):
        number = (await managers.send("carol", subjects.CMD_CREATE_CHANGE, window())).data["number"]
        approve = ApproveChangeRecord(number=number, comment="looks fine to me")

        own = await managers.send("carol", subjects.CMD_APPROVE_CHANGE, approve)
        await refused(watcher, own, f"four-eyes: person:carol created change {number} and may not approve it",
                      "person:carol", number)
        by_developer = await managers.send("dev", subjects.CMD_APPROVE_CHANGE, approve)
        await refused(watcher, by_developer, "role change-manager needed for approve_change; person:dev has developer",
                      "person:dev", number)
        unknown = await managers.send("erin", subjects.CMD_APPROVE_CHANGE, approve.model_copy(update={"number": "CHG0000099"}))
        await refused(watcher, unknown, "no change record CHG0000099 in slipway's registry", "person:erin", "CHG0000099")
        change = await governed.changes.get(number)
        assert change is not None and not change.approved  # nothing changed
        assert not watcher.matching(lambda _s, b: b.get("type") == "ChangeRecordApproved")

        assert (await managers.send("erin", subjects.CMD_APPROVE_CHANGE, approve)).ok
        again = await managers.send("erin", subjects.CMD_APPROVE_CHANGE, approve)
        await refused(watcher, again, f"change {number} was already approved by person:erin", "person:erin", number)

        past = CreateChangeRecord(summary="too late", starts_at=datetime.now(UTC) - timedelta(hours=2),
                                  ends_at=datetime.now(UTC) - timedelta(hours=1))
        late = await managers.send("dev", subjects.CMD_CREATE_CHANGE, past)
        assert late.ok is False and late.message.startswith("refused: the implementation window would already be over")
    assert len(watcher.matching(lambda _s, b: b.get("type") == "ChangeRecordCreated")) == 1


# --- ServiceNow --------------------------------------------------------------------------------

USER, PASSWORD = "slipway-integration", "pa55word"


def snow(value: str, display: str | None = None) -> dict[str, str]:
    return {"value": value, "display_value": value if display is None else display}


CHANGES = {
    "CHG0030001": {
        "number": snow("CHG0030001"), "state": snow("-1", "Implement"), "approval": snow("approved", "Approved"),
        "type": snow("normal", "Normal"), "risk": snow("2", "High"),
        "short_description": snow("Shop 2.0 to production"),
    },
    "CHG0030002": {
        "number": snow("CHG0030002"), "state": snow("-3", "Authorize"), "approval": snow("requested", "Requested"),
        "start_date": snow("2026-11-28 10:00:00", "28.11.2026 11:00:00"),
        "end_date": snow("2026-11-28 12:00:00", "28.11.2026 13:00:00"), "type": snow("normal", "Normal"),
        "risk": snow("4", "Low"),
    },
}


@pytest.fixture
async def servicenow() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A Table API that answers change_request queries as ServiceNow shapes them, for basic auth USER/PASSWORD."""
    seen: list[dict[str, str]] = []
    now = datetime.now(UTC)
    # The implemented change's window covers the test's run; dates as ServiceNow stores them (UTC).
    CHANGES["CHG0030001"]["start_date"] = snow((now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))
    CHANGES["CHG0030001"]["end_date"] = snow((now + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))

    async def table(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": {"message": "User Not Authenticated"}, "status": "failure"}, status=401)
        query = request.query.get("sysparm_query", "")
        number = query.removeprefix("number=")
        fields = request.query.get("sysparm_fields", "").split(",")
        found = [{k: v for k, v in CHANGES[number].items() if k in fields}] if number in CHANGES else []
        return web.json_response({"result": found})

    app = web.Application()
    app.router.add_get("/api/now/table/change_request", table)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_the_servicenow_connector_reads_change_requests(servicenow: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = servicenow
    records = ServiceNowChangeRecords(url, user=USER, password=PASSWORD)
    change = await records.get("CHG0030001")
    assert change is not None
    assert (change.source, change.state, change.approval, change.type, change.risk, change.summary) == \
        ("servicenow", ChangeState.IMPLEMENT, "approved", "normal", "high", "Shop 2.0 to production")
    assert deployment_allowed(change, "CHG0030001", datetime.now(UTC)).allowed
    assert seen[-1]["sysparm_query"] == "number=CHG0030001" and seen[-1]["sysparm_display_value"] == "all"

    waiting = await records.get("CHG0030002")
    assert waiting is not None and waiting.starts_at == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert deployment_allowed(waiting, "CHG0030002", datetime.now(UTC)).reason == \
        "change CHG0030002 is not approved (approval: requested, state: authorize)"
    assert await records.get("CHG0039999") is None

    with pytest.raises(ChangeSourceUnavailable, match=r"ServiceNow refused slipway's credentials \(HTTP 401\)"):
        await ServiceNowChangeRecords(url, user=USER, password="wrong").get("CHG0030001")
    with pytest.raises(ChangeSourceUnavailable, match="is unreachable"):
        await ServiceNowChangeRecords(f"http://127.0.0.1:{free_port()}", user=USER, password=PASSWORD).get("CHG0030001")


async def test_with_servicenow_as_the_source_the_gatekeeper_shows_its_changes_and_refuses_to_create_them(
    settings: Settings, watcher: EventWatcher, managers: People, servicenow: tuple[str, list[dict[str, str]]]
) -> None:
    url, _ = servicenow
    configured = settings.model_copy(update={"change_source": "servicenow", "servicenow_url": url,
                                             "servicenow_user": USER, "servicenow_password": PASSWORD})
    configured = Settings.model_validate(configured.model_dump())  # the password as a SecretStr, as read from the env
    governed = governed_gatekeeper(configured)
    async with running(governed.app):
        shown = await send_command(settings.nats_url, subjects.CMD_SHOW_CHANGE, ShowChangeRecord(number="CHG0030001"))
        assert shown.ok, shown.message
        assert (shown.data["change"]["source"], shown.data["change"]["state"]) == ("servicenow", "implement")
        missing = await send_command(settings.nats_url, subjects.CMD_SHOW_CHANGE, ShowChangeRecord(number="CHG0000404"))
        assert (missing.ok, missing.message) == (False, "no change record CHG0000404 in servicenow")

        created = await managers.send("dev", subjects.CMD_CREATE_CHANGE, window())
        reason = "change records come from servicenow here (SLIPWAY_CHANGE_SOURCE): create the change there"
        assert (created.ok, created.message) == (False, f"refused: {reason}")
        await watcher.wait_type("CommandRefused", reason=reason)
