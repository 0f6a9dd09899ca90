"""Which artifact sources a release may name, decided before anything is read (issue 6, item 5)."""

import os
import re
from pathlib import Path

import httpx
import pytest

from libs.artifact_sources import ArtifactSources, Refused, host_entry
from libs.settings import Settings

HOSTS = ["artifacts.example:8081", "cdn.example"]


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    directory = tmp_path / "dist"
    directory.mkdir()
    (directory / "app.pyz").write_bytes(b"app")
    return directory


@pytest.fixture
def sources(allowed: Path) -> ArtifactSources:
    return ArtifactSources.of([allowed], HOSTS)


def refused(decision: object) -> str:
    assert isinstance(decision, Refused), f"expected a refusal, got {decision!r}"
    return decision.reason


def test_a_file_under_an_allowed_directory_is_allowed_as_a_path_or_file_uri(
    sources: ArtifactSources, allowed: Path
) -> None:
    app = allowed / "app.pyz"
    assert sources.decide(str(app)) == app.resolve()
    assert sources.decide(f"file://{app}") == app.resolve()
    assert sources.decide(f"file://localhost{app}") == app.resolve()
    # Not there yet is decided the same way: existence is for the reader to find out, and only inside.
    assert sources.decide(str(allowed / "later.pyz")) == (allowed / "later.pyz").resolve()


def test_a_relative_path_is_resolved_from_the_working_directory(
    allowed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sources = ArtifactSources.of([Path("dist")], [])
    assert sources.decide("dist/app.pyz") == (allowed / "app.pyz").resolve()
    (tmp_path / "app.pyz").write_bytes(b"beside dist, not in it")
    refused(sources.decide("app.pyz"))


@pytest.mark.parametrize("uri", [
    "/etc/passwd", "/etc/shadow", "/proc/self/environ", "file:///etc/passwd", "file:///proc/self/environ",
    "FILE:///etc/passwd", "file://localhost/etc/passwd",
])
def test_files_outside_every_allowed_directory_are_refused_saying_only_which_setting_allows_them(
    sources: ArtifactSources, uri: str
) -> None:
    reason = refused(sources.decide(uri))
    assert "SLIPWAY_ARTIFACT_DIRS" in reason
    assert not re.search(r"not found|exist|regular file|bytes|[0-9a-f]{64}", reason, re.IGNORECASE)


def test_an_existing_and_a_missing_file_outside_are_refused_alike(sources: ArtifactSources, tmp_path: Path) -> None:
    present, absent = tmp_path / "secret.txt", tmp_path / "absent.txt"
    present.write_text("secret")
    told = {refused(sources.decide(str(path))).replace(str(path), "PATH") for path in (present, absent)}
    assert len(told) == 1


@pytest.mark.parametrize("escape", [
    "{allowed}/../secret.txt", "{allowed}/../../../../etc/passwd", "file://{allowed}/../secret.txt",
    "file://{allowed}/%2e%2e/secret.txt", "{allowed}/sub/../app.pyz",
])
def test_dot_dot_is_refused_even_where_it_would_land_inside(
    sources: ArtifactSources, allowed: Path, escape: str
) -> None:
    (allowed.parent / "secret.txt").write_text("secret")
    assert "SLIPWAY_ARTIFACT_DIRS" in refused(sources.decide(escape.format(allowed=allowed)))


def test_a_symlink_inside_an_allowed_directory_is_judged_by_where_it_leads(
    sources: ArtifactSources, allowed: Path, tmp_path: Path
) -> None:
    (allowed / "passwd.pyz").symlink_to("/etc/passwd")
    (tmp_path / "outside").mkdir()
    (allowed / "linked-dir").symlink_to(tmp_path / "outside")
    (allowed / "alias.pyz").symlink_to(allowed / "app.pyz")
    (allowed / "loop.pyz").symlink_to(allowed / "loop.pyz")
    reason = refused(sources.decide(str(allowed / "passwd.pyz")))
    assert "/etc/passwd" not in reason  # where the link leads is not told
    refused(sources.decide(f"file://{allowed}/passwd.pyz"))
    refused(sources.decide(str(allowed / "linked-dir" / "anything.pyz")))
    refused(sources.decide(str(allowed / "loop.pyz")))
    assert sources.decide(str(allowed / "alias.pyz")) == (allowed / "app.pyz").resolve()


def test_an_allowed_directory_that_is_itself_a_symlink_allows_what_is_under_its_target(
    allowed: Path, tmp_path: Path
) -> None:
    (tmp_path / "builds").symlink_to(allowed)
    sources = ArtifactSources.of([tmp_path / "builds"], [])
    assert sources.decide(str(allowed / "app.pyz")) == (allowed / "app.pyz").resolve()
    assert sources.decide(str(tmp_path / "builds" / "app.pyz")) == (allowed / "app.pyz").resolve()


def test_slipways_artifact_areas_are_allowed_but_not_the_rest_of_its_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, artifact_dirs=[])
    sources = ArtifactSources.from_settings(settings)
    demo = data_dir / "demo-artifacts" / "app.pyz"
    assert sources.decide(str(demo)) == demo.resolve()
    assert isinstance(sources.decide(str(data_dir / "artifact-cache" / "sha256-00")), Path)
    for forbidden in ("artifact-verifier.db", "deployer.db", "stack.json", "deployer-artifacts/sha256-00",
                      "demo-artifacts/../artifact-verifier.db"):
        refused(sources.decide(str(data_dir / forbidden)))


def test_the_default_allows_dist_of_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLIPWAY_ARTIFACT_DIRS", raising=False)
    monkeypatch.delenv("SLIPWAY_ARTIFACT_HOSTS", raising=False)
    sources = ArtifactSources.from_settings(Settings(data_dir=tmp_path / "data"))
    assert isinstance(sources.decide(str(tmp_path / "dist" / "app.pyz")), Path)
    refused(sources.decide(str(tmp_path / "app.pyz")))
    refused(sources.decide("https://cdn.example/app.pyz"))  # no host is allowed by default


@pytest.mark.parametrize("uri", [
    "http://artifacts.example:8081/app.pyz", "HTTP://ARTIFACTS.Example:8081/app.pyz",
    "https://artifacts.example:8081/app.pyz", "https://cdn.example/app.pyz", "http://cdn.example:80/app.pyz",
    "https://CDN.EXAMPLE:443/a/b.pyz?x=1",
])
def test_urls_on_allowed_hosts_are_allowed(sources: ArtifactSources, uri: str) -> None:
    decision = sources.decide(uri)
    assert isinstance(decision, httpx.URL) and decision.host in ("artifacts.example", "cdn.example")


@pytest.mark.parametrize("uri", [
    "http://artifacts.example/app.pyz",  # the entry names port 8081; 80 is another service
    "http://artifacts.example:8082/app.pyz",
    "https://cdn.example:8443/app.pyz",  # a bare host allows the scheme's default port only
    "http://cdn.example.evil.test/app.pyz",
    "http://evil.test/cdn.example/app.pyz",
    "http://127.0.0.1:8081/app.pyz",
    "http://169.254.169.254/latest/meta-data/",
])
def test_urls_on_other_hosts_or_ports_are_refused(sources: ArtifactSources, uri: str) -> None:
    assert "SLIPWAY_ARTIFACT_HOSTS" in refused(sources.decide(uri))


@pytest.mark.parametrize("uri", [
    "http://artifacts.example:8081@evil.test/app.pyz",
    "http://cdn.example@evil.test/app.pyz",
    "http://user:secret@cdn.example/app.pyz",
])
def test_urls_with_a_user_name_or_password_are_refused_without_echoing_them(sources: ArtifactSources, uri: str) -> None:
    reason = refused(sources.decide(uri))
    assert "evil" not in reason and "secret" not in reason


@pytest.mark.parametrize("uri", [
    "ftp://cdn.example/app.pyz", "gopher://cdn.example:70/", "data:text/plain,hello", "file://evil.test/etc/passwd",
    "smb://cdn.example/share/app.pyz", "jar:file:///etc/passwd!/",
])
def test_other_schemes_and_remote_file_uris_are_refused(sources: ArtifactSources, uri: str) -> None:
    refused(sources.decide(uri))


def test_host_entries_are_parsed_strictly() -> None:
    assert host_entry("Artifacts.Example:8081") == ("artifacts.example", 8081)
    assert host_entry("cdn.example") == ("cdn.example", None)
    assert host_entry("[::1]:9000") == ("::1", 9000)
    for bad in ("cdn.example:http", "user@cdn.example", "cdn.example/path", ""):
        with pytest.raises(ValueError, match="SLIPWAY_ARTIFACT_HOSTS"):
            host_entry(bad)


def test_the_settings_read_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_ARTIFACT_DIRS", f"/srv/builds{os.pathsep}dist, /opt/ci")
    monkeypatch.setenv("SLIPWAY_ARTIFACT_HOSTS", "cdn.example, artifacts.example:8081")
    settings = Settings()
    assert settings.artifact_dirs == [Path("/srv/builds"), Path("dist"), Path("/opt/ci")]
    assert settings.artifact_hosts == ["cdn.example", "artifacts.example:8081"]
    monkeypatch.setenv("SLIPWAY_ARTIFACT_DIRS", '["/srv/a,b"]')
    assert Settings().artifact_dirs == [Path("/srv/a,b")]
