"""The sample service packaged into every demo artifact.

Its behaviour (version, error rate, extra latency) is baked into ``sample_config.json`` inside the
zipapp at build time, so a "faulty release" is a different artifact, exactly like a real bad build.
Stdlib only, except feature flags (``flags.py``): read through the OpenFeature SDK when it is installed
and off otherwise, so the zipapp still runs with a bare ``python3``.

The flag ``new-greeting`` changes the greeting in every answer; a request names its user (the flag's
targeting key, which a percent rollout buckets by) in the ``X-User`` header.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .flags import Flags, open_flags

CONFIG_FILE = "sample_config.json"
GREETING_FLAG = "new-greeting"
GREETINGS = {False: "hello", True: "hello, and welcome to the new greeting"}


@dataclass(frozen=True)
class SampleConfig:
    version: str
    error_rate: float
    extra_latency_ms: int


def load_config() -> SampleConfig:
    """Read the build-time config that sits next to this module inside the zipapp."""
    raw = importlib.resources.files(__package__).joinpath(CONFIG_FILE).read_text("utf-8")
    data = json.loads(raw)
    return SampleConfig(
        version=str(data["version"]),
        error_rate=float(data["error_rate"]),
        extra_latency_ms=int(data["extra_latency_ms"]),
    )


class FailureSchedule:
    """Decides which requests fail so that exactly floor(n * rate) of the first n requests fail.

    Deterministic rather than random so a demo or test sees the configured error rate even over a
    handful of requests.
    """

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._count = 0
        self._lock = threading.Lock()  # handler threads run concurrently

    def next_fails(self) -> bool:
        with self._lock:
            self._count += 1
            n = self._count
        return math.floor(n * self._rate) > math.floor((n - 1) * self._rate)


def make_handler(config: SampleConfig, flags: Flags | None = None) -> type[BaseHTTPRequestHandler]:
    schedule = FailureSchedule(config.error_rate)
    flags = flags or Flags()

    class SampleHandler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections alive so the router's connection pool is actually reused.
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; with Nagle on, the body waits for the
        # client's delayed ACK and every response gains ~40 ms of latency that is not the app's.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
            if self.path == "/healthz":
                # Readiness always passes, so a faulty build only shows itself under real traffic.
                self._send_json(200, {"status": "ok", "version": config.version})
                return
            if config.extra_latency_ms > 0:
                time.sleep(config.extra_latency_ms / 1000)
            if schedule.next_fails():
                self._send_json(500, {"version": config.version, "error": "injected failure"})
            else:
                greeting = GREETINGS[flags.enabled(GREETING_FLAG, self.headers.get("X-User"))]
                self._send_json(200, {"version": config.version, "path": self.path, "greeting": greeting})

        def _send_json(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            """Silenced: one stderr line per request would flood the deployment logs."""

    return SampleHandler


def serve(port: int, config: SampleConfig, flags: Flags | None = None) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(config, flags))
    server.daemon_threads = True  # a slow in-flight request must not hold up shutdown
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    # serve_forever runs in a worker thread because shutdown() deadlocks if called from the
    # thread that is serving, and the signal handler always runs on the main thread.
    # A short poll interval bounds how long shutdown() waits for the serving loop to notice.
    worker = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sample-app-server"
    )
    worker.start()
    try:
        stop_requested.wait()
    finally:
        server.shutdown()
        worker.join()
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="slipway sample application")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.port, load_config(), open_flags())
