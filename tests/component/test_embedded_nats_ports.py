"""The embedded nats-server picks new ports when one it picked was taken before it could bind it (seen in CI),
and keeps a port the caller chose, saying why it cannot start."""

import socket
from pathlib import Path

import pytest

from libs.embedded_nats import EmbeddedNats, PortTaken


def test_a_first_start_whose_port_was_taken_picks_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: the server cannot bind it, nothing answers on it
        server = EmbeddedNats(tmp_path / "nats")
        server.port = taken.getsockname()[1]  # as if another process took the port free_port() had picked
        try:
            url = server.start()
            assert url != f"nats://127.0.0.1:{taken.getsockname()[1]}" and url == server.url
        finally:
            server.stop()


def test_a_port_the_caller_chose_is_kept_and_the_reason_given(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        server = EmbeddedNats(tmp_path / "nats", port=taken.getsockname()[1])
        with pytest.raises(PortTaken, match="address already in use"):
            server.start()
