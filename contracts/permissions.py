"""What each identity may publish and subscribe to: least privilege, derived from the catalogue.

The catalogue says which service produces which event, consumes through which durable and
answers which command; the permissions below follow from it, so a new event or consumer
cannot be wired without its rights (and cannot be granted rights it is not wired for).
nats-server enforces them (libs.nats_auth renders its configuration); the services check
again what arrives (libs.signing), so a misconfigured server is not the only line.
"""

from dataclasses import dataclass, field

from contracts import catalogue, subjects
from contracts.envelope import Event
from contracts.identity import IdentityRecord, Kind
from contracts.rights import ROLE_COMMANDS, TEAM_SCOPED_COMMANDS, every_team_roles

STREAMS = (subjects.EVENTS_STREAM, subjects.ALERTS_STREAM, subjects.DLQ_STREAM)

# Read-only questions every reader may ask.
QUERIES = (subjects.CMD_RELEASE_STATUS, subjects.CMD_DORA, subjects.CMD_DORA_TEAMS, subjects.CMD_AUDIT_VERIFY, subjects.CMD_LIST_FREEZES,
           subjects.CMD_SHOW_CHANGE, subjects.CMD_LIST_INCIDENTS, subjects.CMD_LIST_APPROVALS, subjects.CMD_LIST_PIRS,
           subjects.CMD_SHOW_RELEASE, subjects.CMD_LIST_INVENTORY, subjects.CMD_LIST_EVIDENCE,
           subjects.CMD_CHECKLIST_REPORT, subjects.CMD_LIST_FLAGS, subjects.CMD_BOTTLENECKS, subjects.CMD_AUDIT_SHOW,
           subjects.CMD_AUDIT_WHO,
           # A checkpoint changes nothing the log says: it is the collector's signed statement of what it holds.
           subjects.CMD_AUDIT_CHECKPOINT)

@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False
    deny_publish: tuple[str, ...] = field(default=())


def inbox_prefix(kind: Kind, name: str) -> str:
    """Replies to this identity arrive under its own inbox, which no other identity may read."""
    return f"_INBOX.{kind.value}-{name}"


def event_producers(event_type: str) -> tuple[str, ...]:
    producers = catalogue.PRODUCERS.get(event_type, ())
    return (producers,) if isinstance(producers, str) else producers


def may_publish(record: IdentityRecord, event_type: str) -> bool:
    """Whether `record` is the kind of identity that produces `event_type` at all (team scope aside)."""
    producers = event_producers(event_type)
    if record.kind is Kind.SERVICE:
        return record.name in producers
    if record.kind is Kind.CI:
        return catalogue.CI in producers
    return False


def permissions_for(record: IdentityRecord) -> Permissions:
    inbox = f"{inbox_prefix(record.kind, record.name)}.>"
    match record.kind:
        case Kind.SERVICE:
            return _service(record.name, inbox)
        case Kind.CI:
            # A team's pipeline requests releases of (and submits evidence for) its own team's services only:
            # the team is a subject token of every event a CI produces.
            teams = record.teams or (record.name,)
            requests = tuple(_team_subject(Event.registry[event].subject, team) for event in catalogue.PRODUCERS
                             if catalogue.CI in event_producers(event) for team in teams)
            return Permissions(publish=(*requests, *QUERIES, *_stream_info()),
                               subscribe=(inbox, subjects.EVENTS_WILDCARD, subjects.ALERTS_WILDCARD))
        case Kind.ONCALL:
            return Permissions(publish=(*QUERIES, *_alert_reader()), subscribe=(inbox, subjects.ALERTS_WILDCARD,
                                                                                  subjects.EVENTS_WILDCARD))
        case Kind.PERSON:
            commands = _person_commands(record)
            return Permissions(
                publish=(*QUERIES, *commands, *_alert_reader()),
                subscribe=(inbox, subjects.ALERTS_WILDCARD, subjects.EVENTS_WILDCARD),
            )
        case Kind.ADMIN:
            return Permissions(publish=(">",), subscribe=(">",), allow_responses=True)
    raise ValueError(f"no permissions for kind {record.kind}")


def _team_subject(template: str, team: str) -> str:
    """`slipway.evt.x.{team}.{service}` as the wildcard subject of one team's events."""
    return subjects.pattern(template.replace("{team}", team))


def _person_commands(record: IdentityRecord) -> list[str]:
    """The command subjects a person's roles allow (contracts.rights). A team-scoped command is sent as
    `<command>.<team>.<service>`: a role acting on every team may send it for any, others only for their teams."""
    allowed: set[str] = set()
    for role in record.roles:
        for command in ROLE_COMMANDS.get(role, ()):
            if command not in TEAM_SCOPED_COMMANDS:
                allowed.add(command)
            elif role in every_team_roles(command):
                allowed |= {command, f"{command}.*.*"}
            else:
                allowed |= {f"{command}.{team}.*" for team in record.teams}
    return sorted(allowed)


def _stream_info() -> tuple[str, ...]:
    # Reading a stream's configuration lets a client check that slipway runs before it publishes.
    return ("$JS.API.INFO", *(f"$JS.API.STREAM.INFO.{stream}" for stream in STREAMS))


def _alert_reader() -> tuple[str, ...]:
    # `slipway alerts tail` reads the alert stream through an ephemeral ordered consumer.
    return _ephemeral_reader(subjects.ALERTS_STREAM)


def _ephemeral_reader(*streams: str) -> tuple[str, ...]:
    # Naming no consumer in the create subject means an ephemeral one: it cannot touch a service's durable.
    return (*_stream_info(), *(subject for stream in streams
                               for subject in (f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>")))


def _reader(inbox: str) -> Permissions:
    """A watching process (catalogue.READERS): queries, and ordered consumers on the event and alert streams."""
    return Permissions(publish=(*QUERIES, *_ephemeral_reader(subjects.EVENTS_STREAM, subjects.ALERTS_STREAM)),
                       subscribe=(inbox,))


def _service(name: str, inbox: str) -> Permissions:
    if name in catalogue.READERS:
        return _reader(inbox)
    produced = [name_ for name_ in catalogue.PRODUCERS if name in event_producers(name_)]
    publish = {subjects.pattern(Event.registry[event].subject) for event in produced}
    durables = catalogue.DURABLES.get(name, ())
    publish |= {subjects.dead_letter_subject(durable) for _, durable in durables}
    publish |= set(_stream_info())
    for stream, durable in durables:
        publish |= {
            f"$JS.API.CONSUMER.CREATE.{stream}.{durable}", f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}", f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}", f"$JS.ACK.{stream}.{durable}.>",
        }
    served = [subject for subject, (_, owner) in catalogue.COMMANDS.items() if owner == name]
    subscribe = {inbox, *served, *(f"{subject}.>" for subject in served)}
    return Permissions(publish=tuple(sorted(publish)), subscribe=tuple(sorted(subscribe)), allow_responses=bool(served))
