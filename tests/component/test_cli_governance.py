"""`slipway change` and `slipway incident` run as a user runs them, signed by people in the data directory,
against a gatekeeper runtime with the change-record and incident commands."""

from pathlib import Path

from libs.settings import Settings
from tests.component.test_cli_identity import slipway
from tests.conftest import running
from tests.support.governance import governed_gatekeeper
from tests.support.watch import EventWatcher


async def people(data: Path) -> None:
    for name, roles in (("dev", "developer"), ("carol", "change-manager"), ("sam", "sre")):
        assert (await slipway(data, "identity", "create", name, "--roles", roles))[0] == 0


async def test_a_change_is_created_by_one_person_and_approved_by_another(
    settings: Settings, watcher: EventWatcher
) -> None:
    data, url = settings.data_dir, ["--nats-url", settings.nats_url]
    await people(data)
    async with running(governed_gatekeeper(settings).app):
        code, out, err = await slipway(data, "change", "create", "--summary", "shop 2.0", "--duration", "2h",
                                       "--risk", "high", "--as", "carol", *url)
        assert code == 0, err
        number = out.split()[-1]
        assert number == "CHG0000001" and "waiting for a change manager's approval" in out

        code, out, err = await slipway(data, "change", "approve", number, "--comment", "ok", "--as", "carol", *url)
        assert (code, err.strip()) == (1, f"error: refused: four-eyes: person:carol created change {number} "
                                          "and may not approve it")
        assert (await slipway(data, "identity", "create", "erin", "--roles", "change-manager"))[0] == 0
        code, out, err = await slipway(data, "change", "approve", number, "--comment", "ok", "--as", "erin", *url)
        assert code == 0, err
        assert (await watcher.wait_type("ChangeRecordApproved", number=number))["actor"] == "person:erin"

        code, out, err = await slipway(data, "change", "show", number, *url)
        assert code == 0, err
        assert "approved" in out and "person:erin" in out and "high" in out

        code, out, err = await slipway(data, "change", "create", "--summary", "x", "--duration", "soon", "--as", "dev",
                                       *url)
        assert code == 2 and "--duration must look like 30m, 2h, 1h30m or 1d, got 'soon'" in err
        code, out, err = await slipway(data, "change", "show", "CHG0000042", *url)
        assert (code, err.strip()) == (1, "error: no change record CHG0000042 in slipway")
    for output in (out, err):
        assert "Traceback" not in output


async def test_an_incident_is_opened_listed_and_resolved(settings: Settings, watcher: EventWatcher) -> None:
    data, url = settings.data_dir, ["--nats-url", settings.nats_url]
    await people(data)
    async with running(governed_gatekeeper(settings).app):
        code, out, err = await slipway(data, "incident", "open", "--environment", "prod", "--severity", "critical",
                                       "--summary", "payments down", "--as", "dev", *url)
        assert code == 0, err
        incident_id = out.split()[-1]
        assert (await watcher.wait_type("IncidentOpened", incident_id=incident_id))["actor"] == "person:dev"

        code, out, err = await slipway(data, "incident", "list", "--environment", "prod", *url)
        assert code == 0 and incident_id in out and "critical" in out, err

        code, out, err = await slipway(data, "incident", "open", "--environment", "prod", "--severity", "sev1",
                                       "--summary", "x", "--as", "dev", *url)
        assert code == 2 and "severity: Input should be 'info', 'warning', 'error' or 'critical'" in err

        code, out, err = await slipway(data, "incident", "resolve", incident_id, "--comment", "fixed", "--as", "sam",
                                       *url)
        assert code == 0, err
        await watcher.wait_type("IncidentResolved", incident_id=incident_id)
        code, out, err = await slipway(data, "incident", "list", *url)
        assert (code, out.strip()) == (0, "no open incidents")
