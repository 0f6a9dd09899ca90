"""The demo scenario: a healthy v1, a faulty v2 caught and rolled back, a healthy v3 promoted.

Runs against a running stack (`slipway up --demo`) or starts its own (`slipway demo`), and
checks every outcome, so `make demo` exits 0 only when the system behaved as promised.
"""

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from contracts import subjects
from contracts.commands import QueryDora, QueryReleases, VerifyAudit
from contracts.envelope import new_event_id
from contracts.events import ReleaseRequested
from examples.build_sample import build as build_sample, sha256_of
from libs.bus import ensure_streams
from libs.client import connected, current_credentials, publish_event, send_command, use_credentials
from libs.identities import existing_seed
from contracts.identity import Kind
from libs.settings import Settings
from slipway.follow import follow_release
from slipway.render import dora_table, event_line
from slipway.supervisor import Stack

console = Console()
SERVICE, ENVIRONMENT, TEAM = "demo-shop", "prod", "payments"
INTERVAL_S = 2.0


class AlertInbox:
    """Alerts as they arrive on the alert stream; wait for the one about a release."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def on_message(self, msg: Any) -> None:
        async with self._arrived:
            self.alerts.append(json.loads(msg.data))
            self._arrived.notify_all()

    async def wait_for(self, release_id: str, timeout: float) -> dict[str, Any] | None:
        def about_release() -> dict[str, Any] | None:
            return next((a for a in self.alerts if a.get("release_id") == release_id), None)

        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: about_release() is not None)
        except TimeoutError:
            return None
        return about_release()


@dataclass
class Outcome:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, ok, detail))
        console.print(f"  {'[green]✔' if ok else '[red]✘'} {name}[/] {detail}")
        return ok

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def run_demo(nats_url: str | None, settings: Settings) -> bool:
    # The demo is the payments team's pipeline: it requests releases and reads what follows, as that CI identity.
    if nats_url is not None:
        use_credentials(existing_seed(settings.data_dir, Kind.CI, TEAM))
        return asyncio.run(scenario(nats_url, settings.data_dir / "demo-artifacts"))
    with tempfile.TemporaryDirectory(prefix="slipway-demo-") as scratch:
        console.print(f"[bold]Starting a self-contained stack in {scratch}[/]")
        with Stack(Path(scratch)) as stack:
            url = stack.nats_url
            use_credentials(existing_seed(Path(scratch), Kind.CI, TEAM))
            return asyncio.run(scenario(url, Path(scratch) / "demo-artifacts"))


async def scenario(nats_url: str, artifacts: Path) -> bool:
    await ensure_streams(nats_url, current_credentials())
    outcome = Outcome()
    stamp = int(time.time())
    v1, v2, v3 = (f"{n}.0.{stamp}" for n in (1, 2, 3))
    canary = {"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}], "analysis_interval_s": INTERVAL_S}
    alerts = AlertInbox()
    async with connected(nats_url) as nc:
        await nc.subscribe(subjects.alert_filter(None, TEAM, SERVICE), cb=alerts.on_message)
        await nc.flush()

        console.rule("v1: healthy, all at once")
        first = await ship(nats_url, artifacts, v1, {"kind": "all-at-once", "analysis_interval_s": INTERVAL_S})
        outcome.check("v1 deployed", first["type"] == "DeploymentSucceeded", first["type"])

        console.rule("v2: faulty (40% errors, +150 ms), as a canary")
        seen: list[dict[str, Any]] = []
        second = await ship(nats_url, artifacts, v2, canary, error_rate=0.4, latency_ms=150, seen=seen)
        outcome.check("v2 rolled back automatically", second["type"] == "RollbackCompleted", second.get("root_cause", ""))
        verdicts = [e for e in seen if e["type"] == "StepVerdict"]
        outcome.check("caught at the first canary step", bool(verdicts) and verdicts[0]["step_index"] == 0
                      and verdicts[0]["verdict"] == "fail")
        first_step = next((e for e in seen if e["type"] == "StepStarted"), None)
        if first_step and second["type"] == "RollbackCompleted":
            restore = _seconds(first_step["occurred_at"], second["occurred_at"])
            from_verdict = _seconds(second["failed_at"], second["occurred_at"])
            console.print(f"  time from the faulty canary's first step to RollbackCompleted: [bold]{restore:.2f} s[/] "
                          f"(of which {from_verdict:.2f} s from the failing verdict)")
        alert = await alerts.wait_for(second["release_id"], timeout=10)
        outcome.check("critical alert seen on the alert stream", alert is not None and alert["severity"] == "critical",
                      alert["summary"][:100] if alert else "none within 10 s")

        console.rule("v3: healthy, as a canary")
        third = await ship(nats_url, artifacts, v3, canary)
        outcome.check("v3 promoted to 100%", third["type"] == "DeploymentSucceeded", third["type"])

    console.rule("audit trail and DORA")
    logged = await _eventually_command(nats_url, third["release_id"])
    outcome.check("metrics-collector logged every release", logged)
    audit = await send_command(nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
    outcome.check("audit chain intact", audit.ok, audit.message)
    dora = await send_command(nats_url, subjects.CMD_DORA, QueryDora(service=SERVICE, environment=ENVIRONMENT))
    console.print(dora_table(dora.data))
    restores = {r["release_id"] for r in dora.data.get("restores", [])}
    outcome.check("DORA counts the failed change and its time to restore",
                  dora.ok and dora.data.get("failed_changes", 0) >= 1 and second["release_id"] in restores)
    outcome.check("DORA has lead times", bool(dora.data.get("lead_times")))
    console.rule("[green]every outcome matched" if outcome.ok else "[red]some outcomes did not match")
    return outcome.ok


async def ship(nats_url: str, artifacts: Path, version: str, strategy: dict, *, error_rate: float = 0.0,
               latency_ms: int = 0, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    artifact = build_sample(version, artifacts, error_rate=error_rate, extra_latency_ms=latency_ms)
    request = ReleaseRequested(
        event_id=new_event_id(), release_id=f"{SERVICE}-{version}", service=SERVICE, environment=ENVIRONMENT,
        actor="ci:demo", source="ci",
        version=version, team=TEAM, artifact={"uri": str(artifact), "digest": f"sha256:{sha256_of(artifact)}"},
        commit={"sha": f"{abs(hash(version)):x}"[:12].rjust(7, "0"), "committed_at": datetime.now(UTC) - timedelta(minutes=30)},
        strategy=strategy, requested_by="ci:demo",
    )

    def show(event: dict[str, Any]) -> None:
        if seen is not None:
            seen.append(event)
        console.print("  " + event_line(event))

    return await follow_release(nats_url, request.release_id, request.event_id, show,
                                publish=lambda: publish_event(nats_url, request), timeout=90)


async def _eventually_command(nats_url: str, release_id: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = await send_command(nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(release_id=release_id))
        if any(r.get("state") == "succeeded" for r in reply.data.get("releases", [])):
            return True
        await asyncio.sleep(0.2)  # the collector logs asynchronously; poll with a deadline
    return False


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
