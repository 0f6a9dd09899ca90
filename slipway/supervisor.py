"""Run the whole of slipway on one machine: nats-server (unless given one) and the six services.

Every child runs in its own session, so a Ctrl-C aimed at the terminal reaches only the
supervisor, which then stops the services first, the deployed workloads next, NATS last.
"""

import asyncio
import getpass
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from contracts.identity import IDENTITY_NAME_PATTERN, Kind
from libs.embedded_nats import EmbeddedNats
from libs.identities import IdentityStore
from libs.nats_auth import ADMIN, bootstrap, write_authorization

# The six services, and the dashboard that serves the HTTP API and web page beside them (read-only).
SERVICES = (
    "artifact_verifier", "gatekeeper", "deployer", "health_watcher", "rollback_controller", "metrics_collector",
    "dashboard",
)
READY_MARK = b"is up on"
POLL_S = 0.1


class ServiceFailed(RuntimeError):
    """A service exited or did not get ready; the message names it and shows its log tail."""

    def __init__(self, service: str, problem: str, tail: str) -> None:
        self.service, self.problem, self.tail = service, problem, tail
        super().__init__(f"{service} {problem}")


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_stack_file(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return None


class Stack:
    """`with Stack(data_dir) as stack: stack.nats_url ...`, or start()/stop() yourself."""

    def __init__(self, data_dir: Path, nats_url: str | None = None, *, nats_port: int = 0,
                 services: tuple[str, ...] = SERVICES, ready_timeout: float = 30.0, stop_timeout: float = 20.0,
                 service_env: dict[str, dict[str, str]] | None = None,
                 max_restarts: int = 5, restart_window_s: float = 60.0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.nats_url = nats_url
        self.nats_port = nats_port
        self.names = services
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.nats: EmbeddedNats | None = None
        self._log_offsets: dict[str, int] = {}
        self.service_env = service_env or {}
        # A crashed service is started again, up to max_restarts within restart_window_s; past that
        # something is wrong beyond a crash, and the stack stops rather than flapping.
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.restarts: list[tuple[float, str]] = []

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def stack_file(self) -> Path:
        return self.data_dir / "stack.json"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def start(self) -> str:
        """Start NATS (unless a URL was given) and every service; return the NATS URL once all are ready.

        On first start every identity is created (credentials/ in the data directory); the embedded
        server enforces their permissions, and each service runs as its own identity.
        """
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.identities = self._bootstrap_identities()
            if self.nats_url is None:
                nats_dir = self.data_dir / "nats"
                write_authorization(nats_dir, self.identities.registry())
                self.nats = EmbeddedNats(nats_dir, self.nats_port or None, self.log_path("nats"), new_session=True,
                                         authorization=True)
                self.nats_url = self.nats.start()
            self._create_streams()
            for name in self.names:
                self._spawn(name)
            self._wait_ready()
            self._write_stack_file()
        except BaseException:
            self.stop()
            raise
        return self.nats_url

    def _bootstrap_identities(self) -> IdentityStore:
        from libs.settings import Settings
        from libs.service_catalogue import ServiceCatalogue

        from contracts.catalogue import SERVICES as SERVICE_IDENTITIES

        catalogue = ServiceCatalogue.load(Settings(data_dir=self.data_dir).service_catalogue)
        return bootstrap(self.data_dir, SERVICE_IDENTITIES, catalogue.teams(), first_person_name())

    @property
    def dashboard_url(self) -> str | None:
        """The web dashboard's address, once it is up (it writes the port it bound to in the data directory)."""
        from services.dashboard.address import read_address

        return read_address(self.data_dir) if "dashboard" in self.names else None

    def credentials(self, kind: Kind | str, name: str) -> Path:
        """The seed file of one of this stack's identities (tests and tools act as it)."""
        return self.identities.seed_file(kind, name)

    def _create_streams(self) -> None:
        """The operator's identity creates the streams: the services' identities may only read them."""
        from libs.bus import ensure_streams

        admin = self.identities.seed_file(Kind.ADMIN, ADMIN)
        failure: list[BaseException] = []

        def create() -> None:  # in a thread of its own: start() may be called from inside an event loop
            try:
                asyncio.run(ensure_streams(str(self.nats_url), admin))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=create, name="create-streams")
        worker.start()
        worker.join()
        if failure:
            raise failure[0]

    def _spawn(self, name: str) -> None:
        identity = name.replace("_", "-")
        env = dict(os.environ, NATS_URL=str(self.nats_url), SLIPWAY_DATA_DIR=str(self.data_dir), PYTHONUNBUFFERED="1",
                   SLIPWAY_CREDENTIALS=str(self.identities.seed_file(Kind.SERVICE, identity)),
                   SLIPWAY_IDENTITY_REGISTRY=str(self.identities.registry_path),
                   **self.service_env.get(name, {}))
        if env.get("SLIPWAY_LOG_LEVEL", "INFO").upper() not in ("DEBUG", "INFO"):
            env["SLIPWAY_LOG_LEVEL"] = "INFO"  # readiness is read from an INFO line
        log = self.log_path(name)
        self._log_offsets[name] = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            self.services[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"], env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def _ready(self, name: str) -> bool:
        try:
            with open(self.log_path(name), "rb") as log:
                log.seek(self._log_offsets.get(name, 0))
                return READY_MARK in log.read()
        except OSError:
            return False

    def restart(self, name: str) -> None:
        """Start one service again (after it died or was killed) and wait until it is ready."""
        self._spawn(name)
        self._wait_ready((name,))

    def _wait_ready(self, names: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = set(names or self.names)
        while waiting:
            for name in sorted(waiting):
                if self._ready(name):
                    waiting.discard(name)
                elif self.services[name].poll() is not None:
                    raise ServiceFailed(name, f"exited with code {self.services[name].returncode} while starting",
                                        log_tail(self.log_path(name)))
            if waiting and time.monotonic() > deadline:
                name = sorted(waiting)[0]
                raise ServiceFailed(name, f"was not ready within {self.ready_timeout:g}s", log_tail(self.log_path(name)))
            if waiting:
                time.sleep(POLL_S)  # polling child processes' logs: there is no event to wait on

    def revive_dead(self) -> list[tuple[str, int]]:
        """Start again every service that has exited; returns (name, exit code) for each.

        Raises ServiceFailed once a service has needed more than max_restarts within the window.
        """
        revived = []
        for name, proc in list(self.services.items()):
            if proc.poll() is None:
                continue
            now = time.monotonic()
            self.restarts = [(at, n) for at, n in self.restarts if now - at < self.restart_window_s]
            if sum(1 for _, n in self.restarts if n == name) >= self.max_restarts:
                raise ServiceFailed(name, f"exited with code {proc.returncode} after {self.max_restarts} restarts "
                                    f"within {self.restart_window_s:g}s", log_tail(self.log_path(name)))
            self.restarts.append((now, name))
            revived.append((name, proc.returncode))
        for name, _ in revived:  # all at once: services that died together come back together
            self._spawn(name)
        if revived:
            self._wait_ready(tuple(name for name, _ in revived))
        return revived

    def kill_nats(self) -> None:
        """SIGKILL the embedded nats-server (recovery tests); `start_nats_again` brings it back on the same port."""
        if self.nats is None or self.nats.process is None:
            raise RuntimeError("this stack does not run an embedded nats-server")
        self.nats.process.kill()
        self.nats.process.wait()

    def start_nats_again(self) -> None:
        if self.nats is None:
            raise RuntimeError("this stack does not run an embedded nats-server")
        self.nats.start()
        self._write_stack_file()  # a new pid: identity changes signal this one

    def dead_service(self) -> str | None:
        """The name of a service that has exited, if any."""
        return next((name for name, proc in self.services.items() if proc.poll() is not None), None)

    def _write_stack_file(self) -> None:
        record = {"nats_url": self.nats_url, "supervisor_pid": os.getpid(),
                  "services": {name: proc.pid for name, proc in self.services.items()},
                  "embedded_nats": self.nats is not None,
                  "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
                  "nats_monitor_url": self.nats.monitor_url if self.nats else None}
        self.stack_file.write_text(json.dumps(record, indent=2))

    def stop(self) -> int:
        """Stop services (SIGTERM, then SIGKILL after stop_timeout), deployed workloads, NATS; returns workloads stopped."""
        for proc in self.services.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    proc.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for proc in self.services.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    proc.kill()
                proc.wait()
        from services.deployer.local.driver import stop_all

        workloads = stop_all(self.run_dir)
        if self.nats is not None:
            self.nats.stop()
            self.nats = None
        record = read_stack_file(self.data_dir)
        if record is not None and record.get("supervisor_pid") == os.getpid():
            self.stack_file.unlink(missing_ok=True)
        return workloads

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def first_person_name() -> str:
    """The person identity made on first start: the operating-system user, if that is a usable name."""
    try:
        name = re.sub(r"[^a-z0-9_-]", "-", getpass.getuser().lower()).strip("-_")
    except (KeyError, OSError):
        name = ""
    return name if re.fullmatch(IDENTITY_NAME_PATTERN, name) else "operator"
