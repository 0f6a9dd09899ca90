"""Pure routing decisions and traffic statistics of the local router."""

import random
import re
from collections import Counter

import pytest

from services.deployer.local.routing import (
    Backend,
    Pilot,
    Sample,
    choose_backend,
    nearest_rank_percentile,
    parse_backends,
    parse_pilot,
    summarise,
)

V1 = Backend("1.0.0", ("http://127.0.0.1:1",), 90)
V2 = Backend("2.0.0", ("http://127.0.0.1:2",), 10)


def test_weighted_choice_follows_weights() -> None:
    rng = random.Random(7)
    served = Counter(choose_backend([V1, V2], rng, None).version for _ in range(5000))
    assert 0.87 < served["1.0.0"] / 5000 < 0.93


def test_zero_weight_backend_never_gets_unpinned_traffic() -> None:
    canary = Backend("2.0.0", ("http://127.0.0.1:2",), 0)
    rng = random.Random(1)
    stable = Backend("1.0.0", ("http://127.0.0.1:1",), 100)
    assert {choose_backend([stable, canary], rng, None) for _ in range(200)} == {stable}


def test_pinned_version_wins_even_at_zero_weight() -> None:
    canary = Backend("2.0.0", ("http://127.0.0.1:2",), 0)
    stable = Backend("1.0.0", ("http://127.0.0.1:1",), 100)
    assert choose_backend([stable, canary], random.Random(1), "2.0.0") == canary


def test_unknown_pinned_version_falls_back_to_weights() -> None:
    stable = Backend("1.0.0", ("http://127.0.0.1:1",), 100)
    assert choose_backend([stable], random.Random(1), "9.9.9") == stable


def test_no_weighted_backend_means_no_choice() -> None:
    assert choose_backend([], random.Random(1), None) is None
    assert choose_backend([Backend("1", ("http://x",), 0)], random.Random(1), None) is None


def test_parse_backends_accepts_valid_routes_and_empty_list() -> None:
    payload = {"backends": [V1.to_dict(), V2.to_dict()]}
    assert parse_backends(payload) == [V1, V2]
    assert parse_backends({"backends": []}) == []


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        ([{"version": "1", "url": "http://a", "weight": 60}], "sum to 100 (or all be 0), got 60"),
        ([{"version": "1", "url": "http://a", "weight": 101}], "backends[0].weight"),
        ([{"version": "1", "url": "http://a", "weight": 50.5}], "backends[0].weight"),
        ([{"version": "1", "url": "http://a", "weight": True}], "backends[0].weight"),
        ([{"version": "", "url": "http://a", "weight": 100}], "backends[0].version"),
        ([{"version": "1", "url": "ftp://a", "weight": 100}], "backends[0].urls"),
        (
            [{"version": "1", "url": "http://a", "weight": 50},
             {"version": "1", "url": "http://b", "weight": 50}],
            "unique",
        ),
        ("nope", "backends"),
    ],
)
def test_parse_backends_names_what_is_wrong(backends: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_backends({"backends": backends})


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank_percentile(values, 50) == 50.0
    assert nearest_rank_percentile(values, 99) == 99.0
    assert nearest_rank_percentile([7.0], 99) == 7.0
    assert nearest_rank_percentile([], 50) == 0.0


def test_summarise_per_version_since_cutoff() -> None:
    samples = [
        Sample(at=5.0, version="1.0.0", ok=False, latency_ms=999.0),  # before the cutoff
        Sample(at=10.0, version="1.0.0", ok=True, latency_ms=10.0),
        Sample(at=11.0, version="1.0.0", ok=True, latency_ms=30.0),
        Sample(at=12.0, version="2.0.0", ok=False, latency_ms=5.0),
        Sample(at=13.0, version="2.0.0", ok=True, latency_ms=15.0),
    ]
    stats = summarise(samples, since=10.0)
    assert stats["1.0.0"].requests == 2
    assert stats["1.0.0"].errors == 0
    assert stats["1.0.0"].error_rate == 0.0
    assert stats["1.0.0"].p50_ms == 10.0
    assert stats["1.0.0"].p99_ms == 30.0
    assert stats["2.0.0"].errors == 1
    assert stats["2.0.0"].error_rate == 0.5


def test_summarise_reports_requested_versions_without_traffic_as_zero() -> None:
    stats = summarise([], since=0.0, versions=["3.0.0"])
    assert stats["3.0.0"].to_dict() == {
        "requests": 0, "errors": 0, "error_rate": 0.0, "p50_ms": 0.0, "p99_ms": 0.0,
    }


def test_a_port_handed_out_is_not_handed_out_again_while_its_process_may_still_be_binding_it(monkeypatch) -> None:
    """Fifty routers started at once: the OS offered a just-probed port to a second start, whose router then failed
    to bind while the first one answered its readiness check (and took its weights)."""
    from services.deployer.local import processes

    offered = iter([41000, 41000, 41001])  # the OS offers the same free port twice, as it may

    class Probe:
        def bind(self, _address: tuple[str, int]) -> None:
            self.port = next(offered)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

        def close(self) -> None:
            pass

    monkeypatch.setattr(processes, "_handed_out", {})
    monkeypatch.setattr(processes.socket, "socket", lambda *_args: Probe())
    assert [processes.free_port(), processes.free_port()] == [41000, 41001]


def test_a_pilot_group_reaches_its_version_at_weight_0_while_everyone_else_is_routed_by_weight() -> None:
    rng = random.Random(7)
    backends = [Backend("1.0.0", ("http://127.0.0.1:1",), 100), Backend("2.0.0", ("http://127.0.0.1:2",), 0)]
    pilot = parse_pilot({"version": "2.0.0", "header": "X-Beta", "cookie": "beta"})
    assert pilot == Pilot("2.0.0", "X-Beta", "beta")
    assert pilot.includes("1", None) and pilot.includes(None, "yes") and not pilot.includes("", None)
    assert {choose_backend(backends, rng, None, "2.0.0").version for _ in range(50)} == {"2.0.0"}
    assert {choose_backend(backends, rng, None).version for _ in range(50)} == {"1.0.0"}
    assert choose_backend(backends, rng, "1.0.0", "2.0.0").version == "1.0.0", "a pinned request wins"
    gone = [Backend("1.0.0", ("http://127.0.0.1:1",), 100)]
    assert choose_backend(gone, rng, None, "2.0.0").version == "1.0.0", "a rule whose version left routes nothing"


@pytest.mark.parametrize(("payload", "reason"), [
    ("beta", "must be an object"),
    ({"version": "", "header": "X-Beta", "cookie": "beta"}, "pilot.version"),
    ({"version": "2.0.0", "header": "X Beta", "cookie": "beta"}, "pilot.header"),
    ({"version": "2.0.0", "header": "X-Beta", "cookie": "be;ta"}, "pilot.cookie"),
])
def test_a_bad_pilot_rule_is_refused_with_what_is_wrong(payload: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_pilot(payload)
