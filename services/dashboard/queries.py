"""The one port through which the dashboard asks: the collector's own NATS request/reply queries.

The HTTP API answers with what these queries answer, so there is one set of query functions (the
collector's), served over NATS to the CLI and, through this port, over HTTP.
"""

from typing import Protocol

from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from contracts.commands import CommandResult
from contracts.envelope import Model


class QueryUnavailable(Exception):
    """Nobody answered the query (the collector is down or starting): the HTTP API says 503."""


class Queries(Protocol):
    async def ask(self, subject: str, query: Model) -> CommandResult: ...


class NatsQueries:
    """Asks over `connection`, which the dashboard's lifespan sets once it has connected."""

    def __init__(self, connection: Client | None = None, timeout_s: float = 10.0) -> None:
        self.connection, self.timeout_s = connection, timeout_s

    async def ask(self, subject: str, query: Model) -> CommandResult:
        if self.connection is None:
            raise QueryUnavailable("the dashboard is not connected to NATS yet")
        try:
            reply = await self.connection.request(subject, query.model_dump_json().encode(), timeout=self.timeout_s)
        except NoRespondersError as exc:
            raise QueryUnavailable(f"no service answers {subject}: is the metrics-collector running?") from exc
        except NatsTimeout as exc:
            raise QueryUnavailable(f"{subject} did not answer within {self.timeout_s:g}s") from exc
        return CommandResult.model_validate_json(reply.data)
