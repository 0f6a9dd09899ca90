"""Generate the committed wire contract from the models: one JSON Schema per message and an AsyncAPI 3.0 document.

    python -m contracts.generate            # (re)write contracts/schemas/**.json and contracts/asyncapi.json
    python -m contracts.generate --check    # exit 1 naming every file that differs, is missing or is extra

Output is a pure function of the code (sorted keys, sorted names, trailing newline), so a
regeneration without a model change rewrites identical bytes and a drift test can compare them.
"""

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts import ci
from contracts.catalogue import Channel, Command, channels, command_list
from contracts.commands import SignedCommand
from contracts.rights import PEOPLE_COMMANDS
from contracts.envelope import SCHEMA_VERSION

CONTRACTS_DIR = Path(__file__).resolve().parent
SCHEMAS_DIR = "schemas"
# Schemas for producers outside slipway live apart from the event schemas slipway itself reads.
CI_SCHEMAS_DIR = f"{SCHEMAS_DIR}/ci"
ASYNCAPI_FILE = "asyncapi.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX = "urn:slipway:contracts:"
COMPONENT_SCHEMAS = "#/components/schemas/"
REPLY_CHANNEL = "CommandReply"
EVENT_HEADERS = "EventHeaders"
CI_HEADERS = "CiPublishHeaders"
NO_FINAL_NEWLINE = r"(?!\n)$"
EMBEDDED_SERVER = "embedded"
SELF_OPERATED_SERVER = "self-operated"


def message_models() -> list[type[BaseModel]]:
    """Every model that travels as a whole message: events, the dead letter, command requests and the reply."""
    found: dict[str, type[BaseModel]] = {c.name: c.model for c in channels()}
    for command in command_list():
        found[command.request.__name__] = command.request
        found[command.reply.__name__] = command.reply
        found[wire_model(command).__name__] = wire_model(command)
    return [found[name] for name in sorted(found)]


def wire_model(command: Command) -> type[BaseModel]:
    """What travels on a command subject: a person's command goes inside a SignedCommand."""
    return SignedCommand if command.subject in PEOPLE_COMMANDS else command.request


def outside_models() -> list[type[BaseModel]]:
    """What producers outside slipway send (contracts.ci), by name."""
    found = {c.outside_model.__name__: c.outside_model for c in channels() if c.outside_model is not None}
    return [found[name] for name in sorted(found)]


def json_schema(model: type[BaseModel], namespace: str = "") -> dict[str, Any]:
    """A self-contained JSON Schema (2020-12) for one message, nested models under its own `$defs`."""
    schema = _end_anchored_patterns(model.model_json_schema())
    schema["$schema"] = JSON_SCHEMA_DIALECT
    # A URN rather than a URL: slipway owns no domain, and the id must not pretend to be fetchable.
    schema["$id"] = f"{SCHEMA_ID_PREFIX}{namespace}{model.__name__}"
    schema["title"] = model.__name__
    return schema


def component_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """All message models and everything they nest, as one flat components.schemas map."""
    _, definitions = models_json_schema([(m, "validation") for m in models], ref_template=COMPONENT_SCHEMAS + "{model}")
    schemas = _asyncapi_discriminators(_end_anchored_patterns(definitions.get("$defs", {})))
    schemas[EVENT_HEADERS] = {
        "type": "object",
        "description": "NATS headers every event is published with (contracts.envelope.Event.headers)",
        "properties": {
            "Nats-Msg-Id": {"type": "string", "description": "The event_id; JetStream drops a re-published duplicate"},
            "slipway-type": {"type": "string", "description": "The event class name, same as the payload's type"},
            "traceparent": {"type": "string", "description": "W3C trace context, when tracing is on"},
        },
        "required": ["Nats-Msg-Id", "slipway-type"],
    }
    schemas[CI_HEADERS] = {
        "type": "object",
        "description": f"NATS headers a CI system sets when it publishes a ReleaseRequest. {ci.RETRY_RULES}",
        "properties": {name: {"type": "string", "description": text} for name, text in ci.PUBLISH_HEADERS.items()},
        "required": ["Nats-Msg-Id"],
    }
    return schemas


def _end_anchored_patterns(node: Any) -> Any:
    # In a JSON Schema pattern (ECMA-262) `$` is the end of the string, as in pydantic's regex engine.
    # Validators built on Python's `re` (python-jsonschema) let `$` match before a final newline, so
    # "1.0\n" would pass them and fail slipway; `(?!\n)` means the same to ECMA-262 and closes that gap.
    if isinstance(node, dict):
        found = {key: _end_anchored_patterns(value) for key, value in node.items()}
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith(NO_FINAL_NEWLINE):
            found["pattern"] = pattern[:-1] + NO_FINAL_NEWLINE
        return found
    if isinstance(node, list):
        return [_end_anchored_patterns(item) for item in node]
    return node


def _asyncapi_discriminators(node: Any) -> Any:
    # pydantic writes OpenAPI's {"propertyName": ..., "mapping": ...}; an AsyncAPI Schema Object's
    # discriminator is the property name alone, and the oneOf next to it already lists the variants.
    if isinstance(node, dict):
        converted = {key: _asyncapi_discriminators(value) for key, value in node.items()}
        found = node.get("discriminator")
        if isinstance(found, dict) and "propertyName" in found:
            converted["discriminator"] = found["propertyName"]
        return converted
    if isinstance(node, list):
        return [_asyncapi_discriminators(item) for item in node]
    return node


def message(model: type[BaseModel], *, is_event: bool, headers: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": model.__name__,
        "title": model.__name__,
        "contentType": "application/json",
        "payload": {"$ref": COMPONENT_SCHEMAS + model.__name__},
    }
    doc = inspect.cleandoc(model.__doc__) if model.__doc__ else ""
    if doc:
        found["summary"] = doc.splitlines()[0]
    if is_event:
        found["headers"] = {"$ref": COMPONENT_SCHEMAS + EVENT_HEADERS}
        found["correlationId"] = {
            "description": "The release this event belongs to",
            "location": "$message.payload#/correlation_id",
        }
    if headers is not None:
        found["headers"] = {"$ref": COMPONENT_SCHEMAS + headers}
    return found


def _ref_message(channel: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel}/messages/{name}"}


def event_channel(channel: Channel) -> dict[str, Any]:
    senders, readers = ", ".join(channel.producers), ", ".join(channel.consumers) or "nobody yet (operators inspect it)"
    found: dict[str, Any] = {
        "address": channel.address,
        "title": channel.name,
        "description": f"JetStream stream {channel.stream}. Sent by {senders}; received by {readers}.",
        "messages": {m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in _channel_models(channel)},
        "x-slipway-stream": channel.stream,
    }
    if channel.outside_model is not None:
        found["description"] += (
            f" A producer outside slipway sends {channel.outside_model.__name__}; slipway reads it as {channel.name}."
        )
    if channel.parameters:
        found["parameters"] = {
            name: {"description": p.description, **({"enum": list(p.enum)} if p.enum else {})}
            for name, p in channel.parameters.items()
        }
    return found


def _channel_models(channel: Channel) -> list[type[BaseModel]]:
    return [channel.model] + ([channel.outside_model] if channel.outside_model is not None else [])


def event_operations(channel: Channel) -> dict[str, Any]:
    """One send operation describing the whole channel, then one receive operation per consumer."""
    base = {
        "channel": {"$ref": f"#/channels/{channel.name}"},
        "messages": [_ref_message(channel.name, channel.model.__name__)],
    }
    sent = channel.outside_model or channel.model
    readers = ", ".join(channel.consumers) or "nobody yet"
    found: dict[str, Any] = {
        f"send_{channel.name}": {
            **base,
            "messages": [_ref_message(channel.name, sent.__name__)],
            "action": "send",
            "title": f"Send {channel.name}",
            "description": f"Sent by {', '.join(channel.producers)}; received by {readers}.",
            "tags": [{"name": service} for service in channel.producers],
            "x-slipway-producers": list(channel.producers),
            "x-slipway-consumers": list(channel.consumers),
        }
    }
    for service in channel.consumers:
        found[f"receive_{channel.name}_{service}"] = {
            **base,
            "action": "receive",
            "title": f"{service} receives {channel.name}",
            "tags": [{"name": service}],
        }
    return found


def command_channel(command: Command) -> dict[str, Any]:
    wire = wire_model(command).__name__
    signed = (
        f" A person's command: the request is a SignedCommand whose `command` is the JSON text of a "
        f"{command.request.__name__}, signed by a person whose role allows it (contracts.rights)."
        if command.subject in PEOPLE_COMMANDS else ""
    )
    return {
        "address": command.subject,
        "title": command.name,
        "description": f"Core NATS request/reply, answered by {command.owner} with {command.reply.__name__}.{signed}",
        "messages": {wire: {"$ref": f"#/components/messages/{wire}"}},
    }


def reply_channel(replies: list[type[BaseModel]]) -> dict[str, Any]:
    # The requester's NATS inbox is made up per request, so the reply channel has no fixed address.
    return {
        "address": None,
        "title": REPLY_CHANNEL,
        "description": "The requester's NATS reply inbox (_INBOX.*), chosen per request.",
        "messages": {m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in replies},
    }


def command_operations(command: Command) -> dict[str, Any]:
    base = {
        "channel": {"$ref": f"#/channels/{command.name}"},
        "messages": [_ref_message(command.name, wire_model(command).__name__)],
        "reply": {
            "channel": {"$ref": f"#/channels/{REPLY_CHANNEL}"},
            "messages": [_ref_message(REPLY_CHANNEL, command.reply.__name__)],
        },
    }
    return {
        f"send_{command.name}": {
            **base,
            "action": "send",
            "title": f"Send {command.name}",
            "description": f"Sent by {command.sender}; answered by {command.owner}.",
            "tags": [{"name": command.sender}],
        },
        f"receive_{command.name}_{command.owner}": {
            **base,
            "action": "receive",
            "title": f"{command.owner} answers {command.name}",
            "tags": [{"name": command.owner}],
        },
    }


def asyncapi_document() -> dict[str, Any]:
    event_channels, commands = channels(), command_list()
    replies = sorted({c.reply for c in commands}, key=lambda m: m.__name__)
    messages = {c.model.__name__: message(c.model, is_event=c.has_event_headers) for c in event_channels}
    messages |= {m.__name__: message(m, is_event=False, headers=CI_HEADERS) for m in outside_models()}
    messages |= {c.request.__name__: message(c.request, is_event=False) for c in commands}
    messages |= {wire_model(c).__name__: message(wire_model(c), is_event=False) for c in commands}
    messages |= {m.__name__: message(m, is_event=False) for m in replies}
    operations: dict[str, Any] = {}
    for channel in event_channels:
        operations |= event_operations(channel)
    for command in commands:
        operations |= command_operations(command)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "slipway",
            # The document versions the wire contract, not the package: it moves with schema_version.
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": "Event-driven release orchestration on NATS JetStream. Generated by "
            "`python -m contracts.generate` from contracts/; do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "servers": {
            # `slipway up` picks a free loopback port for its own nats-server: no fixed port to name.
            EMBEDDED_SERVER: {
                "host": "127.0.0.1:{port}",
                "protocol": "nats",
                "description": "The nats-server `slipway up` starts when NATS_URL is not set. Its port is chosen at "
                "start (a free loopback port, or `slipway up --nats-port N`) and written as nats_url to "
                "<data dir>/stack.json (default .slipway/stack.json), where every `slipway` command finds it.",
                "variables": {"port": {"description": "The port `slipway up` chose; read it from stack.json"}},
            },
            SELF_OPERATED_SERVER: {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "A nats-server run as `nats-server -c infra/nats/nats-server.conf` (listen "
                "127.0.0.1:4222), used with `NATS_URL=nats://127.0.0.1:4222 slipway up`.",
            },
        },
        "channels": {c.name: event_channel(c) for c in event_channels}
        | {c.name: command_channel(c) for c in commands}
        | {REPLY_CHANNEL: reply_channel(replies)},
        "operations": operations,
        "components": {"messages": messages, "schemas": component_schemas(message_models() + outside_models())},
    }


def dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Relative path (posix) -> file content, for every generated file."""
    files = {f"{SCHEMAS_DIR}/{m.__name__}.json": dump(json_schema(m)) for m in message_models()}
    files |= {f"{CI_SCHEMAS_DIR}/{m.__name__}.json": dump(json_schema(m, "ci:")) for m in outside_models()}
    files[ASYNCAPI_FILE] = dump(asyncapi_document())
    return dict(sorted(files.items()))


def _extra_files(out_dir: Path, expected: dict[str, str]) -> list[str]:
    # schemas/ holds generated files only; a schema whose model is gone must go too.
    present = {p.relative_to(out_dir).as_posix() for p in (out_dir / SCHEMAS_DIR).rglob("*.json")}
    return sorted(present - set(expected))


def write(out_dir: Path = CONTRACTS_DIR) -> list[str]:
    """Write every generated file under out_dir, remove stale schemas; returns the paths that changed."""
    expected = render()
    changed = []
    for relative, text in expected.items():
        target = out_dir / relative
        data = text.encode()
        if not target.exists() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            changed.append(relative)
    for relative in _extra_files(out_dir, expected):
        (out_dir / relative).unlink()
        changed.append(relative)
    return changed


def check(out_dir: Path = CONTRACTS_DIR) -> list[str]:
    """What differs between out_dir and the code: `differs: x`, `missing: x` or `extra: x` lines."""
    expected = render()
    problems = []
    for relative, text in expected.items():
        target = out_dir / relative
        if not target.exists():
            problems.append(f"missing: {relative}")
        elif target.read_bytes() != text.encode():
            problems.append(f"differs: {relative}")
    problems += [f"extra: {relative}" for relative in _extra_files(out_dir, expected)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on any difference")
    parser.add_argument("--out", type=Path, default=CONTRACTS_DIR, help="directory to write or check")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out)
        if problems:
            print(f"contracts in {args.out} are out of date; run `make contracts`:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"contracts in {args.out} are up to date")
        return 0
    changed = write(args.out)
    print(f"updated {len(changed)} file(s) under {args.out}" + "".join(f"\n  {c}" for c in changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
