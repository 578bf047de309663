"""The event contract as JSON Schema, generated from the pydantic models in models/events.py.

Two outputs, both produced here and nowhere else (`make schema` writes them, a test fails when they are stale):
- events/schema/relay-event.schema.json: every event document (SNS `Message`, EventBridge `detail`),
  JSON Schema draft 2020-12, one definition per document told apart by its `event_type` constant (`oneOf`;
  no OpenAPI `discriminator`, which strict JSON Schema validators such as Ajv refuse as an unknown keyword),
  for consumers' validators and code generators;
- the `Content` of each `AWS::EventSchemas::Schema` in template.yaml: the EventBridge event of one
  detail-type around its document, as OpenAPI 3.0, the format of the schemas EventBridge discovers and
  makes code bindings for.

`check_document` validates an event document against the committed file, `check_eventbridge_event` an
EventBridge event against the registry schema in template.yaml; the local stack runs them on everything its
subscribers receive, so every event the tests and the demo publish is checked. The published schemas tolerate
fields they do not list (a later 0.x may add some, `schema_version` stays "1") and require only the fields each
document had when first published (FIRST_PUBLISHED_FIELDS), so a document of an earlier release still validates;
the checks here do not: the relay's own events carry exactly the documented fields, every one of them.
Descriptions say what a field is, never when it came (that history is in CHANGELOG.md).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from genviral_relay.models.endpoint_notices import (
    ENDPOINT_DISABLED,
    ENDPOINT_DISABLED_DETAIL_TYPE,
    EndpointDisabledEvent,
)
from genviral_relay.models.event_kinds import DETAIL_TYPE_BY_EVENT_TYPE, MODEL_BY_EVENT_TYPE
from genviral_relay.models.events import EVENT_SOURCE, PublishedEvent, event_documents_schema
from genviral_relay.models.relay_notices import (
    NOTICE_DETAIL_TYPES,
    AccountStatusEvent,
    AccountStatusType,
    RelayStateEvent,
    RelayStateType,
    notice_documents_schema,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "events" / "schema" / "relay-event.schema.json"
TEMPLATE_PATH = ROOT / "template.yaml"
SCHEMA_ID = "urn:genviral-relay:relay-event:1"
REGENERATE = "make schema"

NOTICE_MODELS: dict[str, type[PublishedEvent]] = {
    **dict.fromkeys(get_args(AccountStatusType), AccountStatusEvent),
    **dict.fromkeys(get_args(RelayStateType), RelayStateEvent),
}
PUBLISHED_MODELS: dict[str, type[PublishedEvent]] = {
    **MODEL_BY_EVENT_TYPE,
    **NOTICE_MODELS,
    ENDPOINT_DISABLED: EndpointDisabledEvent,
}
"""Every document published to the topic and the bus: the events about posts, the notices about accounts and the
relay (`account.*`, `relay.*`), and the notice about an endpoint."""
PUBLISHED_DETAIL_TYPES: dict[str, str] = {
    **DETAIL_TYPE_BY_EVENT_TYPE,
    **NOTICE_DETAIL_TYPES,
    ENDPOINT_DISABLED: ENDPOINT_DISABLED_DETAIL_TYPE,
}
DETAIL_TYPES = tuple(PUBLISHED_DETAIL_TYPES.values())
EVENT_TYPE_BY_DETAIL_TYPE: dict[str, str] = {detail: kind for kind, detail in PUBLISHED_DETAIL_TYPES.items()}


def document_model(event_type: object) -> type[PublishedEvent] | None:
    """The model of the documents of `event_type` (None: no such type)."""
    return next((model for kind, model in PUBLISHED_MODELS.items() if kind == event_type), None)


class ContractViolation(ValueError):
    """An event document that does not match the committed JSON Schema."""


# ---------------------------------------------------------------------- what each document required at first
_OUTCOME_0_3 = (
    "schema_version",
    "event_id",
    "event_type",
    "detected_at",
    "post_id",
    "account_id",
    "status",
    "previous_status",
    "published_url",
    "published_at",
    "error_message",
    "last_attempted_at",
    "post",
)
FIRST_PUBLISHED_FIELDS: dict[str, frozenset[str]] = {
    # Published by 0.3.0: fields added since (account, error_category, post.external_id) stay optional.
    "AccountOutcomeEvent": frozenset(_OUTCOME_0_3),
    "PostSummary": frozenset({"caption", "status", "scheduled_at", "created_at", "media", "music_url"}),
    # First published by 0.4.0, with every field they have now.
    "AccountDelayedEvent": frozenset({*_OUTCOME_0_3, "account", "error_category", "delayed_since"}),
    "PostCompletedEvent": frozenset(
        {"schema_version", "event_id", "event_type", "detected_at", "post_id", "outcome", "posted_count"}
        | {"failed_count", "accounts", "post"}
    ),
    "CompletedAccount": frozenset(
        {"account_id", "account", "status", "published_url", "published_at", "error_message", "error_category"}
        | {"last_attempted_at"}
    ),
    "AccountRef": frozenset({"id", "platform", "username", "display_name", "type"}),
    # First published by 0.5.0, with every field they have now.
    "EndpointDisabledEvent": frozenset(
        {"schema_version", "event_id", "event_type", "detected_at", "webhook_id", "host", "description"}
        | {"disabled_reason", "failing_since", "last_failure_status", "last_failure_reason"}
    ),
    "AccountUrlResolvedEvent": frozenset({*_OUTCOME_0_3, "account", "error_category", "sequence", "posted_event_id"}),
    "AccountStatusEvent": frozenset(
        {"schema_version", "event_id", "event_type", "detected_at", "account_id", "account", "status"}
        | {"previous_status", "posts_at_risk"}
    ),
    "PostsAtRisk": frozenset({"count", "post_ids"}),
    "RelayStateEvent": frozenset(
        {"schema_version", "event_id", "event_type", "detected_at", "reason", "http_status", "until", "paused_at"}
    ),
}
"""The fields each definition required when it was first published under `schema_version` "1": the published
schemas require these and no others. A document a consumer stored from that release must keep validating, so a
field added later is never required there (the relay still sends it: the local checks require every field). A new
definition is listed with all its fields in the release that introduces it; after that, its entry never grows."""

_NOTE = r"\b(?:added|new|introduced|since|changed|deprecated)\b(?: in| since)? v?\d+\.\d+(?:\.\d+)?"
_RELEASE_NOTE = re.compile(rf"\s*\({_NOTE}\)|\s*{_NOTE}\.?", re.I)
"""A sentence of version history in a description ("Added in 0.4."): history belongs in CHANGELOG.md."""
_RELEASE_NUMBER = re.compile(r"\bv?\d+\.\d+(?:\.\d+)?\b")


def without_history(description: str) -> str:
    """`description` without its release notes; ValueError if a release number is left (a note worded otherwise)."""
    kept = _RELEASE_NOTE.sub("", description).strip()
    if _RELEASE_NUMBER.search(kept):
        raise ValueError(f"a schema description names a release, keep that in CHANGELOG.md: {description!r}")
    return kept


def _without_history_everywhere(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: without_history(value)
            if key == "description" and isinstance(value, str)
            else _without_history_everywhere(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_without_history_everywhere(item) for item in node]
    return node


def published_definition(name: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    """One generated definition as the published schemas give it: tolerant of unlisted fields, requiring only
    its first-published fields, its descriptions without version history."""
    published: dict[str, Any] = _without_history_everywhere(_format_on_its_type(tolerant(definition)))
    if "required" not in published:
        return published
    first = FIRST_PUBLISHED_FIELDS.get(name)
    if first is None:
        raise ValueError(f"{name} is a new definition: list its fields in FIRST_PUBLISHED_FIELDS")
    dropped = first - set(published["required"])
    if dropped:  # removing a field, or making it optional, breaks consumers: only a new schema_version may
        raise ValueError(f"{name} no longer requires {sorted(dropped)}, which it was first published with")
    published["required"] = [field for field in published["required"] if field in first]
    return published


def _format_on_its_type(node: Any) -> Any:
    """`node` with a `format` beside an `anyOf` (pydantic puts a nullable field's there) moved into the options that
    have a type: Ajv's strict mode warns of a `format` without a `type` beside it."""
    if isinstance(node, list):
        return [_format_on_its_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    moved = {key: _format_on_its_type(value) for key, value in node.items()}
    if "anyOf" in moved and "format" in moved:
        form = moved.pop("format")
        moved["anyOf"] = [
            {**option, "format": form} if option.get("type") not in (None, "null") else option
            for option in moved["anyOf"]
        ]
    return moved


# ---------------------------------------------------------------------- the document (JSON Schema 2020-12)
def tolerant(node: Any) -> Any:
    """`node` without `additionalProperties: false`: the published schemas accept fields a later 0.x adds
    (additive within a `schema_version`), so a consumer's validator keeps working across upgrades."""
    if isinstance(node, dict):
        return {key: tolerant(value) for key, value in node.items() if (key, value) != ("additionalProperties", False)}
    if isinstance(node, list):
        return [tolerant(item) for item in node]
    return node


def strict(node: Any) -> Any:
    """`node` refusing any field it does not list and requiring every field it lists: the relay's own events carry
    exactly the documented fields, which the local checks hold them to (the published schemas are `tolerant`, and
    require only what a document of the first release had)."""
    if isinstance(node, dict):
        closed = {key: strict(value) for key, value in node.items()}
        if "properties" in closed:
            closed["required"] = list(closed["properties"])
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(node, list):
        return [strict(item) for item in node]
    return node


def document_schema() -> dict[str, Any]:
    generated = event_documents_schema()
    generated.pop("discriminator", None)  # OpenAPI, not JSON Schema: Ajv's strict mode refuses unknown keywords
    # The notices are about no post (no `post_id`): documents of their own beside the events.
    notices = notice_documents_schema()
    shared = {name: node for name, node in notices["$defs"].items() if name in generated["$defs"]}
    if any(generated["$defs"][name] != node for name, node in shared.items()):  # one name, one definition
        raise ValueError(f"the notices define {sorted(shared)} otherwise than the events do")
    generated["$defs"].update(notices["$defs"])
    generated["oneOf"].extend(notices["oneOf"])
    generated["$defs"]["EndpointDisabledEvent"] = EndpointDisabledEvent.model_json_schema(mode="serialization")
    generated["oneOf"].append({"$ref": "#/$defs/EndpointDisabledEvent"})
    generated["$defs"] = {name: published_definition(name, node) for name, node in generated["$defs"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "RelayEvent",
        "description": (
            "An event genviral-relay publishes, as the SNS `Message` and the EventBridge `detail` (source "
            f"`{EVENT_SOURCE}`); `event_type` tells which document it is: "
            + ", ".join(
                f"`{kind}` ({model.__name__}, detail-type `{PUBLISHED_DETAIL_TYPES[kind]}`)"
                for kind, model in PUBLISHED_MODELS.items()
            )
            + ". Delivery is at least once: dedupe on `event_id`. Fields are added within a `schema_version`, "
            "never removed or changed: this schema accepts fields it does not list, and requires only those each "
            "document had when first published (the relay sends every listed field)."
        ),
        **generated,
    }


def render(schema: Mapping[str, Any]) -> str:
    """Pretty and stable: pydantic emits fields in model order, so diffs follow the model."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@functools.cache
def _committed_validator(definition: str | None) -> Any:
    """The committed schema, held to exactly its fields; `definition`: only that document's (by its `$defs` name)."""
    from jsonschema import Draft202012Validator

    schema = strict(json.loads(SCHEMA_PATH.read_text()))
    if definition is not None:
        schema = {"$schema": schema["$schema"], "$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_document(document: Any) -> None:
    """Raise ContractViolation, naming every offending field, unless the document matches the committed schema.

    A document of a known `event_type` is checked against that type's definition alone, so the message names
    its fields rather than "valid under none of the documents"."""
    model = document_model(document.get("event_type")) if isinstance(document, dict) else None
    validator = _committed_validator(model.__name__ if model is not None else None)
    _refuse_if_invalid(validator, document, f"event document violates {SCHEMA_PATH.relative_to(ROOT)}")


def _refuse_if_invalid(validator: Any, instance: Any, subject: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda error: list(map(str, error.absolute_path)))
    if errors:
        found = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)
        raise ContractViolation(f"{subject}: {found}")


@functools.cache
def _registry_validator(detail_type: str) -> Any:
    """Validates an EventBridge event against the registry schema template.yaml deploys for its detail-type."""
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    from local.template import load_template

    logical_id = registry_logical_id(detail_type)
    content = json.loads(load_template(TEMPLATE_PATH)["Resources"][logical_id]["Properties"]["Content"])
    # AWSEvent as the root, with the document's components beside it so its #/components references resolve.
    schema = {**content["components"]["schemas"]["AWSEvent"], "components": strict(content["components"])}
    return OAS30Validator(schema, format_checker=oas30_format_checker)


def check_eventbridge_event(event: Mapping[str, Any]) -> None:
    """Raise ContractViolation unless an EventBridge event meets the registered schema of its detail-type."""
    detail_type = event.get("detail-type")
    if detail_type not in DETAIL_TYPES:
        raise ContractViolation(f"EventBridge event with unknown detail-type {detail_type!r}")
    _refuse_if_invalid(
        _registry_validator(detail_type), event, f"EventBridge event violates the registry schema of {detail_type!r}"
    )


# ---------------------------------------------------------------------- the registry content (OpenAPI 3.0)
_OPENAPI_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "allOf", "nullable", "$ref"}
    | {"title", "description", "format", "default", "minimum", "maxItems", "pattern"}
)


def registry_schema_name(detail_type: str) -> str:
    """As EventBridge names discovered schemas: `<source>@<DetailTypeWithoutSpaces>`."""
    return f"{EVENT_SOURCE}@{detail_type.replace(' ', '')}"


def registry_logical_id(detail_type: str) -> str:
    return f"{detail_type.replace(' ', '')}Schema"


def registry_schema(detail_type: str) -> dict[str, Any]:
    """The EventBridge event of one detail-type (`AWSEvent`, its `detail` the event document) as OpenAPI 3.0."""
    model = PUBLISHED_MODELS[EVENT_TYPE_BY_DETAIL_TYPE[detail_type]]
    generated = model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    definitions = {name: published_definition(name, node) for name, node in generated.pop("$defs", {}).items()}
    detail_name = generated["title"]
    document = published_definition(detail_name, generated)
    envelope = {
        "type": "object",
        "required": ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"],
        "x-amazon-events-detail-type": detail_type,
        "x-amazon-events-source": EVENT_SOURCE,
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"type": "string", "enum": [detail_type]},
            "source": {"type": "string", "enum": [EVENT_SOURCE]},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": {"$ref": f"#/components/schemas/{detail_name}"},
        },
    }
    return {
        "openapi": "3.0.0",
        "info": {
            "title": detail_type.replace(" ", ""),
            "version": "1.0.0",
            "description": f"{detail_type} events of {EVENT_SOURCE}. Generated from the relay's models ({REGENERATE}).",
        },
        "paths": {},
        "components": {
            "schemas": {
                "AWSEvent": envelope,
                detail_name: _to_openapi(document),
                **{name: _to_openapi(definition) for name, definition in definitions.items()},
            }
        },
    }


def _to_openapi(node: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON Schema 2020-12 node as an OpenAPI 3.0 Schema Object; anything without a rule here is refused,
    so a model change the registry cannot express fails `make schema` instead of registering a wrong schema."""
    converted = dict(node)
    if "anyOf" in converted:
        options = converted.pop("anyOf")
        others = [option for option in options if option != {"type": "null"}]
        if len(options) != 2 or len(others) != 1:
            raise ValueError(f"only `X | None` unions can be expressed in OpenAPI 3.0, not {options}")
        (inner,) = others
        # OpenAPI 3.0 ignores siblings of $ref, so a nullable reference goes through allOf.
        converted = {**({"allOf": [inner]} if "$ref" in inner else inner), **converted, "nullable": True}
        if "enum" in converted:  # OpenAPI 3.0.3: `nullable` does not widen an enum; null must be listed
            converted["enum"] = [*converted["enum"], None]
    if "const" in converted:
        converted["enum"] = [converted.pop("const")]
    unknown = set(converted) - _OPENAPI_KEYWORDS
    if unknown:
        raise ValueError(f"no OpenAPI 3.0 rendering for the JSON Schema keywords {sorted(unknown)}")
    if "properties" in converted:
        converted["properties"] = {name: _to_openapi(value) for name, value in converted["properties"].items()}
    if isinstance(converted.get("additionalProperties"), dict):
        converted["additionalProperties"] = _to_openapi(converted["additionalProperties"])
    if "items" in converted:
        converted["items"] = _to_openapi(converted["items"])
    if "allOf" in converted:
        converted["allOf"] = [_to_openapi(item) for item in converted["allOf"]]
    return converted


# ---------------------------------------------------------------------- template.yaml
def template_content(detail_type: str) -> str:
    """The line CloudFormation reads: compact JSON in a single-quoted YAML scalar."""
    compact = json.dumps(registry_schema(detail_type), separators=(",", ":"), sort_keys=True)
    return "'" + compact.replace("'", "''") + "'"


def with_registry_content(template: str) -> str:
    """The template with the `Content:` line of each registry schema resource regenerated."""
    for detail_type in DETAIL_TYPES:
        pattern = re.compile(
            rf"(^  {registry_logical_id(detail_type)}:\n(?:    .*\n|\n)*?      Content: ).*$", re.MULTILINE
        )
        content = template_content(detail_type)
        template, count = pattern.subn(lambda match, line=content: match.group(1) + line, template)
        if count != 1:
            raise ValueError(f"template.yaml has no `Content:` line under {registry_logical_id(detail_type)}")
    return template


# ---------------------------------------------------------------------- command line
def main() -> int:
    outputs = {
        SCHEMA_PATH: render(document_schema()),
        TEMPLATE_PATH: with_registry_content(TEMPLATE_PATH.read_text()),
    }
    for path, text in outputs.items():
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
