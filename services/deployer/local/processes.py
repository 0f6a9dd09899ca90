"""Helpers for the detached OS processes the local driver runs (routers and app instances).

Processes are started in their own session so they outlive the orchestrator, ignore a Ctrl-C
aimed at its terminal, and can be stopped as a whole process group by pid alone, even from
another process such as ``slipway down``.

Each one is also marked in its environment (``SLIPWAY_RUN_DIR``, ``SLIPWAY_PROCESS``), which the
kernel keeps in ``/proc/<pid>/environ`` for the process's whole life: whoever started it, and
whether or not anyone recorded its pid, ``marked_groups`` finds it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

POLL_INTERVAL = 0.01  # a short poll: readiness is noticed within 10 ms of the process listening
# Polls per second across every readiness wait of this process: with a hundred processes booting at once each
# is polled every 100 ms rather than every 10, so polling does not take the CPU the processes boot with.
POLLS_PER_SECOND = 1000
_waiting = 0  # readiness waits in progress
MARK_RUN_DIR = "SLIPWAY_RUN_DIR"
MARK_NAME = "SLIPWAY_PROCESS"

# Popen objects are kept so they are not garbage-collected while the child runs (which would warn
# "subprocess still running") and so our own exited children get reaped instead of lingering as
# zombies.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


# Ports this process handed out recently: a port is free when probed but only taken when the child
# binds it, so two starts in that gap (fifty releases at once) could be given the same port; the
# second child then fails to bind while the first one answers its readiness check.
PORT_RESERVATION_S = 60.0
_handed_out: dict[int, float] = {}


def free_ports(count: int) -> list[int]:
    """Distinct ports free right now and not handed out by this process within PORT_RESERVATION_S."""
    now = time.monotonic()
    for port in [p for p, at in _handed_out.items() if now - at > PORT_RESERVATION_S]:
        del _handed_out[port]
    chosen: list[int] = []
    probes: list[socket.socket] = []
    try:
        # Every probe stays bound until all are picked, so the OS cannot return one port twice.
        while len(chosen) < count:
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probes.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port not in _handed_out:
                chosen.append(port)
    finally:
        for probe in probes:
            probe.close()
    for port in chosen:
        _handed_out[port] = now
    return chosen


def free_port() -> int:
    return free_ports(1)[0]


def spawn(
    argv: list[str], log_path: Path, run_dir: Path, name: str, secrets: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` detached, marked as ``name`` started under ``run_dir`` (an absolute path).

    ``secrets`` go in its environment, which only its own user can read, never in argv.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **(secrets or {}), **{MARK_RUN_DIR: str(run_dir), MARK_NAME: name})
    with open(log_path, "ab") as log:  # append: a restarted process keeps its earlier history
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _spawned[process.pid] = process
    return process.pid


def environ_of(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with; empty if it is gone or not ours to read."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, _, value in pairs}


def started_with(pid: int, key: str) -> str | None:
    """The value of ``key`` in the environment ``pid`` was started with, if it has one."""
    return environ_of(pid).get(key)


def marked_groups(run_dir: Path) -> dict[int, str]:
    """Process groups holding a live process marked with ``run_dir``: group id -> marked name.

    Groups rather than pids: a marked process's children inherit the mark and its group, and a
    group outlives its leader, so stopping the group stops everything that was started under it.
    """
    wanted = str(run_dir)
    groups: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        environ = environ_of(pid)
        if environ.get(MARK_RUN_DIR) != wanted or not is_alive(pid):
            continue
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            continue
        if pgid == pid or pgid not in groups:
            groups[pgid] = environ.get(MARK_NAME, "?")
    return groups


def _reap_if_our_child(pid: int) -> bool:
    """True when ``pid`` was our child and has exited (it is reaped as a side effect)."""
    process = _spawned.get(pid)
    if process is not None:
        if process.poll() is None:
            return False
        # Another thread (a stop run in a worker thread, a check in the event loop) may have forgotten it first.
        _spawned.pop(pid, None)
        return True
    try:
        reaped_pid, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # not our child: someone else reaps it
    return reaped_pid == pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The command name is in parentheses and may contain spaces; the state follows the last ')'.
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def is_alive(pid: int) -> bool:
    if _reap_if_our_child(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to another user
    # A zombie has exited; it only waits for a parent (which may never come) to collect it.
    if _is_zombie(pid):
        _collect_zombie_child(pid)
        return False
    return True


def _collect_zombie_child(pid: int) -> None:
    # A multi-threaded leader shows as a zombie while its other threads are still exiting, and
    # cannot be waited for until they are gone, which takes moments; so wait briefly, not WNOHANG.
    process = _spawned.get(pid)
    if process is None:
        return
    try:
        process.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return  # still tracked; a later is_alive or stop reaps it
    _spawned.pop(pid, None)  # a stop in another thread may have reaped it meanwhile


def _wait_until_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL it if it has not exited within timeout."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            # No such group: already gone, or the pid now belongs to an unrelated process that
            # does not lead a group, which must not be touched.
            _reap_if_our_child(pid)
            return
        if _wait_until_dead(pid, timeout):
            return
    raise TimeoutError(f"process {pid} survived SIGKILL for {timeout}s")


async def wait_http_ok(
    url: str, timeout: float, *, pid: int | None = None, client: httpx.AsyncClient | None = None
) -> None:
    """Poll ``url`` until it answers 200, with ``client`` (the caller's long-lived one) or a client of its own.

    Raises TimeoutError naming the url and the last error. With ``pid``, gives up as soon as that
    process has exited, instead of waiting out the timeout for a server that can never come up.
    """
    if client is None:
        # trust_env=False: a proxy from the environment must never sit between us and 127.0.0.1.
        async with httpx.AsyncClient(timeout=2.0, trust_env=False, verify=False) as own:
            return await wait_http_ok(url, timeout, pid=pid, client=own)
    global _waiting
    _waiting += 1
    try:
        await _poll_until_ok(url, timeout, pid, client)
    finally:
        _waiting -= 1


async def _poll_until_ok(url: str, timeout: float, pid: int | None, client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    address = httpx.URL(url)
    polls = 0
    while True:
        try:
            # A refused connect costs a tenth of a refused HTTP request: fifty processes booting at once are
            # polled without the poller taking a core from them. HTTP once something listens.
            if not await _listens(address.host, address.port or 80):
                last_error = "connection refused"
            elif (response := await client.get(url, timeout=2.0)).status_code == 200:
                return
            else:
                last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as err:
            last_error = repr(err)
        # Liveness reads /proc (~0.5 ms): every tenth poll is soon enough to stop waiting for a process that died.
        polls += 1
        if pid is not None and polls % 10 == 1 and not is_alive(pid):
            raise TimeoutError(f"{url} never answered 200: process {pid} exited (last error: {last_error})")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s: {last_error}")
        await asyncio.sleep(max(POLL_INTERVAL, _waiting / POLLS_PER_SECOND))


async def _listens(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(2.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def log_tail(log_path: Path, max_bytes: int = 2000) -> str:
    """The end of a process log, so a start failure is diagnosable from the exception alone."""
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - max_bytes))
            data = log.read()
    except OSError:
        return f"(no log at {log_path})"
    return f"last output in {log_path}:\n{data.decode('utf-8', 'replace')}"
