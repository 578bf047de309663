"""Read template.yaml as CloudFormation would: intrinsic tags, parameters, conditions.

The local stack and the runner take resource definitions, handler paths and environment
variables from here, so what runs locally is what the template deploys.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
NO_VALUE = object()


# libyaml's parser where PyYAML was built with it: the template is read for every local stack.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[misc]
    """SafeLoader that turns `!Ref X` into {"Ref": "X"}, `!Condition X` into {"Condition": "X"} and `!Fn x` into
    {"Fn::Fn": x}."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):  # the two short forms without the Fn:: prefix in JSON
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as CloudFormation reads it; a fresh copy each call (callers may change it)."""
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


def parse_template(text: str) -> dict[str, Any]:
    """A template's text as CloudFormation reads it."""
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(document, dict)
    return document


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, _modified: int) -> dict[str, Any]:
    """Parsed once per version of the file (the modification time is part of the key)."""
    return parse_template(path.read_text())


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameter values and the physical resources made locally."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    pseudo: Mapping[str, str] = field(
        default_factory=lambda: {
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::StackName": "genviral-relay-local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
        }
    )

    def parameter(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        definition = self.template["Parameters"][name]
        if "Default" not in definition:
            raise KeyError(f"parameter {name} has no value and no default")
        return str(definition["Default"])

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.template.get("Conditions", {})[name]))

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def failed_rule_assertions(self) -> list[str]:
        """The AssertDescription of every template rule assertion these parameters break (CloudFormation
        refuses such a stack before creating anything)."""
        return [
            assertion["AssertDescription"]
            for rule in self.template.get("Rules", {}).values()
            if self.evaluate(rule.get("RuleCondition", True))
            for assertion in rule["Assertions"]
            if not self.evaluate(assertion["Assert"])
        ]

    def evaluate(self, node: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(node, list):
            return [value for value in (self.evaluate(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::", "Condition")):
            return {
                key: value for key, value in ((k, self.evaluate(v)) for k, v in node.items()) if value is not NO_VALUE
            }
        ((function, argument),) = node.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument
            return self.attributes[(logical_id, attribute)]
        if function == "Fn::Sub":
            return self._sub(argument)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.evaluate(when_true if self.condition(name) else when_false)
        if function == "Fn::Equals":
            left, right = (self.evaluate(item) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Or":
            return any(self.evaluate(item) for item in argument)
        if function == "Fn::And":
            return all(self.evaluate(item) for item in argument)
        if function == "Fn::Not":
            return not self.evaluate(argument[0])
        if function == "Fn::FindInMap":
            name, top, second = (self.evaluate(item) for item in argument)
            return self.template["Mappings"][name][top][second]
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.evaluate(items))
        raise NotImplementedError(f"intrinsic {function} is not supported by the local stack")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        return self.refs[name]

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.evaluate(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.attributes[(logical_id, attribute)]
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


_SECRET_REFERENCE = re.compile(r"\{\{resolve:secretsmanager:([^}]+)\}\}")


def resolve_secret_references(node: Any, read_secret: Callable[[str], str]) -> Any:
    """Replace `{{resolve:secretsmanager:<name or ARN>[:SecretString[:<json key>]]}}` as CloudFormation does
    at deploy time; `read_secret` returns a secret's string."""

    def replace(match: re.Match[str]) -> str:
        parts = match.group(1).split(":")
        split = 7 if parts[0] == "arn" else 1  # arn:aws:secretsmanager:region:account:secret:name
        secret_id, rest = ":".join(parts[:split]), parts[split:]
        if rest[:1] not in ([], ["SecretString"]) or len(rest) > 2:
            raise NotImplementedError(f"secret reference {match.group(0)!r} is not supported by the local stack")
        value = read_secret(secret_id)
        return str(json.loads(value)[rest[1]]) if len(rest) == 2 else value

    if isinstance(node, str):
        return _SECRET_REFERENCE.sub(replace, node)
    if isinstance(node, list):
        return [resolve_secret_references(item, read_secret) for item in node]
    if isinstance(node, dict):
        return {key: resolve_secret_references(value, read_secret) for key, value in node.items()}
    return node


def functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_environment(resolver: Resolver, logical_id: str) -> dict[str, str]:
    """Globals' variables overlaid with the function's own, evaluated."""
    template = resolver.template
    merged: dict[str, Any] = {}
    merged.update(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    merged.update(template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    return {name: str(resolver.evaluate(value)) for name, value in merged.items()}


def transform_offline(text: str, parameters: Mapping[str, str]) -> dict[str, Any]:
    """A template's text after the SAM transform, as CloudFormation would expand it, with no AWS call: a
    placeholder code location (`sam build` fills in the real one) and no managed-policy lookup."""
    import os

    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    document = yaml_parse(text)
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    document.setdefault("Globals", {}).setdefault("Function", {}).pop("CodeUri", None)

    class OfflinePolicies:
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # samtranslator asks boto3 for a region
    return dict(transform(document, dict(parameters), OfflinePolicies()))
