"""The event JSON Schema and the registry schemas: current with the models, valid for their formats, and
strict enough to catch an event off the contract."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi_document

from genviral_relay.models.event_kinds import DETAIL_TYPE_BY_EVENT_TYPE
from genviral_relay.rules.transitions import detect_transitions
from local.template import load_template
from tests.builders import NOW, SAMPLES, account, one_event_of_each_type, outcomes, post
from tools.event_schema import (
    DETAIL_TYPES,
    FIRST_PUBLISHED_FIELDS,
    PUBLISHED_DETAIL_TYPES,
    PUBLISHED_MODELS,
    REGENERATE,
    SCHEMA_PATH,
    ContractViolation,
    _to_openapi,
    check_document,
    check_eventbridge_event,
    document_schema,
    published_definition,
    registry_logical_id,
    registry_schema,
    registry_schema_name,
    render,
    without_history,
)

OUTBOUND = Path(__file__).resolve().parents[2] / "events" / "outbound"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TEMPLATE = load_template()
RELEASE_0_3_DOCUMENTS = sorted(FIXTURES.glob("event-0.3.0-*.json"))
"""Documents as 0.3.0 published them, under the same `schema_version` "1" (no `account`, `error_category` or
`post.external_id`): a consumer may have stored them, and replays them through its validator."""


def outbound_samples() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(OUTBOUND.glob("*.json"))]


def sample_document(sample: dict[str, Any]) -> dict[str, Any]:
    """The event document of an outbound sample: an SNS body's or SNS record's `Message`, an EventBridge `detail`."""
    if "Records" in sample:
        (record,) = sample["Records"]
        return dict(json.loads(record["Sns"]["Message"]))
    return dict(json.loads(sample["Message"])) if "Message" in sample else dict(sample["detail"])


def template_registry_content(detail_type: str) -> dict[str, Any]:
    return dict(json.loads(TEMPLATE["Resources"][registry_logical_id(detail_type)]["Properties"]["Content"]))


def valid_document() -> dict[str, Any]:
    states = [account("00000000-0000-4000-8000-000000000001", status="failed", error_message="rejected")]
    (event,) = outcomes(detect_transitions(None, post(*states), NOW).events)
    return event.model_dump(mode="json")


def document_of(detail_type: str) -> dict[str, Any]:
    """A document of the detail-type as detection makes it, else (a notice, or a type detection does not make
    from a post alone) its committed sample."""
    (event_type,) = [kind for kind, detail in PUBLISHED_DETAIL_TYPES.items() if detail == detail_type]
    made = one_event_of_each_type()
    if event_type in made:
        return made[event_type].model_dump(mode="json")
    sample = SAMPLES / f"eventbridge-{event_type.replace('.', '-')}.json"
    return dict(json.loads(sample.read_text())["detail"])


def aws_event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "8f4c3a52-6c1e-4c1b-9a57-3f0e0c8f6b1d",
        "detail-type": detail_type,
        "source": "genviral.relay",
        "account": "123456789012",
        "time": "2025-02-01T15:01:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


# ---------------------------------------------------------------------- current
def test_committed_schema_is_generated_from_the_models() -> None:
    assert SCHEMA_PATH.read_text() == render(document_schema()), (
        f"{SCHEMA_PATH.name} is stale: run `{REGENERATE}` and commit the result"
    )


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_template_registers_the_generated_schema_of_each_detail_type(detail_type: str) -> None:
    properties = TEMPLATE["Resources"][registry_logical_id(detail_type)]["Properties"]
    assert template_registry_content(detail_type) == registry_schema(detail_type), (
        f"the registry schema in template.yaml is stale: run `{REGENERATE}` and commit the result"
    )
    assert properties["SchemaName"] == registry_schema_name(detail_type)
    assert properties["Type"] == "OpenApi3"
    assert properties["RegistryName"] == {"Fn::GetAtt": ["EventSchemaRegistry", "RegistryName"]}


def test_registry_is_named_after_the_stack_so_stacks_coexist() -> None:
    registry = TEMPLATE["Resources"]["EventSchemaRegistry"]
    assert "${AWS::StackName}" in registry["Properties"]["RegistryName"]["Fn::Sub"]
    # With EventBridge publishing, in the regions that have the registry (tests/infra/test_deploy.py).
    assert registry["Condition"] == "PublishSchemas"
    assert {"Condition": "PublishToEventBridge"} in TEMPLATE["Conditions"]["PublishSchemas"]["Fn::And"]
    assert {"EventSchemaRegistryName", "PostAccountPostedSchemaArn", "PostAccountFailedSchemaArn"} <= set(
        TEMPLATE["Outputs"]
    )


def test_schema_describes_exactly_the_models_fields() -> None:
    schema = document_schema()
    assert schema["$id"].startswith("urn:genviral-relay:")
    for event_type, model in PUBLISHED_MODELS.items():
        definition = schema["$defs"][model.__name__]
        assert {"$ref": f"#/$defs/{model.__name__}"} in schema["oneOf"]
        assert list(definition["properties"]) == list(model.model_fields)
        assert event_type in [
            definition["properties"]["event_type"].get("const"),
            *definition["properties"]["event_type"].get("enum", []),
        ]
        # Required: what the document had when first published, in model order (the default schema_version too).
        first = FIRST_PUBLISHED_FIELDS[model.__name__]
        assert definition["required"] == [field for field in model.model_fields if field in first]


def test_a_nullable_date_time_has_its_format_on_the_string_option() -> None:
    # Ajv's strict mode warns of a `format` beside an `anyOf`: it goes where it applies, and is still checked.
    until = document_schema()["$defs"]["RelayStateEvent"]["properties"]["until"]
    assert "format" not in until
    assert until["anyOf"] == [{"type": "string", "format": "date-time"}, {"type": "null"}]
    paused = document_of("Relay Paused")
    check_document({**paused, "until": None})
    with pytest.raises(ContractViolation, match="until"):
        check_document({**paused, "until": "in five minutes"})


def test_schema_uses_json_schema_keywords_only() -> None:
    # `discriminator` is OpenAPI's: strict validators (Ajv by default) refuse a schema with an unknown keyword.
    assert "discriminator" not in json.dumps(document_schema())
    assert "discriminator" not in SCHEMA_PATH.read_text()


def test_fields_added_after_the_first_release_are_optional_in_the_published_schema() -> None:
    definitions = document_schema()["$defs"]
    outcome, summary = definitions["AccountOutcomeEvent"], definitions["PostSummary"]
    assert {"account", "error_category"} <= set(outcome["properties"]) - set(outcome["required"])
    assert "external_id" in set(summary["properties"]) - set(summary["required"])
    # The registry schemas say the same: a 0.3.0 detail is a valid detail of its detail-type.
    for detail_type in ("Post Account Posted", "Post Account Failed"):
        components = registry_schema(detail_type)["components"]["schemas"]
        assert "account" not in components["AccountOutcomeEvent"]["required"]
        assert "external_id" not in components["PostSummary"]["required"]


def test_a_definition_cannot_stop_requiring_a_first_published_field_nor_appear_unlisted() -> None:
    definition = {"properties": {"a": {}, "b": {}}, "required": ["a", "b"]}
    with pytest.raises(ValueError, match="FIRST_PUBLISHED_FIELDS"):
        published_definition("SomeNewDocument", definition)
    kept = sorted(FIRST_PUBLISHED_FIELDS["PostSummary"] - {"caption"})
    with pytest.raises(ValueError, match=r"no longer requires \['caption'\]"):
        published_definition("PostSummary", {"properties": {}, "required": kept})


# ---------------------------------------------------------------------- version history stays out
def descriptions(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["description"]] if isinstance(node.get("description"), str) else []
        return own + [text for value in node.values() for text in descriptions(value)]
    if isinstance(node, list):
        return [text for item in node for text in descriptions(item)]
    return []


def test_no_published_description_carries_version_history() -> None:
    published = [json.loads(SCHEMA_PATH.read_text())] + [template_registry_content(kind) for kind in DETAIL_TYPES]
    texts = [text for schema in published for text in descriptions(schema)]
    assert len(texts) > 20  # the walk finds the field descriptions
    assert [text for text in texts if re.search(r"\b(?:added|new|introduced) in\b|\bv?\d+\.\d+\b", text, re.I)] == []


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("The account. Added in 0.4.", "The account."),
        ("Null when posted (added in 0.4).", "Null when posted."),
        ("Every account, in Genviral's order.", "Every account, in Genviral's order."),
    ],
)
def test_release_notes_are_cut_from_descriptions(written: str, published: str) -> None:
    assert without_history(written) == published


def test_a_release_mentioned_otherwise_stops_generation() -> None:
    with pytest.raises(ValueError, match="CHANGELOG"):
        without_history("Present from release 0.4 on.")


def test_every_event_type_is_told_apart_by_its_own_definition() -> None:
    for event_type, event in one_event_of_each_type().items():
        document = event.model_dump(mode="json")
        check_document(document)
        assert document["event_type"] == event_type
    completed = one_event_of_each_type()["post.completed"].model_dump(mode="json")
    with pytest.raises(ContractViolation, match="account_id"):  # a completion is no account event
        check_document({**completed, "event_type": "post.account.posted"})
    with pytest.raises(ContractViolation):
        check_document({**completed, "event_type": "post.deleted"})


def test_the_published_schema_tolerates_additive_fields_the_local_check_does_not() -> None:
    from jsonschema import Draft202012Validator

    published = json.loads(SCHEMA_PATH.read_text())
    later = {**valid_document(), "a_field_of_a_later_release": 1}
    later["post"] = {**later["post"], "also_new": True}

    assert "additionalProperties" not in json.dumps(published).replace('"additionalProperties": true', "")
    assert list(Draft202012Validator(published).iter_errors(later)) == []  # a consumer's validator keeps working
    with pytest.raises(ContractViolation, match="a_field_of_a_later_release"):
        check_document(later)  # the relay's own events carry exactly the documented fields


# ---------------------------------------------------------------------- earlier releases' documents
def published_validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def release_0_3_document(name: str = "event-0.3.0-failed.json") -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def test_the_fixtures_are_0_3_documents_without_the_fields_added_since() -> None:
    assert [path.name for path in RELEASE_0_3_DOCUMENTS] == ["event-0.3.0-failed.json", "event-0.3.0-posted.json"]
    for path in RELEASE_0_3_DOCUMENTS:
        document = json.loads(path.read_text())
        assert set(document) == FIRST_PUBLISHED_FIELDS["AccountOutcomeEvent"]
        assert set(document["post"]) == FIRST_PUBLISHED_FIELDS["PostSummary"]


@pytest.mark.parametrize("path", RELEASE_0_3_DOCUMENTS, ids=lambda path: path.name)
def test_a_0_3_document_meets_the_published_schema(path: Path) -> None:
    document = json.loads(path.read_text())
    assert list(published_validator().iter_errors(document)) == []
    # and the registry schema of its detail-type, as EventBridge's code bindings read it
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    detail_type = DETAIL_TYPE_BY_EVENT_TYPE[document["event_type"]]
    content = template_registry_content(detail_type)
    registry = {**content["components"]["schemas"]["AWSEvent"], "components": content["components"]}
    assert (
        list(
            OAS30Validator(registry, format_checker=oas30_format_checker).iter_errors(aws_event(detail_type, document))
        )
        == []
    )
    # The relay's own check still wants every field: the relay sends them all.
    with pytest.raises(ContractViolation, match="'account' is a required property"):
        check_document(document)


@pytest.mark.parametrize(
    "path",
    [
        *[(field,) for field in sorted(FIRST_PUBLISHED_FIELDS["AccountOutcomeEvent"])],
        *[("post", field) for field in sorted(FIRST_PUBLISHED_FIELDS["PostSummary"])],
    ],
    ids="/".join,
)
def test_a_0_3_document_missing_an_original_field_is_refused(path: tuple[str, ...]) -> None:
    document = release_0_3_document()
    *parents, field = path
    container = document
    for parent in parents:
        container = container[parent]
    del container[field]
    errors = list(published_validator().iter_errors(document))
    assert errors, f"a document without {'/'.join(path)} was accepted"
    # one of the errors says so (a oneOf lists its branches' errors in its context)
    reasons = [error.message for error in errors] + [sub.message for error in errors for sub in error.context or ()]
    assert f"'{field}' is a required property" in reasons


# ---------------------------------------------------------------------- samples and real documents
def test_every_outbound_sample_meets_the_schema() -> None:
    samples = outbound_samples()
    documents = [sample_document(sample) for sample in samples]
    # each type, as SNS delivers it to a queue and to a function, and as EventBridge delivers it
    assert len(documents) == 3 * len(PUBLISHED_MODELS)
    assert {document["event_type"] for document in documents} == set(PUBLISHED_MODELS)
    for document in documents:
        check_document(document)


def test_every_outbound_eventbridge_sample_meets_its_registry_schema() -> None:
    events = [sample for sample in outbound_samples() if "detail" in sample]
    assert {event["detail-type"] for event in events} == set(DETAIL_TYPES)
    for event in events:
        check_eventbridge_event(event)


def test_a_document_the_relay_makes_meets_the_schema() -> None:
    check_document(valid_document())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.pop("event_id"), "'event_id' is a required property"),
        (lambda d: d.update(status="deleted"), "status"),
        (lambda d: d.update(event_id="not-a-uuid"), "event_id"),
        (lambda d: d.update(detected_at="yesterday"), "detected_at"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["post"].update(caption=7), "post/caption"),
        (lambda d: d.update(schema_version="2"), "schema_version"),
    ],
)
def test_a_document_off_the_contract_is_refused_naming_the_field(change: Any, named: str) -> None:
    document = valid_document()
    change(document)
    with pytest.raises(ContractViolation, match=r"relay-event\.schema\.json") as refused:
        check_document(document)
    assert named in str(refused.value)


# ---------------------------------------------------------------------- registry format
@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_registry_content_is_a_valid_openapi_3_0_document(detail_type: str) -> None:
    content = template_registry_content(detail_type)
    validate_openapi_document(content)
    event = content["components"]["schemas"]["AWSEvent"]
    assert event["x-amazon-events-source"] == "genviral.relay"
    assert event["x-amazon-events-detail-type"] == detail_type


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_registry_schema_accepts_the_relays_event_and_refuses_others(detail_type: str) -> None:
    document = document_of(detail_type)
    check_eventbridge_event(aws_event(detail_type, document))  # its nullable fields are null

    for broken in (
        {**aws_event(detail_type, document), "detail-type": "Post Account Deleted"},
        {**aws_event(detail_type, document), "source": "genviral.other"},
        {key: value for key, value in aws_event(detail_type, document).items() if key != "time"},
        aws_event(detail_type, {**document, "post": None}),
        aws_event(detail_type, {**document, "surprise": 1}),
    ):
        with pytest.raises(ContractViolation):
            check_eventbridge_event(broken)


def test_openapi_rendering_refuses_what_openapi_3_0_cannot_say() -> None:
    assert _to_openapi({"anyOf": [{"type": "string"}, {"type": "null"}]}) == {"type": "string", "nullable": True}
    assert _to_openapi({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}) == {"allOf": [{"$ref": "#/x"}], "nullable": True}
    with pytest.raises(ValueError, match=r"X \| None"):
        _to_openapi({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    with pytest.raises(ValueError, match="patternProperties"):
        _to_openapi({"type": "object", "patternProperties": {"^a": {"type": "string"}}})
