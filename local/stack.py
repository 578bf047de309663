"""The template's AWS resources on moto, plus the subscribers a downstream consumer would add.

`LocalStack` creates the table, queues, topic and bus that template.yaml declares (their
definitions are read from the template, not repeated here), a secret holding the Genviral
token, and two subscriber queues: one subscribed to the SNS topic and one targeted by an
EventBridge rule, so tests and the demo see events exactly as a subscriber receives them.

moto runs in-process (`mode="inprocess"`, fast, for tests) or as a real HTTP server on
127.0.0.1 (`mode="server"`), reached through the standard AWS_ENDPOINT_URL like any AWS endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import boto3

from local.template import Resolver, function_environment, functions, load_template

REGION = "us-east-1"
ACCOUNT = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
SECRET_NAME = "genviral-relay/token"  # noqa: S105 - a name, not a value


@dataclass(frozen=True)
class Subscriber:
    """A queue that receives what a downstream subscriber of one target would."""

    target: Literal["sns", "eventbridge"]
    queue_url: str


class LocalStack:
    def __init__(
        self,
        *,
        genviral_api_url: str,
        token: str,
        parameters: Mapping[str, str] | None = None,
        mode: Literal["inprocess", "server"] = "inprocess",
        secret_as_json: bool = False,
    ) -> None:
        self.mode = mode
        self._genviral_api_url = genviral_api_url
        self._token = token
        self._secret_as_json = secret_as_json
        self._parameters = dict(parameters or {})
        self.template = load_template()
        self._mock: Any = None
        self._server: Any = None
        self.endpoint_url: str | None = None
        self.resolver: Resolver
        self.subscribers: dict[str, Subscriber] = {}
        self.secret_arn = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        os.environ.update(FAKE_CREDENTIALS)
        if self.mode == "server":
            import logging

            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call otherwise

            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
        else:
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()
        self.secret_arn = self._create_secret()
        self.resolver = Resolver(
            self.template,
            {"GenviralSecretArn": self.secret_arn, "GenviralApiUrl": self._genviral_api_url, **self._parameters},
        )
        self._create_resources()
        self._create_subscribers()
        return self

    def stop(self) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ access
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url)

    def ref(self, logical_id: str) -> str:
        return self.resolver.refs[logical_id]

    def function_env(self, logical_id: str) -> dict[str, str]:
        env = {**FAKE_CREDENTIALS, **function_environment(self.resolver, logical_id)}
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def cli_environment(self) -> dict[str, str]:
        """What the operations CLI reads to work on this stack: the functions' variables (from the
        template) and the dead-letter queues it redrives."""
        env = {**self.function_env("PollerFunction"), **self.function_env("WorkerFunction")}
        env.pop("POWERTOOLS_LOG_LEVEL", None)
        env["WORK_DLQ_URL"] = self.ref("WorkDLQ")
        env["POLLER_DLQ_URL"] = self.ref("PollerDLQ")
        return env

    def handler_path(self, logical_id: str) -> str:
        return str(functions(self.template)[logical_id]["Properties"]["Handler"])

    def rotate_token(self, token: str) -> None:
        self._token = token
        self.client("secretsmanager").put_secret_value(SecretId=self.secret_arn, SecretString=self._secret_string())

    # ------------------------------------------------------------------ creation
    def _secret_string(self) -> str:
        return json.dumps({"token": self._token}) if self._secret_as_json else self._token

    def _create_secret(self) -> str:
        answer = self.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=self._secret_string())
        return str(answer["ARN"])

    def _create_resources(self) -> None:
        creators = {
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::Events::EventBus": self._create_bus,
        }
        waiting = [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] in creators and self.resolver.resource_enabled(logical_id)
        ]
        # Create in dependency order: a resource waits until what it references exists.
        while waiting:
            progressed = False
            for logical_id in list(waiting):
                resource = self.template["Resources"][logical_id]
                try:
                    properties = self.resolver.evaluate(resource.get("Properties", {}))
                except KeyError:
                    continue
                creators[resource["Type"]](logical_id, properties)
                waiting.remove(logical_id)
                progressed = True
            if not progressed:
                raise RuntimeError(f"cannot resolve the references of {waiting}")

    def _create_table(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{logical_id}-local"
        client = self.client("dynamodb")
        arguments: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if properties.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        client.create_table(**arguments)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

    def _create_queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in properties.items()
            if key in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds")
        }
        client = self.client("sqs")
        url = client.create_queue(QueueName=f"{logical_id}-local", Attributes=attributes)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.resolver.refs[logical_id] = url
        self.resolver.attributes[(logical_id, "Arn")] = arn
        self.resolver.attributes[(logical_id, "QueueName")] = f"{logical_id}-local"

    def _create_topic(self, logical_id: str, properties: dict[str, Any]) -> None:
        arn = self.client("sns").create_topic(Name=f"{logical_id}-local")["TopicArn"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attributes[(logical_id, "TopicName")] = f"{logical_id}-local"
        self.resolver.attributes[(logical_id, "TopicArn")] = arn

    def _create_bus(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = properties["Name"]
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = arn
        self.resolver.attributes[(logical_id, "Name")] = name

    def _create_subscribers(self) -> None:
        sqs = self.client("sqs")
        if "EventsTopic" in self.resolver.refs:
            url = sqs.create_queue(QueueName="sns-subscriber")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.client("sns").subscribe(TopicArn=self.ref("EventsTopic"), Protocol="sqs", Endpoint=arn)
            self.subscribers["sns"] = Subscriber("sns", url)
        if "EventBus" in self.resolver.refs:
            url = sqs.create_queue(QueueName="eventbridge-subscriber")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events = self.client("events")
            bus = self.ref("EventBus")
            events.put_rule(
                Name="all-relay-events", EventBusName=bus, EventPattern=json.dumps({"source": ["genviral.relay"]})
            )
            events.put_targets(Rule="all-relay-events", EventBusName=bus, Targets=[{"Id": "subscriber", "Arn": arn}])
            self.subscribers["eventbridge"] = Subscriber("eventbridge", url)

    # ------------------------------------------------------------------ subscribers
    def received(self, target: Literal["sns", "eventbridge"]) -> list[dict[str, Any]]:
        """Drain a subscriber queue: the messages as the subscriber receives them (SNS or EventBridge envelopes)."""
        sqs = self.client("sqs")
        url = self.subscribers[target].queue_url
        messages: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = answer.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Run with exactly these extra environment variables, then restore the process environment."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
