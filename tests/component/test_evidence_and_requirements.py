"""The gatekeeper against a real nats-server: evidence lets a release waiting on a promotion gate go; a release
waits for the versions it requires and for a service tied to it to finish deploying; a team's CI cannot vouch
for another team's service (the server holds it to its team, the gatekeeper to the catalogue's services)."""

import json
from pathlib import Path

import pytest

from contracts import subjects
from contracts.events import ALL_SERVICES, DeploymentSucceeded, EvidenceSubmitted
from contracts.governance import ListEvidence, ListInventory
from contracts.identity import Kind
from libs.client import NotPermitted, publish_event, send_command
from libs.embedded_nats import EmbeddedNats
from libs.identities import IdentityStore
from libs.nats_auth import ADMIN
from libs.settings import Settings
from services.gatekeeper.app import build
# The secured server, its identities (ci:payments, ci:discovery, every service) and streams.
from tests.component.test_bus_permissions import identities, secured, streams  # noqa: F401 - fixtures
from tests.component.test_release_workflow import artifact, of, verified  # noqa: F401 - `artifact` is a fixture
from tests.conftest import TEST_CATALOGUE, running
from tests.support.policies import policy_for_tests
from tests.support.watch import EventWatcher

GATED = "environments:\n  prod:\n    evidence: [performance]\n    on_missing: queue\n"


def evidence(digest: str, outcome: str = "pass", team: str = "payments", service: str = "shop") -> EvidenceSubmitted:
    return EvidenceSubmitted(release_id=digest, service=service, environment="staging", team=team, digest=digest,
                             kind="performance", outcome=outcome, url=f"https://ci.example/{team}/{outcome}",
                             actor=f"ci:{team}")


def live(service: str, version: str) -> DeploymentSucceeded:
    return DeploymentSucceeded(release_id=f"{service}-{version}", service=service, environment="prod",
                               version=version, previous_version=None, source="deployer")


async def test_evidence_lets_a_release_waiting_on_a_promotion_gate_go(
    settings: Settings, watcher: EventWatcher, artifact: Path, tmp_path: Path  # noqa: F811
) -> None:
    settings = settings.model_copy(update={"policy_dir": policy_for_tests(tmp_path / "gated", promotion=GATED)})
    shop = verified(artifact, "2.0.0")
    digest = shop.release.artifact.digest
    async with running(build(settings)):
        await publish_event(settings.nats_url, shop)
        [waiting] = await watcher.wait_for(of(shop.release_id, "ReleaseWaiting"))
        assert waiting["waiting_for"] == "waiting-for-promotion"
        assert waiting["summary"] == f"promotion gate of prod: waits for no performance evidence for {digest}"

        # A failing run is recorded and named; the release keeps waiting.
        await publish_event(settings.nats_url, evidence(digest, "fail"))
        [_, failed] = await watcher.wait_for(of(shop.release_id, "ReleaseWaiting"), count=2)
        assert "latest performance evidence" in failed["summary"] and "https://ci.example/payments/fail" in failed["summary"]

        # Another team's passing run of the same bytes does not vouch for payments' release; payments' own does.
        await publish_event(settings.nats_url, evidence(digest, team="discovery", service=ALL_SERVICES))
        passing = evidence(digest)
        await publish_event(settings.nats_url, passing)
        approved = await watcher.wait_type("ReleaseApproved", release_id=shop.release_id)
        # `slipway evidence list` shows what the gate judged, newest first, "any" service where none was named.
        listed = await send_command(settings.nats_url, subjects.CMD_LIST_EVIDENCE, ListEvidence(digest=digest))
        assert [(e["team"], e["service"], e["outcome"]) for e in listed.data["evidence"]] == [
            ("payments", "shop", "pass"), ("discovery", None, "pass"), ("payments", "shop", "fail")]
    arrived = {body.get("event_id"): at for (_, body), at in zip(watcher.seen, watcher.arrived, strict=True)}
    print(f"approved {1000 * (arrived[approved['event_id']] - arrived[passing.event_id]):.0f} ms after the evidence")
    [promotion] = [r for r in approved["rules"] if r["rule"] == "promotion"]
    assert promotion == {"rule": "promotion", "effect": "pass", "until": None,
                         "reason": "promotion gate of prod passed: performance passed"}
    assert len(watcher.matching(of(shop.release_id, "ReleaseWaiting"))) == 2


async def test_a_release_waits_for_its_requirement_until_the_required_version_is_deployed(
    settings: Settings, watcher: EventWatcher, artifact: Path  # noqa: F811
) -> None:
    shop = verified(artifact, "2.0.0", requires=[{"service": "ledger", "versions": ">=2.1,<3"}])
    async with running(build(settings)):
        await publish_event(settings.nats_url, shop)
        [waiting] = await watcher.wait_for(of(shop.release_id, "ReleaseWaiting"))
        assert waiting["waiting_for"] == "waiting-for-requirements"
        assert waiting["summary"] == "requires ledger >=2.1,<3 in prod, but no version of ledger is live there"

        await publish_event(settings.nats_url, live("ledger", "2.0.0"))
        [_, older] = await watcher.wait_for(of(shop.release_id, "ReleaseWaiting"), count=2)
        assert older["summary"] == "requires ledger >=2.1,<3 in prod; live is ledger 2.0.0"

        await publish_event(settings.nats_url, live("ledger", "2.1.0"))
        approved = await watcher.wait_type("ReleaseApproved", release_id=shop.release_id)
        inventory = await send_command(settings.nats_url, subjects.CMD_LIST_INVENTORY, ListInventory())
        assert [(r["environment"], r["service"], r["version"]) for r in inventory.data["live"]] == [
            ("prod", "ledger", "2.1.0")]
        elsewhere = await send_command(settings.nats_url, subjects.CMD_LIST_INVENTORY, ListInventory(environment="dev"))
        assert elsewhere.ok and elsewhere.data["live"] == []
    [rule] = [r for r in approved["rules"] if r["rule"] == "requirements"]
    assert rule["reason"] == "requirements live in prod: ledger 2.1.0 (>=2.1,<3)"


async def test_a_release_tied_to_one_in_flight_waits_until_that_deployment_ends(
    settings: Settings, watcher: EventWatcher, artifact: Path  # noqa: F811
) -> None:
    # stock, not ledger: the committed promotion policy gates ledger's way into prod.
    stock = verified(artifact, "2.2.0", service="stock")
    shop = verified(artifact, "2.0.0", requires=[{"service": "stock", "versions": ">=2"}])
    async with running(build(settings)):
        await publish_event(settings.nats_url, live("stock", "2.1.0"))
        await publish_event(settings.nats_url, stock)
        await watcher.wait_type("ReleaseApproved", release_id=stock.release_id)  # in flight from here on
        await publish_event(settings.nats_url, shop)
        [waiting] = await watcher.wait_for(of(shop.release_id, "ReleaseWaiting"))
        assert waiting["waiting_for"] == "waiting-for-requirements"
        assert waiting["summary"] == (f"shop and stock ({stock.release_id}) depend on each other and the latter is "
                                      "being deployed to prod: waits until it ends")
        await publish_event(settings.nats_url, DeploymentSucceeded.caused_by(
            stock, "deployer", version="2.2.0", previous_version="2.1.0"))
        approved = await watcher.wait_type("ReleaseApproved", release_id=shop.release_id)
    [rule] = [r for r in approved["rules"] if r["rule"] == "requirements"]
    assert rule["reason"] == "requirements live in prod: stock 2.2.0 (>=2)"


# --- a team's CI and another team's services, on a secured bus --------------------------------------

async def test_a_ci_identity_cannot_submit_evidence_for_another_teams_service(
    secured: EmbeddedNats, identities: IdentityStore, streams: None, tmp_path: Path, artifact: Path  # noqa: F811
) -> None:
    admin = identities.seed_file(Kind.ADMIN, ADMIN)
    settings = Settings(nats_url=secured.url, data_dir=tmp_path / "data", service_catalogue=TEST_CATALOGUE,
                        identity_registry=identities.registry_path, credentials=identities.seed_file(Kind.SERVICE, "gatekeeper"),
                        policy_dir=policy_for_tests(tmp_path / "policies"))
    discovery_ci = identities.seed_file(Kind.CI, "discovery")
    digest = verified(artifact, "1.0.0").release.artifact.digest
    async with EventWatcher(secured.url, admin) as watcher, running(build(settings)):
        # The server: discovery's pipeline may not publish under team payments at all.
        with pytest.raises(NotPermitted, match="slipway.evt.evidence.submitted.payments.shop"):
            await publish_event(secured.url, evidence(digest), discovery_ci)
        # The gatekeeper: under its own team, it may not vouch for a service the catalogue gives to payments.
        forged = evidence(digest, team="discovery", service="ledger")
        await publish_event(secured.url, forged, discovery_ci)
        refused = await watcher.wait_type("EventRefused", refused_event_id=forged.event_id)
        assert refused["reason"] == ("ci:discovery may not submit evidence for ledger: "
                                     "the service catalogue gives it to team payments")
        assert refused["claimed_signer"] == "ci:discovery"
        # Its own service is accepted (nothing refused it, the audit trail has it).
        own = evidence(digest, team="discovery", service="search")
        await publish_event(secured.url, own, discovery_ci)
        await watcher.wait_type("EvidenceSubmitted", event_id=own.event_id)
    assert not watcher.matching(lambda _s, b: b.get("type") == "EventRefused" and b.get("refused_event_id") == own.event_id)


# --- the CLI, as a CI job runs it ----------------------------------------------------------------

async def test_the_cli_submits_a_cdevent_as_evidence_and_refuses_one_it_cannot_read(
    nats_url: str, watcher: EventWatcher, tmp_path: Path, artifact: Path  # noqa: F811
) -> None:
    from tests.component.test_cli import slipway
    from tests.unit.test_requirements_and_evidence import cdevent

    digest = verified(artifact, "1.0.0").release.artifact.digest
    document = cdevent(outcome="fail", reason="p99 over 300 ms")
    document["customData"] = {"digest": digest, "kind": "performance"}
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(document))
    code, out, err = await slipway("evidence", "submit", "--cdevent", str(run_file), "--service", "shop",
                                   "--nats-url", nats_url, data_dir=tmp_path / "cli")
    assert code == 0, err
    assert f"published performance evidence (fail) for {digest}: team payments, service shop" in " ".join(out.split())
    submitted = await watcher.wait_type("EvidenceSubmitted", digest=digest)
    [subject] = [s for s, b in watcher.seen if b is submitted]
    assert subject == "slipway.evt.evidence.submitted.payments.shop"
    assert (submitted["team"], submitted["environment"], submitted["test_suite"], submitted["reason"]) == (
        "payments", "staging", "load test", "p99 over 300 ms")

    run_file.write_text(json.dumps({**document, "context": {"type": "dev.cdevents.build.finished.0.2.0"}}))
    code, _, err = await slipway("evidence", "submit", "--cdevent", str(run_file), "--team", "payments",
                                 "--nats-url", nats_url, data_dir=tmp_path / "cli")
    assert code == 2 and "not dev.cdevents.testsuiterun.finished.<version>" in " ".join(err.split())
    assert len(watcher.matching(lambda _s, b: b.get("type") == "EvidenceSubmitted")) == 1
