"""Pure routing and traffic-statistics logic of the local router: no I/O, so unit-testable."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PIN_HEADER = "x-slipway-version"
SERVED_BY_HEADER = "x-slipway-served-by"


@dataclass(frozen=True)
class Backend:
    """The pool of instances of one version; a request goes to one of its `urls`."""

    version: str
    urls: tuple[str, ...]
    weight: int  # share of unpinned traffic in percent, 0-100

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "urls": list(self.urls), "weight": self.weight}

    def pick_url(self, rng: random.Random) -> str:
        return self.urls[0] if len(self.urls) == 1 else rng.choice(self.urls)


@dataclass(frozen=True)
class Pilot:
    """An opt-in pilot group: requests carrying `header` or cookie `cookie` (non-empty) go to `version` first."""

    version: str
    header: str
    cookie: str

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "header": self.header, "cookie": self.cookie}

    def includes(self, header_value: str | None, cookie_value: str | None) -> bool:
        return bool(header_value) or bool(cookie_value)


HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
COOKIE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_pilot(payload: Any) -> Pilot | None:
    """Validate a pilot rule (``{"version", "header", "cookie"}``, or null for none); ValueError says what is wrong."""
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise ValueError('pilot must be an object with "version", "header" and "cookie", or null')
    version, header, cookie = payload.get("version"), payload.get("header"), payload.get("cookie")
    if not isinstance(version, str) or not version:
        raise ValueError("pilot.version must be a non-empty string")
    if not isinstance(header, str) or not HEADER_NAME.match(header):
        raise ValueError(f"pilot.header must be a header name (letters, digits, -), got {header!r}")
    if not isinstance(cookie, str) or not COOKIE_NAME.match(cookie):
        raise ValueError(f"pilot.cookie must be a cookie name (letters, digits, _ . -), got {cookie!r}")
    return Pilot(version, header, cookie)


@dataclass(frozen=True)
class Sample:
    at: float  # unix time the request finished
    version: str
    ok: bool
    latency_ms: float


@dataclass(frozen=True)
class VersionStats:
    requests: int
    errors: int
    error_rate: float
    p50_ms: float
    p99_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


def parse_backends(payload: Any) -> list[Backend]:
    """Validate a ``{"backends": [...]}`` document; ValueError says exactly what is wrong."""
    if not isinstance(payload, dict) or not isinstance(payload.get("backends"), list):
        raise ValueError('body must be a JSON object with a "backends" list')
    backends: list[Backend] = []
    for index, item in enumerate(payload["backends"]):
        where = f"backends[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object with version, urls and weight")
        version, weight = item.get("version"), item.get("weight")
        # "url" (one instance) is what routers wrote before versions ran as pools; their state files still load.
        urls = item["urls"] if "urls" in item else [item.get("url")]
        if not isinstance(version, str) or not version:
            raise ValueError(f"{where}.version must be a non-empty string")
        if not isinstance(urls, list) or not urls:
            raise ValueError(f"{where}.urls must be a non-empty list of http(s) URLs")
        for url in urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"{where}.urls must hold http(s) URLs, got {url!r}")
        # bool is an int subclass; true/false as a weight is a caller bug, not 1/0.
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise ValueError(f"{where}.weight must be an integer between 0 and 100")
        backends.append(Backend(version=version, urls=tuple(url.rstrip("/") for url in urls), weight=weight))
    versions = [backend.version for backend in backends]
    if len(set(versions)) != len(versions):
        raise ValueError(f"versions must be unique, got {versions}")
    total = sum(backend.weight for backend in backends)
    # All at 0: only requests pinned to a version are routed (a pool smoke-tested before it gets any traffic).
    if backends and total not in (0, 100):
        raise ValueError(f"weights must sum to 100 (or all be 0), got {total}")
    return backends


def choose_backend(
    backends: Iterable[Backend], rng: random.Random, pinned_version: str | None, pilot_version: str | None = None
) -> Backend | None:
    """Pick the backend for one request.

    A pinned version wins even at weight 0 (smoke tests and the health-watcher's probes), then the pilot
    group's version for a request in the pilot group: that is how a pilot group reaches a release before
    it gets any share of general traffic. Everyone else is routed by weight.
    """
    candidates = list(backends)
    for wanted in (pinned_version, pilot_version):
        if wanted is None:
            continue
        for backend in candidates:
            if backend.version == wanted:
                return backend
    weighted = [backend for backend in candidates if backend.weight > 0]
    if not weighted:
        return None
    return rng.choices(weighted, weights=[backend.weight for backend in weighted], k=1)[0]


def nearest_rank_percentile(sorted_values: list[float], percentile: float) -> float:
    """Nearest-rank percentile of already sorted values; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarise(
    samples: Iterable[Sample], since: float, versions: Iterable[str] = ()
) -> dict[str, VersionStats]:
    """Per-version traffic statistics over samples taken at or after ``since``.

    ``versions`` lists versions to report even without traffic (as zero requests), so a consumer
    can tell "no traffic yet" apart from "version unknown".
    """
    latencies: dict[str, list[float]] = {version: [] for version in versions}
    errors: dict[str, int] = {version: 0 for version in latencies}
    for sample in samples:
        if sample.at < since:
            continue
        latencies.setdefault(sample.version, []).append(sample.latency_ms)
        errors[sample.version] = errors.get(sample.version, 0) + (0 if sample.ok else 1)
    stats: dict[str, VersionStats] = {}
    for version, values in latencies.items():
        values.sort()
        requests = len(values)
        stats[version] = VersionStats(
            requests=requests,
            errors=errors[version],
            error_rate=errors[version] / requests if requests else 0.0,
            p50_ms=nearest_rank_percentile(values, 50),
            p99_ms=nearest_rank_percentile(values, 99),
        )
    return stats
