"""The wire contract: committed schemas match the code, the catalogue covers every event, models keep their word."""

import copy
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import ValidationError

from contracts import catalogue, generate, subjects
from contracts.envelope import ZONED_DATETIME_PATTERN, Event
from contracts.events import AlertRaised, ArtifactVerified, ReleaseRequested, StepStarted
from contracts.release import ReleaseSpec

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
REGENERATE = "the committed contracts differ from the models: run `make contracts` and commit the result"

REALISTIC_RELEASE: dict[str, Any] = {
    "event_id": "01JD8Z6Q4N3K7V2C9X5B1M0P8S",
    "release_id": "shop-1.4.2-01JD8Z6Q4N3K7V2C9X5B1M0P8R",
    "service": "shop",
    "environment": "prod",
    "actor": "ci:github-actions",
    "source": "ci",
    "version": "1.4.2",
    "team": "payments",
    "artifact": {
        "uri": "https://artifacts.example.com/shop/shop-1.4.2.pyz",
        "digest": "sha256:" + "9f2c4e1b" * 8,
    },
    "commit": {"sha": "3b7e9c1d5a2f4e6b8c0d1e3f5a7b9c2d4e6f8a0b", "committed_at": "2026-11-27T09:30:00+00:00"},
    "release_class": "standard",
    "strategy": {"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}], "analysis_interval_s": 5},
    "rollback_triggers": {"max_error_rate": 0.05, "max_p99_latency_ms": 300, "min_requests": 10},
    "requested_by": "ci:github-actions",
}


# --- (a) the committed files are what the code generates -------------------------------------


def test_committed_contracts_match_the_generator(tmp_path: Path) -> None:
    generate.write(tmp_path)
    generated = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    stale = [
        name
        for name in generated
        if not (CONTRACTS / name).is_file() or (CONTRACTS / name).read_bytes() != (tmp_path / name).read_bytes()
    ]
    committed = sorted(p.relative_to(CONTRACTS).as_posix() for p in (CONTRACTS / "schemas").rglob("*") if p.is_file())
    extra = sorted(set(committed) - set(generated))
    assert not stale and not extra, f"{REGENERATE}; differing or missing: {stale}, not generated: {extra}"


def test_generation_is_deterministic_and_check_agrees(tmp_path: Path) -> None:
    assert generate.render() == generate.render()
    assert generate.check(CONTRACTS) == [], REGENERATE


def test_check_names_changed_missing_and_extra_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate.write(tmp_path)
    (tmp_path / "asyncapi.json").write_text("{}\n")
    (tmp_path / "schemas" / "StepStarted.json").unlink()
    (tmp_path / "schemas" / "Gone.json").write_text("{}\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "make contracts" in err
    for line in ("differs: asyncapi.json", "missing: schemas/StepStarted.json", "extra: schemas/Gone.json"):
        assert line in err
    generate.write(tmp_path)
    assert not (tmp_path / "schemas" / "Gone.json").exists()
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0


def test_generated_files_end_with_one_newline_and_sorted_keys() -> None:
    for name, text in generate.render().items():
        assert text.endswith("}\n") and not text.endswith("\n\n"), name
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n", name


def test_every_json_schema_has_an_id_and_title() -> None:
    for model in generate.message_models():
        schema = json.loads((CONTRACTS / "schemas" / f"{model.__name__}.json").read_text())
        assert schema["$id"] == f"urn:slipway:contracts:{model.__name__}"
        assert schema["title"] == model.__name__
        assert schema["$schema"] == generate.JSON_SCHEMA_DIALECT


# --- (b) the catalogue covers every event class ----------------------------------------------


def test_catalogue_covers_every_event_class() -> None:
    assert catalogue.uncovered_events() == [], "add the new event to PRODUCERS/CONSUMES in contracts/catalogue.py"
    assert catalogue.stale_mapping() == [], "contracts/catalogue.py names events that do not exist"
    described = {c.name for c in catalogue.channels()}
    assert set(Event.registry) <= described


def test_an_unmapped_event_class_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A private copy of the registry, so the class defined here does not outlive the test.
    monkeypatch.setattr(Event, "registry", dict(Event.registry))

    class SomethingUnmapped(Event):
        subject: ClassVar[str] = "slipway.evt.test.unmapped"

    assert catalogue.uncovered_events() == ["SomethingUnmapped"]
    with pytest.raises(ValueError, match="SomethingUnmapped"):
        catalogue.channels()


def test_catalogue_roles_match_the_flow() -> None:
    by_name = {c.name: c for c in catalogue.channels()}
    assert by_name["ReleaseRequested"].producers == ("ci",)
    assert by_name["ReleaseRequested"].consumers == ("artifact-verifier", "metrics-collector")
    assert by_name["StepVerdict"].consumers == ("deployer", "metrics-collector", "rollback-controller")
    assert by_name["RollbackRequested"].producers == ("rollback-controller",)
    known = set(catalogue.SERVICES) | {catalogue.CI}
    for channel in by_name.values():
        assert set(channel.producers) | set(channel.consumers) <= known, channel.name
        if channel.name != "DeadLettered":
            assert "metrics-collector" in channel.consumers, f"the audit trail misses {channel.name}"


def test_streams_and_templated_addresses_match_the_subject_helpers() -> None:
    by_name = {c.name: c for c in catalogue.channels()}
    alert = by_name["AlertRaised"]
    assert alert.stream == subjects.ALERTS_STREAM
    assert alert.address.format(severity="critical", team="payments", service="shop") == subjects.alert_subject(
        "critical", "payments", "shop"
    )
    assert set(re.findall(r"{(\w+)}", alert.address)) == set(alert.parameters)
    dlq = by_name["DeadLettered"]
    assert dlq.stream == subjects.DLQ_STREAM
    assert dlq.address.format(consumer="gatekeeper") == subjects.dead_letter_subject("gatekeeper")
    for channel in by_name.values():
        if channel.name not in ("AlertRaised", "DeadLettered"):
            assert channel.stream == subjects.EVENTS_STREAM and channel.address.startswith("slipway.evt."), channel.name


def test_every_command_subject_has_a_request_model_and_an_owner() -> None:
    declared = {value for name, value in vars(subjects).items() if name.startswith("CMD_")}
    listed = {c.subject: c for c in catalogue.command_list()}
    assert set(listed) == declared
    assert listed[subjects.CMD_FREEZE].request.__name__ == "FreezeEnvironment"
    assert listed[subjects.CMD_RELEASE_STATUS].request.__name__ == "QueryReleases"
    for command in listed.values():
        assert command.reply.__name__ == "CommandResult"
        # slipway.cmd.<service>.<command>: the service named in the subject answers it.
        owners = {"gatekeeper": "gatekeeper", "metrics": "metrics-collector", "deployer": "deployer",
                  "rollback": "rollback-controller"}
        assert command.owner == owners[command.subject.split(".")[2]], command.subject


# --- (c) the AsyncAPI document is structurally sound -----------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return json.loads((CONTRACTS / "asyncapi.json").read_text())


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local refs are expected, got {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and key in node, f"{ref} does not resolve (stuck at {key!r})"
        node = node[key]
    return node


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in all_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in all_refs(item)]
    return []


def test_asyncapi_top_level(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] == "slipway" and asyncapi["info"]["version"]
    assert {server["protocol"] for server in asyncapi["servers"].values()} == {"nats"}
    assert {"channels", "operations", "components"} <= set(asyncapi)
    assert {"messages", "schemas"} <= set(asyncapi["components"])
    allowed = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations", "components"}
    assert set(asyncapi) <= allowed


def test_asyncapi_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = all_refs(asyncapi)
    assert refs
    for ref in refs:
        resolve(asyncapi, ref)
    # pydantic's per-model $defs must have been hoisted into components.schemas.
    assert "$defs" not in json.dumps(asyncapi)


def test_asyncapi_operations_point_into_their_channels(asyncapi: dict[str, Any]) -> None:
    for name, operation in asyncapi["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        channel = resolve(asyncapi, channel_ref)
        assert operation["messages"], name
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are a subset of its channel's messages.
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
            assert resolve(asyncapi, message["$ref"]) in channel["messages"].values()
        if "reply" in operation:
            reply_ref = operation["reply"]["channel"]["$ref"]
            for message in operation["reply"]["messages"]:
                assert message["$ref"].startswith(reply_ref + "/messages/"), name


def test_asyncapi_messages_payloads_resolve(asyncapi: dict[str, Any]) -> None:
    schemas = asyncapi["components"]["schemas"]
    for name, message in asyncapi["components"]["messages"].items():
        payload = resolve(asyncapi, message["payload"]["$ref"])
        assert payload is schemas[name]
        assert payload["title"] == name


def test_asyncapi_channels_cover_the_catalogue(asyncapi: dict[str, Any]) -> None:
    channels = asyncapi["channels"]
    for channel in catalogue.channels():
        described = channels[channel.name]
        assert described["address"] == channel.address
        assert set(re.findall(r"{(\w+)}", channel.address)) == set(described.get("parameters", {}))
        sends = asyncapi["operations"][f"send_{channel.name}"]
        assert sends["action"] == "send" and sends["x-slipway-producers"] == list(channel.producers)
        for consumer in channel.consumers:
            assert asyncapi["operations"][f"receive_{channel.name}_{consumer}"]["action"] == "receive"
    for command in catalogue.command_list():
        assert channels[command.name]["address"] == command.subject
        assert "reply" in asyncapi["operations"][f"receive_{command.name}_{command.owner}"]


def test_asyncapi_names_and_schemas_are_valid(asyncapi: dict[str, Any]) -> None:
    component_key = re.compile(r"^[\w.\-]+$")
    for section in ("messages", "schemas"):
        assert all(component_key.match(key) for key in asyncapi["components"][section]), section
    # An AsyncAPI Schema Object's discriminator is a property name, not OpenAPI's object.
    text = json.dumps(asyncapi["components"]["schemas"])
    assert '"propertyName"' not in text
    strategy = asyncapi["components"]["schemas"]["ReleaseSpec"]["properties"]["strategy"]
    union = next(node for node in strategy["anyOf"] if "oneOf" in node)  # optional: the union, or null
    assert union["discriminator"] == "kind"


# --- (d) the models behave as the contract says ----------------------------------------------


def test_a_realistic_release_round_trips() -> None:
    release = ReleaseRequested.model_validate(REALISTIC_RELEASE)
    assert release.type == "ReleaseRequested"
    assert release.correlation_id == release.release_id
    assert release.traffic_steps() == [10, 50]
    assert ReleaseRequested.model_validate_json(release.model_dump_json()) == release


def test_the_example_release_file_validates() -> None:
    example = yaml.safe_load((ROOT / "infra" / "release.example.yaml").read_text())
    envelope = {"release_id", "event_id", "occurred_at", "actor", "source", "type", "correlation_id", "causation_id"}
    assert not envelope & set(example), "the example must leave envelope fields to the CLI"
    release = ReleaseRequested.model_validate({**example, "release_id": "shop-1.4.2-example", "event_id": "e-1"})
    assert release.strategy.kind == "canary" and release.traffic_steps() == [10, 50]


def test_unknown_fields_are_ignored() -> None:
    data = copy.deepcopy(REALISTIC_RELEASE)
    data["pipeline_url"] = "https://ci.example.com/run/42"
    data["artifact"]["signature"] = "cosign:..."
    release = ReleaseRequested.model_validate(data)
    dumped = release.model_dump()
    assert "pipeline_url" not in dumped and "signature" not in dumped["artifact"]


def invalid(mutate: Any) -> list[tuple[Any, ...]]:
    data = copy.deepcopy(REALISTIC_RELEASE)
    mutate(data)
    with pytest.raises(ValidationError) as caught:
        ReleaseRequested.model_validate(data)
    return [error["loc"] for error in caught.value.errors()]


def test_a_bad_digest_names_the_digest() -> None:
    assert invalid(lambda d: d["artifact"].update(digest="md5:" + "0" * 32)) == [("artifact", "digest")]


def test_an_unknown_strategy_kind_names_the_strategy() -> None:
    assert invalid(lambda d: d["strategy"].update(kind="teleport")) == [("strategy",)]


def test_non_increasing_canary_weights_name_the_strategy() -> None:
    for steps in ([{"weight": 50}, {"weight": 10}], [{"weight": 20}, {"weight": 20}]):
        assert invalid(lambda d: d["strategy"].update(steps=steps)) == [("strategy", "canary")]


def test_a_missing_team_names_the_team() -> None:
    assert invalid(lambda d: d.pop("team")) == [("team",)]


def test_caused_by_continues_the_release() -> None:
    cause = ReleaseRequested.model_validate({**REALISTIC_RELEASE, "correlation_id": "train-2026-11-27"})
    spec = ReleaseSpec.model_validate(cause.model_dump())
    effect = ArtifactVerified.caused_by(cause, source="artifact-verifier", release=spec, size_bytes=1024)
    assert (effect.release_id, effect.service, effect.environment) == (cause.release_id, "shop", "prod")
    assert effect.correlation_id == "train-2026-11-27"
    assert effect.causation_id == cause.event_id
    assert effect.event_id != cause.event_id
    assert effect.source == "artifact-verifier" and effect.actor == cause.actor
    assert effect.type == "ArtifactVerified"
    assert StepStarted.caused_by(effect, source="deployer", actor="alice", **_step()).actor == "alice"


def test_alert_subject_template_is_a_class_var_not_a_field() -> None:
    assert AlertRaised.subject == "slipway.alert.{severity}.{team}.{service}"
    assert "subject" not in AlertRaised.model_fields


def _step() -> dict[str, Any]:
    return {
        "deployment_id": "d1", "step_index": 0, "step_count": 2, "weight": 10, "version": "1.4.2",
        "stable_version": "1.4.1", "team": "payments", "analysis_interval_s": 5.0, "max_error_rate": 0.05,
        "max_p99_latency_ms": 300.0, "min_requests": 10, "router_url": "http://127.0.0.1:8000",
        "metrics_url": "http://127.0.0.1:8001/metrics",
    }


# --- (e) every field a sender controls is bounded --------------------------------------------


def unbounded(node: Any, path: str, defs: dict[str, Any]) -> list[str]:
    """Paths of strings without a length, pattern or enum, lists without maxItems, dicts without
    maxProperties, integers without a range, date-times without the time-zone pattern."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        return []  # checked where it is defined
    found: list[str] = []
    kind = node.get("type")
    if kind == "string" and "const" not in node and "enum" not in node:
        if node.get("format") == "date-time":
            if node.get("pattern") != generate._end_anchored_patterns({"pattern": ZONED_DATETIME_PATTERN})["pattern"]:
                found.append(f"{path} (date-time without a time zone pattern)")
        elif "maxLength" not in node and "pattern" not in node:
            found.append(path)
    if kind == "array" and "maxItems" not in node:
        found.append(path)
    if kind == "object" and "properties" not in node and "maxProperties" not in node:
        found.append(path)
    bounds = set(node)
    if kind == "integer" and not ({"minimum", "exclusiveMinimum"} & bounds and {"maximum", "exclusiveMaximum"} & bounds):
        found.append(path)
    for key, child in node.get("properties", {}).items():
        found += unbounded(child, f"{path}.{key}", defs)
    for key in ("items", "additionalProperties", "propertyNames"):
        found += unbounded(node.get(key), f"{path}[{key}]", defs)
    for key in ("anyOf", "oneOf", "allOf"):
        for index, child in enumerate(node.get(key, [])):
            found += unbounded(child, f"{path}<{index}>", defs)
    return found


def test_every_string_list_map_and_integer_of_every_message_is_bounded() -> None:
    problems = []
    for model in generate.message_models() + generate.outside_models():
        schema = generate.json_schema(model)
        defs = schema.get("$defs", {})
        problems += unbounded(schema, model.__name__, defs)
        for name, definition in defs.items():
            problems += unbounded(definition, f"{model.__name__}/$defs/{name}", defs)
    # CommandResult.data values are report documents slipway builds; the map itself is bounded.
    problems = [p for p in problems if p != "CommandResult.data[additionalProperties]"]
    assert not problems, f"unbounded fields: {sorted(set(problems))}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "e" * 100_000),
        ("event_id", "has space"),
        ("causation_id", "c" * 65),
        ("correlation_id", "x" * 129),
        ("correlation_id", "line\nbreak"),
        ("actor", "a" * 201),
        ("source", "s" * 101),
        ("type", "T" * 101),
        ("schema_version", 10**30),
    ],
)
def test_oversize_or_malformed_envelope_fields_are_refused_with_the_field_named(field: str, value: Any) -> None:
    assert [loc[0] for loc in invalid(lambda d: d.update({field: value}))] == [field]


def test_the_discriminator_of_every_union_is_required_in_each_variant() -> None:
    for model in generate.message_models() + generate.outside_models():
        schema = generate.json_schema(model)
        for node in _nodes(schema):
            if isinstance(node.get("discriminator"), dict):
                name = node["discriminator"]["propertyName"]
                for ref in node["discriminator"]["mapping"].values():
                    variant = schema["$defs"][ref.rsplit("/", 1)[-1]]
                    assert name in variant["required"], f"{model.__name__}: {ref} does not require {name}"


def _nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node] + [n for value in node.values() for n in _nodes(value)]
    if isinstance(node, list):
        return [n for item in node for n in _nodes(item)]
    return []


def test_a_release_request_without_an_event_id_is_refused() -> None:
    # Each reader would otherwise invent its own id for the same request, and again on redelivery.
    assert invalid(lambda d: d.pop("event_id")) == [("event_id",)]


def test_the_actor_of_a_request_defaults_to_who_requested_it() -> None:
    data = {k: v for k, v in REALISTIC_RELEASE.items() if k != "actor"}
    assert ReleaseRequested.model_validate(data).actor == "ci:github-actions"
    assert ReleaseRequested.model_validate({**data, "actor": "alice"}).actor == "alice"
