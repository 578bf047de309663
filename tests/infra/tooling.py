"""The offline tools the template tests run: the SAM transform (the template as CloudFormation receives it) and
cfn-lint. Since 1.54 cfn-lint checks the SAM resources against SAM's schemas without expanding them, so it no longer
sees a bad reference inside a function's properties (its policies, its variables, its events): each template is
linted as written and as the SAM transform expands it. cfn-lint costs seconds per process and per template, most of
all in many regions: the committed template is linted once in every commercial region, and its switched-on variants
together in one process (us-east-1), both runs at the same time, on first use."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local.template import TEMPLATE_PATH, transform_offline

SAMPLE_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:genviral-AbCdEf"
SAMPLE_KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALARM_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:relay-alarms"
WEBHOOK_URL = "https://hooks.example.com/genviral"
WEBHOOK_KEY_SECRET = "genviral/webhook-key"


# ---------------------------------------------------------------------- regions
@functools.cache
def commercial_regions() -> tuple[str, ...]:
    """The regions cfn-lint has resource data for, in the commercial partition `aws` (botocore's partitions.json:
    not China, GovCloud, the ISO partitions or the European Sovereign Cloud)."""
    import botocore
    import cfnlint.helpers

    partitions = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    (commercial,) = [partition for partition in partitions["partitions"] if partition["id"] == "aws"]
    return tuple(region for region in cfnlint.helpers.REGIONS if region in commercial["regions"])


def regions_without(resource_type: str) -> frozenset[str]:
    """The commercial regions where cfn-lint knows no such resource type (CloudFormation refuses it there)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

    missing = set()
    for region in commercial_regions():
        try:
            PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type)
        except ResourceNotFoundError:
            missing.add(region)
    return frozenset(missing)


# ---------------------------------------------------------------------- the SAM transform
def expand(text: str | None = None, parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The template (the committed one by default) after the SAM transform, offline; a fresh copy each call."""
    values = {"GenviralSecretArn": SAMPLE_SECRET_ARN, **(parameters or {})}
    return copy.deepcopy(
        _expanded(text if text is not None else TEMPLATE_PATH.read_text(), tuple(sorted(values.items())))
    )


@functools.lru_cache(maxsize=8)
def _expanded(text: str, parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return transform_offline(text, dict(parameters))


# ---------------------------------------------------------------------- cfn-lint
def start_cfn_lint(*paths: Path, regions: Sequence[str] = ("us-east-1",)) -> subprocess.Popen[str]:
    executable = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or "cfn-lint"
    return subprocess.Popen(  # noqa: S603 - fixed executable, our own templates
        [executable, "--format", "parseable", "--regions", *regions, "--", *map(str, paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def findings(result: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    """The lines cfn-lint reported about one of the templates it linted (`path:line:col:...:rule:message`)."""
    if result.returncode != 0 and not result.stdout.strip():
        raise RuntimeError(f"cfn-lint failed without findings: {result.stderr}")
    return [line for line in result.stdout.splitlines() if line.startswith(f"{path}:")]


def with_defaults(text: str, **defaults: str) -> str:
    """The template with these parameters' defaults changed (a deploy that sets them)."""
    for name, value in defaults.items():
        pattern = re.compile(rf"^(  {name}:\n    Type: String\n    Default: ).*$", re.MULTILINE)
        text, count = pattern.subn(lambda match, value=value: match.group(1) + json.dumps(value), text)
        assert count == 1, f"parameter {name} with a Default line not found"
    return text


VARIANTS: dict[str, Callable[[str], str]] = {
    # A bad reference inside a function's policy: the lint must expand the SAM resources to see it.
    "broken-reference": lambda text: text.replace(
        "Resource: !GetAtt StateTable.Arn", "Resource: !GetAtt StateTablo.Arn", 1
    ),
    "webhook": lambda text: with_defaults(
        text, FailureWebhookUrl=WEBHOOK_URL, FailureWebhookApiKeySecret=WEBHOOK_KEY_SECRET
    ),
    "alarm-topic": lambda text: with_defaults(text, AlarmTopicArn=ALARM_TOPIC_ARN),
    "access-logs": lambda text: with_defaults(text, ApiAccessLogging="true"),
    "kms-key": lambda text: with_defaults(text, GenviralSecretKmsKeyArn=SAMPLE_KMS_KEY_ARN),
}
"""The template as deploys that switch an option on see it (each starts from the committed template)."""


def committed_findings() -> list[str]:
    """What cfn-lint reports about the committed template in any commercial region."""
    return _lint_runs()[0]


def variant_findings(name: str) -> list[str]:
    """What cfn-lint reports about one variant (in us-east-1)."""
    return _lint_runs()[1][name]


@functools.cache
def _lint_runs() -> tuple[list[str], dict[str, list[str]]]:
    original = TEMPLATE_PATH.read_text()
    with tempfile.TemporaryDirectory() as directory:
        committed = _as_written_and_expanded(Path(directory), "committed", original)
        paths: dict[str, tuple[Path, Path]] = {}
        for name, variant in VARIANTS.items():
            text = variant(original)
            assert text != original, f"the {name} variant changes nothing"
            paths[name] = _as_written_and_expanded(Path(directory), name, text)
        every_region = start_cfn_lint(*committed, regions=commercial_regions())
        variants = finished(start_cfn_lint(*(path for pair in paths.values() for path in pair)))
        every_region_result = finished(every_region)
        return [line for path in committed for line in findings(every_region_result, path)], {
            name: [line for path in pair for line in findings(variants, path)] for name, pair in paths.items()
        }


def _as_written_and_expanded(directory: Path, name: str, text: str) -> tuple[Path, Path]:
    written, expanded = directory / f"{name}.yaml", directory / f"{name}.expanded.json"
    written.write_text(text)
    expanded.write_text(json.dumps(expand(text), indent=1))
    return written, expanded


# ---------------------------------------------------------------------- node
def node_with_packages(directory: Path) -> str:
    """The `node` executable, with `directory`'s packages installed as its package-lock.json pins them (`npm ci`,
    on first use and after the lock changes; install scripts off). Skips the test when node or npm is absent;
    a failed install fails it (the npm registry is reachable where the suite runs)."""
    import pytest

    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed")
    installed = directory / "node_modules" / ".package-lock.json"
    lock = directory / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(  # noqa: S603 - npm from PATH, our own lock file
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"npm ci in {directory} failed:\n{done.stderr[-2000:]}"
    return node
