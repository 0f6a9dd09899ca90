"""The `slipway` command as a user runs it (the installed console script), against a real nats-server."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from contracts.commands import ListFreezes
from contracts.subjects import ALERTS_STREAM, CMD_LIST_FREEZES, EVENTS_STREAM, alert_subject
from libs.bus import ensure_streams
from libs.client import send_command
from libs.embedded_nats import free_port
from libs.client import use_credentials
from libs.nats_auth import ONCALL
from contracts.identity import Kind
from slipway.supervisor import SERVICES, Stack
from tests.support.poll import eventually_sync
from tests.support.releases import digest_of
from tests.support.watch import EventWatcher

SLIPWAY = str(Path(sys.executable).parent / "slipway")
REPO = Path(__file__).resolve().parents[2]
ALL_SERVICES_PRESENT = all((REPO / "services" / name / "__main__.py").exists() for name in SERVICES)
needs_services = pytest.mark.skipif(not ALL_SERVICES_PRESENT, reason="services not all present yet")

RELEASE_FLAGS = ["--service", "shop", "--environment", "prod", "--version", "1.2.3", "--team", "payments",
                 "--commit", "abc1234", "--committed-at", "2026-01-02T03:04:05Z", "--requested-by", "ci:test"]


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "SLIPWAY_NATS_URL")}
    env["SLIPWAY_DATA_DIR"] = str(data_dir)
    return env


async def slipway(*args: str, data_dir: Path, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        SLIPWAY, *args, env=cli_env(data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def stored_messages(nats_url: str, stream: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "shop.pyz"
    path.write_bytes(b"the artifact bytes")
    return path


async def test_release_request_no_wait_publishes_the_request(
    nats_url: str, watcher: EventWatcher, artifact: Path, tmp_path: Path
) -> None:
    await ensure_streams(nats_url)
    code, out, err = await slipway(
        "--nats-url", nats_url, "release", "request", *RELEASE_FLAGS, "--artifact", str(artifact),
        "--strategy", "canary", "--steps", "10,50", "--interval", "2", "--max-error-rate", "0.02",
        "--release-id", "shop-1.2.3-cli", "--no-wait", data_dir=tmp_path / "data",
    )
    assert code == 0, err
    assert "shop-1.2.3-cli" in out
    event = await watcher.wait_type("ReleaseRequested", release_id="shop-1.2.3-cli", timeout=10)
    assert (event["service"], event["environment"], event["version"], event["team"]) == ("shop", "prod", "1.2.3", "payments")
    assert event["artifact"] == {"uri": str(artifact.resolve()), "digest": digest_of(artifact)}
    assert event["commit"]["sha"] == "abc1234"
    assert event["strategy"] == {"kind": "canary", "steps": [{"weight": 10, "pause": False}, {"weight": 50, "pause": False}],
                                 "analysis_interval_s": 2.0}
    assert event["rollback_triggers"]["max_error_rate"] == 0.02
    assert event["requested_by"] == "ci:test" and event["actor"] == "ci:test" and event["source"] == "cli"
    assert await stored_messages(nats_url, EVENTS_STREAM) == 1


async def test_bad_digest_is_refused_naming_the_field_without_publishing(
    nats_url: str, artifact: Path, tmp_path: Path
) -> None:
    await ensure_streams(nats_url)
    code, out, err = await slipway(
        "--nats-url", nats_url, "release", "request", *RELEASE_FLAGS, "--artifact", str(artifact),
        "--digest", "sha256:not-hex", "--strategy", "all-at-once", "--no-wait", data_dir=tmp_path / "data",
    )
    assert code == 2
    assert "artifact.digest" in err
    assert "Traceback" not in err + out
    assert await stored_messages(nats_url, EVENTS_STREAM) == 0  # the CLI exits only after any publish is acked


async def test_invalid_release_file_is_a_clear_error(nats_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "release.yaml"
    bad.write_text("service: shop\nstrategy: {kind: canary\n")
    code, out, err = await slipway("--nats-url", nats_url, "release", "request", str(bad), data_dir=tmp_path / "data")
    assert code == 2
    assert "not valid YAML" in err and "Traceback" not in err


async def test_alerts_tail_prints_matching_alerts_only(nats_url: str, tmp_path: Path) -> None:
    await ensure_streams(nats_url)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for severity, summary in (("warning", "latency creeping up"), ("critical", "error rate 40% on the canary")):
            alert = {"type": "AlertRaised", "severity": severity, "team": "payments", "service": "shop",
                     "summary": summary, "release_id": "shop-9.9.9", "occurred_at": "2026-01-01T00:00:00+00:00"}
            await js.publish(alert_subject(severity, "payments", "shop"), json.dumps(alert).encode(), stream=ALERTS_STREAM)
    finally:
        await nc.close()

    code, out, err = await slipway(
        "--nats-url", nats_url, "alerts", "tail", "--severity", "critical", "--count", "1", "--timeout", "10",
        "--since-start", data_dir=tmp_path / "data",
    )
    assert code == 0, err
    assert "error rate 40% on the canary" in out and "shop-9.9.9" in out
    assert "latency creeping up" not in out

    code, out, _ = await slipway(
        "--nats-url", nats_url, "alerts", "tail", "--team", "search", "--count", "1", "--timeout", "1",
        "--since-start", data_dir=tmp_path / "data",
    )
    assert code == 1
    assert "timed out" in out and "latency creeping up" not in out


async def test_status_without_services_is_a_clear_error(nats_url: str, tmp_path: Path) -> None:
    code, out, err = await slipway("status", "--nats-url", nats_url, data_dir=tmp_path / "data")
    assert code == 2
    assert "no service answers" in err and "slipway up" in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


async def test_unreachable_nats_is_a_clear_error(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    code, out, err = await slipway("--nats-url", url, "freeze", "list", data_dir=tmp_path / "data", timeout=20)
    assert code == 2
    assert err.strip() == f"error: cannot reach NATS at {url}: is `slipway up` running?"


@needs_services
async def test_stack_runs_the_services_and_follows_releases(
    tmp_path: Path, artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SLIPWAY_ARTIFACT_DIRS", str(artifact.parent))  # the services inherit it
    stack = Stack(data_dir)
    url = await asyncio.to_thread(stack.start)
    use_credentials(stack.credentials(Kind.ONCALL, ONCALL))  # under authorization the test asks as on-call
    try:
        assert set(stack.services) == set(SERVICES)
        assert json.loads((data_dir / "stack.json").read_text())["nats_url"] == url
        result = await send_command(url, CMD_LIST_FREEZES, ListFreezes())
        assert result.ok

        # stack.json tells the CLI where NATS is; a wrong digest is rejected by the artifact-verifier.
        code, out, err = await slipway(
            "release", "request", *RELEASE_FLAGS, "--artifact", str(artifact), "--digest", "sha256:" + "0" * 64,
            "--strategy", "all-at-once", "--timeout", "30", data_dir=data_dir,
        )
        assert code == 1, err
        assert "ArtifactRejected" in out and "digest mismatch" in out

        raw = tmp_path / "raw.json"
        raw.write_text(json.dumps({"release_id": "raw-1", "event_id": "raw-event-1", "service": "shop",
                                   "environment": "prod", "artifact": {"uri": "x", "digest": "md5:1"}}))
        code, out, err = await slipway("release", "request", "--raw-json", str(raw), "--timeout", "30",
                                       data_dir=data_dir)
        assert code == 1, err
        assert "ReleaseRequestRejected" in out and "artifact.digest" in out and "team" in out
    finally:
        use_credentials(None)
        await asyncio.to_thread(stack.stop)
    assert all(proc.poll() is not None for proc in stack.services.values())
    assert not (data_dir / "stack.json").exists()


@needs_services
def test_up_starts_the_stack_and_stops_it_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    up = subprocess.Popen([SLIPWAY, "up"], env=cli_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True)
    stack_file = data_dir / "stack.json"
    try:
        eventually_sync(lambda: stack_file.exists() or up.poll() is not None, 60, "stack.json or an exit")
        assert stack_file.exists(), up.stderr.read().decode() if up.poll() is not None else "no stack.json in 60 s"
        done = subprocess.run([SLIPWAY, "freeze", "list"], env=cli_env(data_dir), capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        assert "no freezes" in done.stdout
    finally:
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err.decode()
    assert "stopped the services" in out.decode()
    assert not stack_file.exists()
