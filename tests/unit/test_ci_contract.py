"""The CI contract (contracts/schemas/ci/ReleaseRequest.json) judged by a standard JSON Schema validator.

For every example, python-jsonschema and slipway's own reading (ReleaseRequested.model_validate)
must agree. The schema is deliberately stricter in two documented places (envelope internals and
unknown top-level fields), and weaker in two JSON Schema cannot express (canary weight order,
calendar dates without a format-asserting validator); each is pinned by a test below, so a change
to any of them is seen.
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from contracts import ci, generate, subjects
from contracts.events import ReleaseRequested
from libs.bus import DUPLICATE_WINDOW_S

ROOT = Path(__file__).resolve().parents[2]
CI_SCHEMA_FILE = ROOT / "contracts" / "schemas" / "ci" / "ReleaseRequest.json"

GOOD: dict[str, Any] = {
    "event_id": "01JD8Z6Q4N3K7V2C9X5B1M0P8S",
    "release_id": "shop-1.4.2-01JD8Z6Q4N3K7V2C9X5B1M0P8R",
    "service": "shop",
    "environment": "prod",
    "version": "1.4.2",
    "team": "payments",
    "artifact": {"uri": "https://artifacts.example.com/shop/shop-1.4.2.pyz", "digest": "sha256:" + "9f2c4e1b" * 8},
    "commit": {"sha": "3b7e9c1d5a2f4e6b8c0d1e3f5a7b9c2d4e6f8a0b", "committed_at": "2026-11-27T09:30:00+00:00"},
    "release_class": "standard",
    "strategy": {"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}], "analysis_interval_s": 5},
    "rollback_triggers": {"max_error_rate": 0.05, "max_p99_latency_ms": 300, "min_requests": 10},
    "requested_by": "ci:github-actions",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(CI_SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def changed(mutate: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    mutate(data)
    return data


def slipway_accepts(data: dict[str, Any]) -> bool:
    try:
        ReleaseRequested.model_validate_json(json.dumps(data))
    except ValidationError:
        return False
    return True


def minimal(data: dict[str, Any]) -> None:
    for optional in ("release_class", "rollback_triggers"):
        data.pop(optional)
    data["strategy"] = {"kind": "all-at-once"}


ACCEPTED = {
    "a canary release": lambda d: None,
    "all-at-once with every default": minimal,
    "a Z time zone": lambda d: d["commit"].update(committed_at="2026-11-27T09:30:00Z"),
    "an offset without a colon": lambda d: d["commit"].update(committed_at="2026-11-27T11:30:00.123+0200"),
    "a CI's own event id": lambda d: d.update(event_id="gha-run-4711.attempt-2"),
    "a version with build metadata": lambda d: d.update(version="1.4.2+build.7", release_id="shop-1.4.2+build.7"),
    "longest version, id and requester": lambda d: d.update(
        version="v" * 64, event_id="e" * 64, release_id="r" * 128, requested_by="q" * 200
    ),
    "twenty increasing steps": lambda d: d["strategy"].update(steps=[{"weight": w} for w in range(5, 101, 5)]),
    "unknown nested fields (ignored by both)": lambda d: d["artifact"].update(signature="cosign:..."),
}

REJECTED = {
    "missing kind": lambda d: d["strategy"].pop("kind"),
    # Without a required kind, this one matches exactly one variant of the oneOf and would pass.
    "missing kind on an all-at-once strategy": lambda d: d.update(strategy={"analysis_interval_s": 5}),
    "an unknown kind": lambda d: d["strategy"].update(kind="teleport"),
    "a naive date-time": lambda d: d["commit"].update(committed_at="2026-11-27T09:30:00"),
    "a date without a time": lambda d: d["commit"].update(committed_at="2026-11-27"),
    "an hour out of range": lambda d: d["commit"].update(committed_at="2026-11-27T24:00:00Z"),
    "an md5 digest": lambda d: d["artifact"].update(digest="md5:" + "0" * 32),
    "an upper-case digest": lambda d: d["artifact"].update(digest="sha256:" + "9F2C4E1B" * 8),
    "a short digest": lambda d: d["artifact"].update(digest="sha256:" + "9f2c4e1b" * 7),
    "a version over 64 characters": lambda d: d.update(version="v" * 65),
    "a version with a trailing newline": lambda d: d.update(version="1.4.2\n"),
    "an event id over 64 characters": lambda d: d.update(event_id="e" * 65),
    "an event id of 100,000 characters": lambda d: d.update(event_id="e" * 100_000),
    "an event id with a space": lambda d: d.update(event_id="run 42"),
    "no event id": lambda d: d.pop("event_id"),
    "a release id over 128 characters": lambda d: d.update(release_id="r" * 129),
    "an empty release id": lambda d: d.update(release_id=""),
    "an upper-case service": lambda d: d.update(service="Shop"),
    "an environment over 63 characters": lambda d: d.update(environment="e" * 64),
    "a requester over 200 characters": lambda d: d.update(requested_by="q" * 201),
    "an artifact URI over 2048 characters": lambda d: d["artifact"].update(uri="https://x/" + "a" * 2040),
    "a short commit sha": lambda d: d["commit"].update(sha="abc12"),
    "twenty-one steps": lambda d: d["strategy"].update(steps=[{"weight": w} for w in range(1, 22)]),
    "no steps": lambda d: d["strategy"].update(steps=[]),
    "a repeated step": lambda d: d["strategy"].update(steps=[{"weight": 20}, {"weight": 20}]),
    "a weight of 0": lambda d: d["strategy"].update(steps=[{"weight": 0}]),
    "a weight of 101": lambda d: d["strategy"].update(steps=[{"weight": 101}]),
    "an interval of 0": lambda d: d["strategy"].update(analysis_interval_s=0),
    "an interval over an hour": lambda d: d["strategy"].update(analysis_interval_s=3601),
    "an error rate over 1": lambda d: d["rollback_triggers"].update(max_error_rate=1.5),
    "a p99 limit of 0": lambda d: d["rollback_triggers"].update(max_p99_latency_ms=0),
    "a p99 limit over an hour": lambda d: d["rollback_triggers"].update(max_p99_latency_ms=3_600_001),
    "min_requests of 0": lambda d: d["rollback_triggers"].update(min_requests=0),
    "min_requests over 10,000": lambda d: d["rollback_triggers"].update(min_requests=10_001),
    "an unknown release class": lambda d: d.update(release_class="whenever"),
    "no team": lambda d: d.pop("team"),
}

ENVELOPE_INTERNALS = {
    "source": "ci",
    "causation_id": "01JD8Z6Q4N3K7V2C9X5B1M0P8T",
    "correlation_id": "train-2026-11-27",
    "type": "ReleaseRequested",
    "schema_version": 1,
    "occurred_at": "2026-11-27T09:31:00Z",
    "actor": "ci:github-actions",
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_both_accept(validator: jsonschema.Draft202012Validator, case: str) -> None:
    data = changed(ACCEPTED[case])
    errors = [e.message for e in validator.iter_errors(data)]
    assert not errors, f"{case}: the CI schema refuses what slipway accepts: {errors}"
    assert slipway_accepts(data), case


@pytest.mark.parametrize("case", REJECTED)
def test_both_reject(validator: jsonschema.Draft202012Validator, case: str) -> None:
    data = changed(REJECTED[case])
    assert not validator.is_valid(data), f"{case}: the CI schema accepts what slipway rejects"
    assert not slipway_accepts(data), case


@pytest.mark.parametrize("field", ENVELOPE_INTERNALS)
def test_envelope_internals_are_refused_by_the_ci_schema(
    validator: jsonschema.Draft202012Validator, field: str
) -> None:
    # The one place the schema is stricter on purpose: slipway's own tools set these, a CI does not.
    data = changed(lambda d: d.update({field: ENVELOPE_INTERNALS[field]}))
    messages = [e.message for e in validator.iter_errors(data)]
    assert messages == [f"Additional properties are not allowed ({field!r} was unexpected)"]
    assert slipway_accepts(data), "slipway reads its own envelope fields when they are well formed"


def test_an_unknown_top_level_field_is_refused_by_the_schema_and_ignored_by_slipway(
    validator: jsonschema.Draft202012Validator,
) -> None:
    data = changed(lambda d: d.update(pipeline_url="https://ci.example.com/run/42"))
    assert not validator.is_valid(data)
    assert slipway_accepts(data)


def test_canary_weight_order_is_the_one_rule_only_slipway_checks(validator: jsonschema.Draft202012Validator) -> None:
    data = changed(lambda d: d["strategy"].update(steps=[{"weight": 50}, {"weight": 10}]))
    assert validator.is_valid(data) and not slipway_accepts(data)
    steps = validator.schema["$defs"]["CanaryStrategy"]["properties"]["steps"]
    assert "strictly increase" in steps["description"] and "strictly increase" in validator.schema["description"]


def test_a_date_that_does_not_exist_passes_the_pattern_and_is_said_to(
    validator: jsonschema.Draft202012Validator,
) -> None:
    data = changed(lambda d: d["commit"].update(committed_at="2026-02-30T09:30:00Z"))
    assert validator.is_valid(data) and not slipway_accepts(data)
    assert "30 February" in validator.schema["description"]


def test_every_ci_field_has_exactly_slipways_constraints() -> None:
    # The CI model reuses the event's field types; compare the generated constraints to keep it so.
    ours = generate.json_schema(ci.ReleaseRequest)
    slipways = generate.json_schema(ReleaseRequested)

    def constraints(node: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in node.items() if k not in ("description", "title")}

    assert set(ours["properties"]) <= set(slipways["properties"])
    for name, node in ours["properties"].items():
        assert constraints(node) == constraints(slipways["properties"][name]), name
    for name, node in ours["$defs"].items():
        assert node == slipways["$defs"][name], name
    assert set(ours["required"]) == set(slipways["required"])
    assert not {"source", "causation_id", "correlation_id", "type", "schema_version", "actor"} & set(ours["properties"])
    assert ours["additionalProperties"] is False


def test_the_schema_says_how_to_publish_and_retry(validator: jsonschema.Draft202012Validator) -> None:
    schema = validator.schema
    assert schema["$id"] == "urn:slipway:contracts:ci:ReleaseRequest"
    publish = schema["x-slipway-publish"]
    assert (publish["subject"], publish["stream"]) == (subjects.RELEASE_REQUESTED, subjects.EVENTS_STREAM)
    assert publish["duplicate_window_s"] == DUPLICATE_WINDOW_S == ci.DUPLICATE_WINDOW_S
    assert "event_id" in publish["headers"]["Nats-Msg-Id"]
    assert "event_id" in schema["required"] and "event_id is required" in schema["description"]
    for promise in ("same Nats-Msg-Id", "is a duplicate", "is rejected", "names the release_id"):
        assert promise in publish["retry"], promise
    assert subjects.RELEASE_REQUESTED in schema["description"] and "Nats-Msg-Id" in schema["description"]


def test_asyncapi_carries_the_ci_message_and_its_headers() -> None:
    document = json.loads((ROOT / "contracts" / "asyncapi.json").read_text())
    channel = document["channels"]["ReleaseRequested"]
    assert set(channel["messages"]) == {"ReleaseRequested", "ReleaseRequest"}
    sends = document["operations"]["send_ReleaseRequested"]
    assert sends["messages"] == [{"$ref": "#/channels/ReleaseRequested/messages/ReleaseRequest"}]
    message = document["components"]["messages"]["ReleaseRequest"]
    headers = document["components"]["schemas"][message["headers"]["$ref"].rsplit("/", 1)[-1]]
    assert headers["required"] == ["Nats-Msg-Id"]
    payload = document["components"]["schemas"]["ReleaseRequest"]
    assert payload["additionalProperties"] is False and "event_id" in payload["required"]


def test_asyncapi_servers_name_no_port_slipway_up_does_not_use() -> None:
    document = json.loads((ROOT / "contracts" / "asyncapi.json").read_text())
    conf = (ROOT / "infra" / "nats" / "nats-server.conf").read_text()
    listen = next(line.split(":", 1)[1].strip() for line in conf.splitlines() if line.startswith("listen:"))
    for name, server in document["servers"].items():
        host = server["host"]
        if "{port}" in host:
            # The embedded server: the port is chosen at start, and the entry says where to read it.
            assert "stack.json" in server["description"] and "port" in server["variables"], name
        else:
            assert host == listen and "infra/nats/nats-server.conf" in server["description"], name
    assert any("{port}" in s["host"] for s in document["servers"].values()), "slipway up's own server is missing"
