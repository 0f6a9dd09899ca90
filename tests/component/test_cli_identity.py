"""`slipway identity` and the people's commands the CLI signs, run as a user runs them, against a real gatekeeper."""

import asyncio
import os
import stat
from pathlib import Path

from libs.settings import Settings
from services.gatekeeper.app import build as gatekeeper
from tests.component.test_cli import SLIPWAY, cli_env
from tests.conftest import running
from tests.support.watch import EventWatcher


async def slipway(data_dir: Path, *args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        SLIPWAY, *args, env={**cli_env(data_dir), **env}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def freeze_args(settings: Settings, *extra: str) -> list[str]:
    return ["freeze", "create", "--environment", "prod", "--reason", "launch", "--duration", "1h",
            "--nats-url", settings.nats_url, *extra]


async def test_identity_create_list_and_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, err = await slipway(data, "identity", "create", "alice", "--roles", "sre,developer", "--team", "payments")
    assert code == 0, err
    seed = data / "credentials" / "person.alice.nk"
    assert f"seed file (private key, mode 0600): {seed}" in out and "hand it to alice" in out
    assert stat.S_IMODE(seed.stat().st_mode) == 0o600

    code, out, err = await slipway(data, "identity", "create", "alice", "--roles", "sre")
    assert (code, err.strip()) == (1, "error: identity person:alice already exists (revoke it first to issue a new key)")
    code, out, err = await slipway(data, "identity", "create", "bob", "--roles", "admin")
    assert code == 2 and "--roles takes release-manager, sre, developer, change-manager; got admin" in err

    code, out, err = await slipway(data, "identity", "list")
    assert code == 0, err
    [row] = [line for line in out.splitlines() if "person:alice" in line]
    assert "sre, developer" in row or "developer, sre" in row
    assert "payments" in row

    code, out, err = await slipway(data, "identity", "revoke", "alice")
    assert code == 0 and "revoked person:alice at " in out
    assert not seed.exists()
    code, out, err = await slipway(data, "identity", "revoke", "mallory")
    assert (code, err.strip()) == (1, "error: no identity person:mallory")


async def test_freeze_is_signed_by_the_only_person_and_recorded_as_them(
    settings: Settings, watcher: EventWatcher
) -> None:
    data = settings.data_dir
    assert (await slipway(data, "identity", "create", "alice", "--roles", "release-manager"))[0] == 0
    async with running(gatekeeper(settings)):
        code, out, err = await slipway(data, *freeze_args(settings))
        assert code == 0, err
        declared = await watcher.wait_type("FreezeDeclared")
    assert declared["actor"] == "person:alice" and declared["signed_command"]["signer"] == "person:alice"


async def test_who_signs_is_chosen_or_explained(settings: Settings, watcher: EventWatcher) -> None:
    data = settings.data_dir
    code, out, err = await slipway(data, *freeze_args(settings))
    assert code == 2 and "no identity registry at" in err and "slipway identity create NAME" in err
    for name, roles in (("alice", "release-manager"), ("bob", "developer")):
        assert (await slipway(data, "identity", "create", name, "--roles", roles))[0] == 0
    alice_seed = (data / "credentials" / "person.alice.nk").read_bytes()
    async with running(gatekeeper(settings)):
        code, out, err = await slipway(data, *freeze_args(settings))
        assert (code, err.strip()) == (2, "error: who signs? choose with --as NAME or SLIPWAY_IDENTITY: alice, bob")

        code, out, err = await slipway(data, *freeze_args(settings, "--as", "bob"))
        assert (code, err.strip()) == (1, "error: refused: role release-manager needed for freeze; person:bob has developer")

        code, out, err = await slipway(data, *freeze_args(settings, "--as", "carol"))
        assert code == 2 and f"no seed file for person carol at {data / 'credentials' / 'person.carol.nk'}" in err

        code, out, err = await slipway(data, *freeze_args(settings, "--as", "../alice"))
        assert (code, err.strip()) == (
            2, "error: --as takes a person's name (lowercase letters, digits, - and _), got '../alice'")

        code, out, err = await slipway(data, *freeze_args(settings), SLIPWAY_IDENTITY_FILE=str(data / "missing.nk"))
        assert code == 2 and f"cannot read the seed file {data / 'missing.nk'}" in err

        code, out, err = await slipway(data, *freeze_args(settings), SLIPWAY_IDENTITY="alice")
        assert code == 0, err
        assert (await watcher.wait_type("FreezeDeclared"))["actor"] == "person:alice"

        # alice kept a copy of her key; revoked, it signs in vain.
        kept = data.parent / "alice.nk"
        kept.write_bytes(alice_seed)
        os.chmod(kept, 0o600)
        assert (await slipway(data, "identity", "revoke", "alice"))[0] == 0
        code, out, err = await slipway(data, *freeze_args(settings), SLIPWAY_IDENTITY_FILE=str(kept))
        assert code == 1 and "person:alice's key was revoked at" in err
    for output in (out, err):
        assert "Traceback" not in output
    assert len(watcher.matching(lambda _s, b: b.get("type") == "FreezeDeclared")) == 1
