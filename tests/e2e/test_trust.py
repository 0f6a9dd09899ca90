"""Only the pipeline changes production: forged approvals, verdicts and other teams' requests are refused,
by nats-server first and by the service that would act on them second, and the system keeps working."""

import json
from pathlib import Path

import pytest

from contracts import subjects
from contracts.envelope import new_event_id
from contracts.events import ReleaseApproved, StepVerdict
from contracts.identity import Kind
from contracts.release import ReleaseSpec
from examples.build_sample import build as build_sample
from libs.client import NotPermitted, publish_event, publish_raw
from libs.nats_auth import ADMIN
from libs.signing import Signer
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = pytest.mark.e2e


def forged_approval(request) -> ReleaseApproved:  # type: ignore[no-untyped-def]
    return ReleaseApproved(
        release_id=request.release_id, service=request.service, environment=request.environment,
        causation_id=request.event_id, actor="release-board", source="gatekeeper",
        release=ReleaseSpec.model_validate(request.model_dump()), reasons=["approved by a forger"],
    )


async def test_a_forged_approval_is_refused_by_the_server_and_again_by_the_deployer(stack: Stack, tmp_path: Path) -> None:
    artifact = build_sample("6.6.6", tmp_path / "artifacts")
    forged = forged_approval(release_for(artifact, "6.6.6"))
    body = forged.model_dump_json().encode()

    # The deployer's own key may not publish approvals: the server refuses it.
    with pytest.raises(NotPermitted, match='permissions violation for publish to "slipway.evt.gate.approved"'):
        await publish_raw(stack.nats_url, subjects.RELEASE_APPROVED, body, forged.headers(),
                          stack.credentials(Kind.SERVICE, "deployer"))

    async with EventWatcher(stack.nats_url) as watcher:
        # Were the server misconfigured (the operator's identity may publish anywhere), the deployer still
        # refuses: unsigned, signed by an identity that is not the gatekeeper, or altered after signing.
        admin = stack.credentials(Kind.ADMIN, ADMIN)
        await publish_raw(stack.nats_url, subjects.RELEASE_APPROVED, body, {**forged.headers()}, admin)
        genuine = Signer.from_seed_file(stack.credentials(Kind.SERVICE, "gatekeeper")).headers(
            subjects.RELEASE_APPROVED, b'{"something":"else"}')
        altered = forged.model_copy(update={"event_id": new_event_id()})
        await publish_raw_unsigned(stack, admin, altered, genuine)
        refusals = await watcher.wait_for(
            lambda _s, b: b.get("type") == "EventRefused" and b.get("consumer") == "deployer-approved", count=2)
        reasons = sorted(r["reason"] for r in refusals)
        assert any("admin:local may not publish ReleaseApproved" in r for r in reasons), reasons
        assert any("does not verify for service:gatekeeper" in r for r in reasons), reasons
        assert all(r["refused_type"] == "ReleaseApproved" and r["release_id"] == forged.release_id for r in refusals)
        # ... and tells the owning team's on-call at once.
        alert = await watcher.wait_type("AlertRaised", release_id=forged.release_id, severity="critical")
        assert alert["team"] == "payments" and "refused ReleaseApproved" in alert["summary"]

        # The pipeline itself still works with the restricted identities, and nothing ran the forged release.
        real = release_for(artifact, "1.0.0")
        await publish_event(stack.nats_url, real, ci_of(stack))
        await watcher.wait_type("DeploymentSucceeded", timeout=60, release_id=real.release_id)
        assert not watcher.matching(lambda _s, b: b.get("type") == "DeploymentStarted"
                                    and b.get("release_id") == forged.release_id)


async def publish_raw_unsigned(stack: Stack, admin: Path, event, signature_headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Publish `event` carrying a signature made for other bytes (publish_raw would sign it as admin)."""
    import nats

    from libs.nats_auth import connect_options

    nc = await nats.connect(stack.nats_url, **connect_options(admin))
    try:
        await nc.jetstream().publish(event.address(), event.model_dump_json().encode(),
                                     headers={**event.headers(), **signature_headers}, stream=subjects.EVENTS_STREAM)
    finally:
        await nc.close()


async def test_a_forged_passing_verdict_is_refused_by_the_deployer(stack: Stack, tmp_path: Path) -> None:
    verdict = StepVerdict(
        release_id="shop-x", service="shop", environment="prod", deployment_id="shop-x", step_index=0,
        version="9.9.9", stable_version="1.0.0", team="payments", verdict="pass", reasons=["looks fine to me"],
        requests=100, errors=0, error_rate=0.0, p99_latency_ms=1.0,
    )
    with pytest.raises(NotPermitted, match="permissions violation"):
        await publish_event(stack.nats_url, verdict, stack.credentials(Kind.SERVICE, "gatekeeper"))
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, verdict, stack.credentials(Kind.ADMIN, ADMIN))
        refused = await watcher.wait_for(lambda _s, b: b.get("type") == "EventRefused"
                                         and b.get("refused_event_id") == verdict.event_id, count=2)
    # Both readers of verdicts refuse it on their own: the deployer and the rollback-controller.
    assert {r["consumer"] for r in refused} == {"deployer-verdicts", "rollback-controller-verdicts"}


async def test_a_team_cannot_request_another_teams_service(stack: Stack, tmp_path: Path) -> None:
    artifact = build_sample("2.0.0", tmp_path / "artifacts")
    discovery = stack.credentials(Kind.CI, "discovery")
    theirs = release_for(artifact, "2.0.0")  # shop belongs to payments
    assert theirs.address() == "slipway.evt.release.requested.payments.shop"
    with pytest.raises(NotPermitted, match="permissions violation for publish to \"slipway.evt.release.requested"):
        await publish_event(stack.nats_url, theirs, discovery)

    async with EventWatcher(stack.nats_url) as watcher:
        # Under its own team's subject, naming itself as the team: the artifact-verifier checks the catalogue.
        disguised = release_for(artifact, "2.0.1", team="discovery")
        await publish_event(stack.nats_url, disguised, discovery)
        rejected = await watcher.wait_type("ReleaseRequestRejected", timeout=30, release_id=disguised.release_id)
        assert "service catalogue gives shop to team payments" in rejected["reason"]
        # Its own service goes through.
        own = release_for(artifact, "2.0.2", service="search", team="discovery")
        await publish_event(stack.nats_url, own, discovery)
        await watcher.wait_type("ArtifactVerified", timeout=30, release_id=own.release_id)
    assert not watcher.matching(lambda _s, b: b.get("type") == "ArtifactVerified"
                                and b.get("release_id") == disguised.release_id)
    assert json.loads(json.dumps(rejected))["causation_id"] == disguised.event_id
