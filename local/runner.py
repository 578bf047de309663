"""Delivers what AWS would deliver to the handlers the template names, in-process.

A stand-in for `sam local` (which needs Docker): schedule ticks to the poller, SQS batches from
the work queue to the worker (with partial batch failures and redrive as SQS does them), and
API Gateway REST proxy requests to the API function.

On a stack made with `enforce_iam=True`, each handler runs with its own execution role's credentials in
its environment and a boto3 default session of its own (as in its own Lambda process), and the SQS event
source receives and deletes with the worker's role, as Lambda's does.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from genviral_relay.clock import format_ts
from local.stack import REGION, MotoStack, patched_environ


@dataclass
class FakeLambdaContext:
    """The part of Lambda's context object the handlers read."""

    function_name: str = "Function"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 30_000
    region: str = "us-east-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


POLLER = "PollerFunction"
POLLER_SCHEDULE = "PollerFunctionTick"
WORKER = "WorkerFunction"
API = "ApiFunction"
WEBHOOK_DISPATCHER = "WebhookDispatcherFunction"
WEBHOOK_DELIVERY = "WebhookDeliveryFunction"
QUEUE_OF = {WORKER: "WorkQueue", WEBHOOK_DISPATCHER: "WebhookFanoutQueue", WEBHOOK_DELIVERY: "WebhookDeliveryQueue"}
"""The queue each SQS-triggered function's event source polls (template.yaml)."""


@dataclass
class ApiAnswer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class DrainReport:
    batches: int = 0
    processed: int = 0
    failed: int = 0


class LocalRunner:
    def __init__(self, stack: MotoStack) -> None:
        self.stack = stack
        self._last_function: str | None = None
        self._sessions: dict[str, Any] = {}

    # ------------------------------------------------------------------ invocation
    def handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        module_path, _, name = self.stack.handler_path(logical_id).rpartition(".")
        return getattr(importlib.import_module(module_path), name)  # type: ignore[no-any-return]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call the function's handler with its template environment, as Lambda would."""
        from genviral_relay import factories

        environment = {**self.stack.function_env(logical_id), **self.stack.function_credentials(logical_id)}
        with patched_environ(environment), self._default_session(logical_id):
            if self._last_function != logical_id:
                # Another function's execution environment: nothing built for the previous one carries over.
                factories.reset()
                self._last_function = logical_id
            context = FakeLambdaContext(
                function_name=logical_id,
                remaining_millis=self.stack.timeout_seconds(logical_id) * 1000,
                region=REGION,
            )
            return self.handler(logical_id)(event, context)

    @contextmanager
    def _default_session(self, logical_id: str) -> Iterator[None]:
        """Under enforce_iam, the function's own boto3 default session: botocore keeps the credentials a session
        first read, so a session shared by the functions would give all of them the first one's role."""
        if not self.stack.function_credentials(logical_id):
            yield
            return
        import boto3

        if logical_id not in self._sessions:
            self._sessions[logical_id] = _session_of_its_own()  # reads the role's credentials from the environment
        saved, boto3.DEFAULT_SESSION = boto3.DEFAULT_SESSION, self._sessions[logical_id]
        try:
            yield
        finally:
            boto3.DEFAULT_SESSION = saved

    # ------------------------------------------------------------------ triggers
    def tick(self, now: datetime | None = None) -> Any:
        """One EventBridge Scheduler tick: the template's Input, with its placeholders filled in."""
        target = self.stack.template["Resources"][POLLER_SCHEDULE]["Properties"]["Target"]
        moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", moment))
        return self.invoke(POLLER, event)

    def tick_and_work(self) -> DrainReport:
        """One tick, then the worker until the work queue is empty."""
        self.tick()
        return self.drain_work_queue()

    def drain_work_queue(self, *, max_batches: int = 1000) -> DrainReport:
        """Deliver work-queue messages to the worker in batches of 10 until the queue is empty."""
        return self.drain_queue(WORKER, max_batches=max_batches)

    def deliver_webhooks(self, *, now: Callable[[], datetime] | None = None, max_rounds: int = 100) -> DrainReport:
        """The webhook path until nothing is left that is due: the fan-out queue to the dispatcher, then each
        delivery whose `due_at` has come by `now` (the relay's clock, `factories.utc_now`, by default) to the
        delivery function, released from SQS's delay first (local/stack.py `release_delayed`)."""
        from genviral_relay import factories

        clock = now or (lambda: factories.utc_now())
        report = DrainReport()
        for _ in range(max_rounds):
            self.stack.release_delayed(QUEUE_OF[WEBHOOK_DELIVERY], functools.partial(_due, format_ts(clock())))
            fanned = self.drain_queue(WEBHOOK_DISPATCHER)
            attempted = self.drain_queue(WEBHOOK_DELIVERY)
            for part in (fanned, attempted):
                report.batches += part.batches
                report.processed += part.processed
                report.failed += part.failed
            if not fanned.batches and not attempted.batches:
                break
        return report

    def drain_queue(self, function: str, *, max_batches: int = 1000) -> DrainReport:
        """Deliver the messages visible on the function's queue to it in batches of 10 until there are none."""
        sqs = self.stack.client_as(function, "sqs")  # the event source polls with the function's role
        admin_sqs = self.stack.client("sqs")
        queue_url = self.stack.ref(QUEUE_OF[function])
        queue_arn = self.stack.resolver.attributes[(QUEUE_OF[function], "Arn")]
        report = DrainReport()
        for _ in range(max_batches):
            answer = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            report.batches += 1
            failed_ids = self._deliver_batch(function, messages, queue_arn)
            for message in messages:
                if message["MessageId"] in failed_ids:
                    # As Lambda does for reported failures: visible again, and SQS counts the receive. (Lambda lets
                    # the visibility timeout run out; shortening it is the local stand-in, not the role's doing.)
                    admin_sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                    report.failed += 1
                else:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    report.processed += 1
        return report

    def _deliver_batch(self, function: str, messages: list[dict[str, Any]], queue_arn: str) -> set[str]:
        event = {"Records": [sqs_record(message, queue_arn) for message in messages]}
        try:
            response = self.invoke(function, event)
        except Exception:  # a failed invocation returns the whole batch to the queue
            return {message["MessageId"] for message in messages}
        return {failure["itemIdentifier"] for failure in (response or {}).get("batchItemFailures", [])}

    def api(self, method: str, path: str, body: Any = None, *, raw_body: str | None = None) -> ApiAnswer:
        """One API Gateway REST (proxy integration) request to the API function."""
        text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        response = self.invoke(API, api_gateway_event(self.stack.template, method, path, text))
        payload = response.get("body")
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload
        return ApiAnswer(status=response["statusCode"], body=parsed, headers=response.get("headers") or {})


def _due(moment: str, attributes: Mapping[str, str]) -> bool:
    """A delivery whose `due_at` (fixed-width UTC: string order is time order) has come by `moment`."""
    return attributes.get("due_at", "") <= moment


@functools.cache
def _model_loader() -> Any:
    """botocore's service model loader, one for every function's session: a session with a loader of its own parses
    each service's models again (about 40 ms a client)."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def _session_of_its_own() -> Any:
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.register_component("data_loader", _model_loader())
    session = boto3.Session(botocore_session=core)
    paths = _model_loader().search_paths  # boto3 appends its own data path to the loader of every session it makes
    paths[:] = list(dict.fromkeys(paths))
    return session


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as the Lambda event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _resource_for(template: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, str]]:
    """Match a request path against the API events of the template: (resource template, path parameters)."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "Api":
                continue
            route = event["Properties"]["Path"]
            pattern = (
                "^"
                + "/".join(f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else part for part in route.split("/"))
                + "/?$"
            )
            match = re.match(pattern, path)
            if match:
                return route, match.groupdict()
    return path, {}


def api_gateway_event(template: dict[str, Any], method: str, path: str, body: str | None) -> dict[str, Any]:
    path, _, query = path.partition("?")  # as API Gateway passes a query string: decoded, by name
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    resource, path_parameters = _resource_for(template, method, path)
    encoded = body is not None and not body.isascii()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": {"content-type": "application/json", "Host": "local.execute-api"},
        "multiValueHeaders": {},
        "queryStringParameters": {name: found[-1] for name, found in values.items()} or None,
        "multiValueQueryStringParameters": values or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {
                "userArn": "arn:aws:iam::123456789012:user/local",
                "caller": "AIDALOCAL",
                "accessKey": "ASIALOCAL",
                "sourceIp": "127.0.0.1",
            },
        },
        "body": base64.b64encode(body.encode()).decode() if encoded and body is not None else body,
        "isBase64Encoded": encoded,
    }
