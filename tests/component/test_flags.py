"""Feature flags on the gatekeeper against a real nats-server and SQLite: an approved release's flags are added
off, signed set/rollout commands change the environment's flagd file and leave FlagChanged events that the
audit verifies, bad changes are refused and recorded; and a running sample app (a real process reading that
file through OpenFeature) changes its answer without a deployment."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import subjects
from contracts.events import ArtifactVerified
from contracts.flags import ChangeFlag, ListFlags
from contracts.identity import Role
from contracts.release import ReleaseSpec
from examples.build_sample import build as build_sample
from libs.client import publish_event, send_command
from libs.embedded_nats import free_port
from libs.flag_files import FLAGS_FILE_ENV, flags_file
from libs.settings import Settings
from services.gatekeeper.app import build
from services.metrics_collector.app import build as collector
from tests.component.test_cli_identity import slipway
from tests.conftest import running
from tests.support.flagd_buckets import served_on
from tests.support.audit import audit_once_logged
from tests.support.people import People
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

ENVIRONMENTS = Path(__file__).resolve().parents[2] / "infra" / "environments"
GREETING = "new-greeting"
NEW, OLD = "hello, and welcome to the new greeting", "hello"


@pytest.fixture
def flag_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"environments_dir": ENVIRONMENTS})


def staging_flags(settings: Settings) -> Path:
    return flags_file(settings.data_dir, "staging")


def exposure_in_file(settings: Settings, flag: str = GREETING) -> tuple[str, dict[str, Any]]:
    defined = json.loads(staging_flags(settings).read_text())["flags"][flag]
    return defined["defaultVariant"], defined["targeting"]


async def approve_release_declaring(settings: Settings, tmp_path: Path, watcher: EventWatcher, *flags: str,
                                    service: str = "shop") -> dict[str, Any]:
    artifact = tmp_path / f"{service}.pyz"
    artifact.write_bytes(b"artifact of " + service.encode())
    request = release_for(artifact, service=service, environment="staging",
                          flags=[{"key": key, "description": f"{key} for tests"} for key in flags])
    verified = ArtifactVerified.caused_by(request, "artifact-verifier",
                                          release=ReleaseSpec.model_validate(request.model_dump()), size_bytes=1)
    await publish_event(settings.nats_url, verified)
    await watcher.wait_type("ReleaseApproved", release_id=request.release_id)
    return {"release_id": request.release_id}


async def test_declared_flags_ship_off_and_signed_changes_rewrite_the_file_with_an_audit_trail(
    flag_settings: Settings, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    settings = flag_settings
    async with running(build(settings)), running(collector(settings)):
        first = await approve_release_declaring(settings, tmp_path, watcher, GREETING, "dark-checkout")
        declared = await watcher.wait_type("FlagsDeclared", release_id=first["release_id"])
        assert [f["key"] for f in declared["flags"]] == [GREETING, "dark-checkout"]
        await eventually(lambda: staging_flags(settings).exists(), 10, "the staging flags file")
        assert exposure_in_file(settings) == ("off", {})

        answer = await people.send("sam", subjects.CMD_CHANGE_FLAG, ChangeFlag(flag=GREETING, environment="staging",
                                                                                 percent=100))
        assert answer.ok and answer.message.startswith(f"flag {GREETING} in staging: off -> on by person:sam"), \
            answer.message
        changed = await watcher.wait_type("FlagChanged", percent=100)
        assert (changed["flag"], changed["environment"], changed["before"], changed["actor"]) == \
            (GREETING, "staging", 0, "person:sam")
        assert changed["correlation_id"] == GREETING and "release_id" not in changed
        assert changed["signed_command"]["signer"] == "person:sam"
        assert exposure_in_file(settings) == ("on", {})

        answer = await people.send("dev", subjects.CMD_CHANGE_FLAG, ChangeFlag(flag=GREETING, environment="staging",
                                                                                 percent=30))
        assert answer.ok, answer.message
        assert (await watcher.wait_type("FlagChanged", percent=30))["before"] == 100
        assert exposure_in_file(settings) == ("off", {"fractional": [["on", 30], ["off", 70]]})

        # A later release declaring the flag again does not touch its exposure; only its new flag is added.
        second = await approve_release_declaring(settings, tmp_path, watcher, GREETING, "fast-search", service="basket")
        declared = await watcher.wait_type("FlagsDeclared", release_id=second["release_id"])
        assert [f["key"] for f in declared["flags"]] == ["fast-search"]
        listed = await send_command(settings.nats_url, subjects.CMD_LIST_FLAGS, ListFlags(environment="staging"))
        assert {f["flag"]: f["exposure"] for f in listed.data["flags"]} == \
            {GREETING: "30%", "dark-checkout": "off", "fast-search": "off"}
        assert exposure_in_file(settings) == ("off", {"fractional": [["on", 30], ["off", 70]]})

        report = await audit_once_logged(settings.nats_url, 2, "both flag changes logged")
        assert report.ok and report.data["unverified_count"] == 0, report.message


async def test_bad_flag_changes_are_refused_with_their_reason_and_recorded(
    flag_settings: Settings, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    settings = flag_settings
    people.add("cmo", Role.CHANGE_MANAGER)
    async with running(build(settings)):
        await approve_release_declaring(settings, tmp_path, watcher, GREETING)
        await eventually(lambda: staging_flags(settings).exists(), 10, "the staging flags file")
        before = staging_flags(settings).read_bytes()
        cases = [
            (ChangeFlag(flag="no-such-flag", environment="staging", percent=100), "sam",
             "flag no-such-flag is not declared in staging (flags there: new-greeting)"),
            (ChangeFlag(flag=GREETING, environment="qa", percent=100), "sam",
             "environment qa is not declared (declared: dev, preview, prod, staging)"),
            (ChangeFlag.model_construct(flag=GREETING, environment="staging", percent=150), "sam",
             "invalid ChangeFlag: percent: Input should be less than or equal to 100"),
            (ChangeFlag(flag=GREETING, environment="staging", percent=100), "cmo",
             "role release-manager or sre or developer needed for change_flag; person:cmo has change-manager"),
        ]
        for command, who, reason in cases:
            answer = await people.send(who, subjects.CMD_CHANGE_FLAG, command)
            assert not answer.ok and answer.message.startswith(f"refused: {reason}"), answer.message
            refused = await watcher.wait_for(lambda _s, b, r=reason: b.get("type") == "CommandRefused"
                                             and b["reason"].startswith(r))
            assert refused[0]["actor"] == f"person:{who}" and refused[0]["command"] == subjects.CMD_CHANGE_FLAG
        assert staging_flags(settings).read_bytes() == before
        assert not watcher.matching(lambda _s, b: b.get("type") == "FlagChanged")


async def test_a_lost_flags_file_is_rendered_again_from_the_gatekeepers_database_at_start(
    flag_settings: Settings, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    settings = flag_settings
    async with running(build(settings)):
        await approve_release_declaring(settings, tmp_path, watcher, GREETING)
        await watcher.wait_type("FlagsDeclared")
        assert (await people.send("sam", subjects.CMD_CHANGE_FLAG,
                                  ChangeFlag(flag=GREETING, environment="staging", percent=40))).ok
    staging_flags(settings).unlink()  # as if the gatekeeper died between the commit and the file
    async with running(build(settings)):
        assert exposure_in_file(settings) == ("off", {"fractional": [["on", 40], ["off", 60]]})


@pytest.fixture
def sample_app(tmp_path: Path, flag_settings: Settings) -> Iterator[str]:
    """The sample application as the deployer runs it (this python, the zipapp, a port), reading staging's flags."""
    artifact = build_sample("1.0.0", tmp_path / "dist")
    port = free_port()
    env = dict(os.environ, **{FLAGS_FILE_ENV: str(staging_flags(flag_settings))})
    with open(tmp_path / "app.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(artifact), "--port", str(port)], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def test_a_running_sample_app_changes_its_answer_when_a_flag_is_set_without_a_deployment(
    flag_settings: Settings, watcher: EventWatcher, people: People, tmp_path: Path, sample_app: str
) -> None:
    settings = flag_settings
    users = [f"user-{n}" for n in range(100)]
    async with httpx.AsyncClient(base_url=sample_app, trust_env=False, timeout=2) as http:

        async def greetings(*who: str) -> list[str] | None:
            try:
                return [(await http.get("/", headers={"X-User": user})).json()["greeting"] for user in who]
            except httpx.TransportError:
                return None  # not listening yet

        async def answers(expected: list[str]) -> list[str] | None:
            got = await greetings(*users[:len(expected)])
            return got if got == expected else None

        # Started before the flag exists (no file yet): every user gets the old greeting.
        assert await eventually(lambda: greetings("user-0"), 10, "the sample app answering") == [OLD]
        async with running(build(settings)):
            await approve_release_declaring(settings, tmp_path, watcher, GREETING)
            await eventually(lambda: staging_flags(settings).exists(), 10, "the staging flags file")
            assert await greetings(*users) == [OLD] * len(users)  # declared: shipped dark

            assert (await people.send("sam", subjects.CMD_CHANGE_FLAG,
                                      ChangeFlag(flag=GREETING, environment="staging", percent=100))).ok
            answered = time.monotonic()
            await eventually(lambda: answers([NEW]), 10, "user-0 getting the new greeting")
            # The provider polls the file every 200 ms: the reply to the command is at most that far from the app.
            print(f"flag set -> the running app answers with it: {(time.monotonic() - answered) * 1000:.0f} ms")
            await eventually(lambda: answers([NEW] * len(users)), 10, "every user getting the new greeting")

            assert (await people.send("sam", subjects.CMD_CHANGE_FLAG,
                                      ChangeFlag(flag=GREETING, environment="staging", percent=50))).ok
            # flagd's bucketing decides exactly who gets it: the users its specification puts below 50.
            expected = [NEW if served_on(GREETING, user, 50) else OLD for user in users]
            assert 30 < expected.count(NEW) < 70
            await eventually(lambda: answers(expected), 10, "half of the users getting the new greeting")
            assert (await greetings("user-7", "user-7", "user-7")) == [expected[7]] * 3  # sticky per user


async def test_slipway_flags_set_rollout_and_list_as_a_person_runs_them(
    flag_settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    settings, url = flag_settings, ["--nats-url", flag_settings.nats_url]
    assert (await slipway(settings.data_dir, "identity", "create", "dev", "--roles", "developer"))[0] == 0
    async with running(build(settings)):
        await approve_release_declaring(settings, tmp_path, watcher, GREETING)
        await watcher.wait_type("FlagsDeclared")
        code, out, err = await slipway(settings.data_dir, "flags", "set", GREETING, "on", "--env", "staging",
                                       "--as", "dev", *url)
        assert code == 0, err
        assert f"flag {GREETING} in staging: off -> on by person:dev" in out
        code, out, err = await slipway(settings.data_dir, "flags", "rollout", GREETING, "--env", "staging",
                                       "--percent", "25", "--as", "dev", *url)
        assert code == 0 and "on -> 25%" in out, err
        assert exposure_in_file(settings) == ("off", {"fractional": [["on", 25], ["off", 75]]})
        code, out, err = await slipway(settings.data_dir, "flags", "list", "--env", "staging", *url)
        assert code == 0 and GREETING in out and "25%" in out, err
        code, out, err = await slipway(settings.data_dir, "flags", "rollout", GREETING, "--env", "staging",
                                       "--percent", "150", "--as", "dev", *url)
        assert code == 2 and "percent: Input should be less than or equal to 100" in err
        code, out, err = await slipway(settings.data_dir, "flags", "set", "nope", "on", "--env", "staging",
                                       "--as", "dev", *url)
        assert code == 1 and "refused: flag nope is not declared in staging" in err
    for output in (out, err):
        assert "Traceback" not in output
