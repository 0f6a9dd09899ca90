"""nats-server itself holds every identity to its rights: the real server, its real permission errors."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.js.api
import pytest

from contracts import subjects
from contracts.identity import Kind, Role
from libs.bus import ensure_streams
from libs.embedded_nats import EmbeddedNats
from libs.identities import IdentityStore
from libs.nats_auth import ADMIN, ONCALL, bootstrap, connect_options, write_authorization

SERVICES = ("artifact-verifier", "gatekeeper", "deployer", "health-watcher", "rollback-controller", "metrics-collector")
EXAMPLE = {
    "approval": "slipway.evt.gate.approved",
    "verdict": "slipway.evt.health.step_verdict",
    "rollback": "slipway.evt.rollback.requested",
    "step": "slipway.evt.deploy.step_started",
    "payments request": "slipway.evt.release.requested.payments.shop",
    "discovery request": "slipway.evt.release.requested.discovery.search",
    "payments evidence": "slipway.evt.evidence.submitted.payments.shop",
    "discovery evidence": "slipway.evt.evidence.submitted.discovery.all-services",
    "alert": "slipway.alert.critical.payments.shop",
    "freeze command": subjects.CMD_FREEZE,
}
# Who may publish what: everything else in EXAMPLE is refused by the server.
ALLOWED = {
    "service:gatekeeper": {"approval"},
    "service:health-watcher": {"verdict", "alert"},
    "service:rollback-controller": {"rollback"},
    "service:deployer": {"step", "alert"},
    "service:artifact-verifier": set(),
    "service:metrics-collector": set(),
    "service:dashboard": set(),  # it only watches
    "ci:payments": {"payments request", "payments evidence"},
    "ci:discovery": {"discovery request", "discovery evidence"},
    "oncall:default": set(),
    "person:rm": {"freeze command"},
}


@pytest.fixture
def identities(tmp_path: Path) -> IdentityStore:
    store = bootstrap(tmp_path, SERVICES, ("discovery", "payments"), person=None)
    store.create(Kind.PERSON, "rm", roles=(Role.RELEASE_MANAGER,), teams=("payments",))
    return store


@pytest.fixture
def secured(tmp_path: Path, identities: IdentityStore) -> Iterator[EmbeddedNats]:
    nats_dir = tmp_path / "nats"
    write_authorization(nats_dir, identities.registry())
    server = EmbeddedNats(nats_dir, authorization=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def streams(secured: EmbeddedNats, identities: IdentityStore) -> AsyncIterator[None]:
    await ensure_streams(secured.url, identities.seed_file(Kind.ADMIN, ADMIN))
    yield


async def attempt(url: str, seed: Path, subject: str) -> str:
    """'ok', or the server's permission error for a publish of `subject` as the identity in `seed`."""
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(exc)

    nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False, **connect_options(seed))
    try:
        await nc.publish(subject, b"{}")
        await nc.flush()
        try:
            refused = await asyncio.wait_for(errors.get(), timeout=1.0)
        except TimeoutError:
            return "ok"
        return str(refused)
    finally:
        await nc.close()


@pytest.mark.parametrize("identity", sorted(ALLOWED))
async def test_each_identity_publishes_exactly_what_its_role_needs(
    identity: str, secured: EmbeddedNats, identities: IdentityStore, streams: None,
) -> None:
    kind, name = identity.split(":")
    seed = identities.seed_file(kind, name)
    outcomes = {label: await attempt(secured.url, seed, subject) for label, subject in EXAMPLE.items()}
    for label, outcome in outcomes.items():
        if label in ALLOWED[identity]:
            assert outcome == "ok", f"{identity} should publish {label}: {outcome}"
        else:
            assert f'permissions violation for publish to "{EXAMPLE[label]}"' in outcome, (identity, label, outcome)


async def test_the_dashboard_reads_both_streams_through_ordered_consumers_but_no_durable(
    secured: EmbeddedNats, identities: IdentityStore, streams: None,
) -> None:
    admin = await nats.connect(secured.url, allow_reconnect=False, **connect_options(identities.seed_file(Kind.ADMIN, ADMIN)))
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    dashboard = await nats.connect(secured.url, allow_reconnect=False, error_cb=on_error,
                                   **connect_options(identities.seed_file(Kind.SERVICE, "dashboard")))
    try:
        seen: asyncio.Queue[str] = asyncio.Queue()

        async def on_message(msg: nats.aio.msg.Msg) -> None:
            seen.put_nowait(msg.subject)

        js = dashboard.jetstream()
        for stream, subject in ((subjects.EVENTS_STREAM, "slipway.evt.>"), (subjects.ALERTS_STREAM, "slipway.alert.>")):
            await js.subscribe(subject, stream=stream, cb=on_message, ordered_consumer=True,
                               deliver_policy=nats.js.api.DeliverPolicy.NEW)
        await admin.jetstream().publish(EXAMPLE["verdict"], b"{}")
        await admin.jetstream().publish(EXAMPLE["alert"], b"{}")
        got = {await asyncio.wait_for(seen.get(), timeout=5), await asyncio.wait_for(seen.get(), timeout=5)}
        assert got == {EXAMPLE["verdict"], EXAMPLE["alert"]}
        # Binding a service's durable is refused by the server (nats-py then waits for an answer in vain).
        with pytest.raises(nats.errors.TimeoutError):
            await js.subscribe("slipway.evt.>", stream=subjects.EVENTS_STREAM, durable="gatekeeper", cb=on_message)
        assert any("permissions violation for publish" in refusal and "gatekeeper" in refusal for refusal in refusals)
    finally:
        await dashboard.close()
        await admin.close()


async def test_a_client_without_an_identity_is_not_let_in(secured: EmbeddedNats) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(secured.url, allow_reconnect=False, connect_timeout=2)


async def test_a_service_cannot_read_another_services_inbox_or_change_the_streams(
    secured: EmbeddedNats, identities: IdentityStore, streams: None,
) -> None:
    seed = identities.seed_file(Kind.SERVICE, "deployer")
    assert "permissions violation for publish" in await attempt(secured.url, seed, "$JS.API.STREAM.DELETE.SLIPWAY_EVENTS")
    assert "permissions violation for publish" in await attempt(
        secured.url, seed, "$JS.API.CONSUMER.MSG.NEXT.SLIPWAY_EVENTS.gatekeeper"
    )
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(secured.url, error_cb=on_error, allow_reconnect=False, **connect_options(seed))
    try:
        await nc.subscribe("_INBOX.service-gatekeeper.>")
        await nc.flush()
        await asyncio.wait_for(_until(lambda: bool(errors)), timeout=2)
    finally:
        await nc.close()
    # nats-py lower-cases the server's error text.
    assert 'permissions violation for subscription to "_inbox.service-gatekeeper.>"' in str(errors[0]).lower()


async def test_a_revoked_identity_is_cut_off_when_the_server_reloads(
    secured: EmbeddedNats, identities: IdentityStore, tmp_path: Path,
) -> None:
    seed = identities.seed_file(Kind.ONCALL, ONCALL)
    kept = seed.read_bytes()
    identities.revoke("oncall:default")
    stolen = tmp_path / "oncall.default.nk"  # a copy the holder kept: the key is what is revoked, not the file
    stolen.write_bytes(kept)
    write_authorization(secured.data_dir, identities.registry())
    secured.reload()
    await asyncio.wait_for(_until_refused(secured.url, stolen), timeout=20)  # a loaded machine reloads slowly


async def _until_refused(url: str, seed: Path) -> None:
    while True:
        try:
            nc = await nats.connect(url, allow_reconnect=False, connect_timeout=1, **connect_options(seed))
        except nats.errors.Error as exc:
            assert "Authorization Violation" in str(exc)
            return
        except ConnectionResetError:
            # The server may drop the socket before its -ERR reaches us (seen under load): ask again for the reason.
            await asyncio.sleep(0.05)
            continue
        await nc.close()
        await asyncio.sleep(0.05)  # the reload is asynchronous in the server; poll with the caller's deadline


async def _until(condition) -> None:  # type: ignore[no-untyped-def]
    while not condition():
        await asyncio.sleep(0.02)  # polling a callback-filled list; the caller's wait_for bounds it
