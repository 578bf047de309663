"""The template's AWS resources on moto, plus the subscribers a downstream consumer would add.

`MotoStack` creates the table, queues, topic, bus, rules, roles and API destinations that
template.yaml declares (their definitions are read from the template, not repeated here; resources
moto cannot make, such as alarms and the schema registry, are left out, and so is whatever refers
to them), a secret holding the Genviral token, and two subscriber queues: one subscribed to the SNS
topic and one targeted by an EventBridge rule, so tests and the demo see events exactly as a
subscriber receives them. Every event a subscriber receives is checked against the committed JSON
Schema and, from the bus, the registry schema (tools/event_schema.py).

moto runs in-process (`mode="inprocess"`, fast, for tests) or as a real HTTP server on
127.0.0.1 (`mode="server"`), reached through the standard AWS_ENDPOINT_URL like any AWS endpoint.

With `enforce_iam=True`, moto's IAM access control is on once the stack is made (local/roles.py): each
function gets its own execution role as the SAM transform builds it (`function_credentials`, which the
runner hands the handlers), and the stack's own clients act as an admin.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3

from local.template import Resolver, function_environment, functions, load_template, resolve_secret_references
from tools.event_schema import check_document, check_eventbridge_event

if TYPE_CHECKING:
    from local.roles import Credentials, FunctionRole, IamEnforcement

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


class MotoStack:
    def __init__(
        self,
        *,
        genviral_api_url: str,
        token: str,
        parameters: Mapping[str, str] | None = None,
        mode: Literal["inprocess", "server"] = "inprocess",
        secret_as_json: bool = False,
        secrets: Mapping[str, str] | None = None,
        enforce_iam: bool = False,
    ) -> None:
        """`secrets`: further secrets to create first (name -> value), for parameters that name one.
        `enforce_iam`: turn moto's IAM access control on once the stack is made, each function with its own role."""
        self.mode = mode
        self._genviral_api_url = genviral_api_url
        self._token = token
        self._secret_as_json = secret_as_json
        self._parameters = dict(parameters or {})
        self._secrets = dict(secrets or {})
        self.template = load_template()
        self._mock: Any = None
        self._server: Any = None
        self.endpoint_url: str | None = None
        self.resolver: Resolver
        self.subscribers: dict[str, Subscriber] = {}
        self.secret_arn = ""
        self._clients: dict[str, Any] = {}
        self._enforce_iam = enforce_iam
        self.enforcement: IamEnforcement | None = None
        self.roles: dict[str, FunctionRole] = {}
        """Function logical id -> the execution role it runs with (enforce_iam only)."""
        self._admin: Credentials | None = None
        self._role_clients: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> MotoStack:
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
            _serialize_in_process_moto()
        self.secret_arn = self._create_secret()
        for name, value in self._secrets.items():
            self.client("secretsmanager").create_secret(Name=name, SecretString=value)
        self.resolver = Resolver(
            self.template,
            {"GenviralSecretArn": self.secret_arn, "GenviralApiUrl": self._genviral_api_url, **self._parameters},
        )
        refused = self.resolver.failed_rule_assertions()
        if refused:
            self.stop()
            raise ValueError("the template's rules refuse these parameters: " + " ".join(refused))
        self._create_resources()
        self._create_subscribers()
        if self._enforce_iam:
            try:
                self._enforce_roles()
            except Exception:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        if self.enforcement is not None:
            self.enforcement.stop()
            self.enforcement = None
        self._clients.clear()
        self._role_clients.clear()
        self._admin = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MotoStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ access
    def client(self, service: str) -> Any:
        """One client per service for the stack's life (making one costs about 20 ms); the admin's under enforce_iam."""
        if service not in self._clients:
            if self._admin is not None:
                self._clients[service] = self._client_with(self._admin, service)
            elif self.endpoint_url is None:
                self._clients[service] = _in_process_client(service)
            else:
                self._clients[service] = boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def client_as(self, logical_id: str, service: str) -> Any:
        """A client acting as the function's execution role, for what AWS does with that role on the function's
        behalf (the SQS event source's receives and deletes); `client(service)` without enforce_iam."""
        if logical_id not in self.roles:
            return self.client(service)
        key = (logical_id, service)
        if key not in self._role_clients:
            self._role_clients[key] = self._client_with(self.roles[logical_id].credentials, service)
        return self._role_clients[key]

    def function_credentials(self, logical_id: str) -> dict[str, str]:
        """The environment variables carrying the function's role credentials, as Lambda sets them; empty
        without enforce_iam (the functions then share FAKE_CREDENTIALS)."""
        role = self.roles.get(logical_id)
        return role.credentials.environment() if role is not None else {}

    def _client_with(self, credentials: Credentials, service: str) -> Any:
        return boto3.client(
            service, region_name=REGION, endpoint_url=self.endpoint_url, **credentials.client_arguments()
        )

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
        if self._admin is not None:  # under enforce_iam the operator acts as the admin
            env.update(self._admin.environment())
        env["WORK_DLQ_URL"] = self.ref("WorkDLQ")
        env["POLLER_DLQ_URL"] = self.ref("PollerDLQ")
        env["WEBHOOKS_DLQ_URL"] = self.ref("WebhookDLQ")
        env["WEBHOOK_DELIVERY_QUEUE_URL"] = self.ref("WebhookDeliveryQueue")
        if self.resolver.resource_enabled("FailureWebhookDLQ"):
            env["FAILURE_WEBHOOK_DLQ_URL"] = self.ref("FailureWebhookDLQ")
            env["FAILURE_WEBHOOK_URL"] = self.resolver.parameter("FailureWebhookUrl")
            env["FAILURE_WEBHOOK_API_KEY_SECRET"] = self.resolver.parameter("FailureWebhookApiKeySecret")
            env["FAILURE_WEBHOOK_API_KEY_HEADER"] = self.resolver.parameter("FailureWebhookApiKeyHeader")
        return env

    def handler_path(self, logical_id: str) -> str:
        return str(functions(self.template)[logical_id]["Properties"]["Handler"])

    def timeout_seconds(self, logical_id: str) -> int:
        """The function's `Timeout`, else the template's global one (Lambda's default is 3 s)."""
        own = functions(self.template)[logical_id]["Properties"].get("Timeout")
        shared = self.template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        return int(own if own is not None else shared)

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
            "AWS::SQS::QueuePolicy": self._create_queue_policy,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::Events::EventBus": self._create_bus,
            "AWS::Events::Rule": self._create_rule,
            "AWS::Events::Connection": self._create_connection,
            "AWS::Events::ApiDestination": self._create_api_destination,
            "AWS::IAM::Role": self._create_role,
            "AWS::KMS::Key": self._create_key,
        }
        waiting = [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] in creators and self.resolver.resource_enabled(logical_id)
        ]
        # Create in dependency order: a resource waits until what it references exists, and is left out
        # when it references a resource that is never made here.
        while waiting:
            progressed = False
            for logical_id in list(waiting):
                resource = self.template["Resources"][logical_id]
                try:
                    properties = self.resolver.evaluate(resource.get("Properties", {}))
                except KeyError as missing:
                    needed = missing.args[0][0] if isinstance(missing.args[0], tuple) else missing.args[0]
                    if needed in waiting:
                        continue
                    if needed not in self.template["Resources"] and not self._function_role(needed):
                        raise
                    waiting.remove(logical_id)
                    progressed = True
                    continue
                properties = resolve_secret_references(properties, self._read_secret)
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

    def _function_role(self, logical_id: str) -> bool:
        """A role the SAM transform makes for a function (`<Function>Role`): the webhook queues' policies name them.
        Those policies are left out here (moto does not enforce queue policies; tests/infra checks them)."""
        function = self.template["Resources"].get(logical_id.removesuffix("Role"), {})
        return logical_id.endswith("Role") and function.get("Type") == "AWS::Serverless::Function"

    def _create_queue_policy(self, logical_id: str, properties: dict[str, Any]) -> None:
        for url in properties["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
            )
        self._made(logical_id, f"{logical_id}-local")

    def _create_rule(self, logical_id: str, properties: dict[str, Any]) -> None:
        name, bus = f"{logical_id}-local", properties.get("EventBusName", "default")
        events = self.client("events")
        arguments = {"Name": name, "EventBusName": bus, "State": properties.get("State", "ENABLED")}
        if "EventPattern" in properties:
            arguments["EventPattern"] = json.dumps(properties["EventPattern"])
        if "ScheduleExpression" in properties:
            arguments["ScheduleExpression"] = properties["ScheduleExpression"]
        arn = events.put_rule(**arguments)["RuleArn"]
        if properties.get("Targets"):
            events.put_targets(Rule=name, EventBusName=bus, Targets=properties["Targets"])
        self._made(logical_id, name, Arn=arn)

    def _create_connection(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{logical_id}-local"
        events = self.client("events")
        arn = events.create_connection(
            Name=name,
            Description=properties.get("Description", ""),
            AuthorizationType=properties["AuthorizationType"],
            AuthParameters=properties["AuthParameters"],
        )["ConnectionArn"]
        self._made(logical_id, name, Arn=arn, SecretArn=events.describe_connection(Name=name)["SecretArn"])

    def _create_api_destination(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{logical_id}-local"
        arn = self.client("events").create_api_destination(
            Name=name,
            Description=properties.get("Description", ""),
            ConnectionArn=properties["ConnectionArn"],
            InvocationEndpoint=properties["InvocationEndpoint"],
            HttpMethod=properties["HttpMethod"],
            InvocationRateLimitPerSecond=int(properties.get("InvocationRateLimitPerSecond", 300)),
        )["ApiDestinationArn"]
        self._made(logical_id, name, Arn=arn)

    def _create_role(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{logical_id}-local"
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
        )
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        self._made(logical_id, name, Arn=role["Role"]["Arn"])

    def _create_key(self, logical_id: str, properties: dict[str, Any]) -> None:
        # moto keeps the key policy but does not enforce it: the roles' own policies are what the enforced runs
        # check, and tests/functional/test_webhook_secrets.py checks the policy in the template.
        metadata = self.client("kms").create_key(
            Description=properties.get("Description", ""), Policy=json.dumps(properties["KeyPolicy"])
        )["KeyMetadata"]
        self._made(logical_id, metadata["KeyId"], Arn=metadata["Arn"])

    def _enforce_roles(self) -> None:
        """The functions' roles and the admin, made while access control is off; then access control on."""
        from local.roles import IamEnforcement, create_admin, create_function_roles

        iam, sts = self.client("iam"), self.client("sts")
        self.roles = create_function_roles(iam, sts, self.resolver)
        admin = create_admin(iam, sts)
        self._clients.clear()  # from here on the stack's own calls are the admin's
        self._admin = admin
        self.enforcement = IamEnforcement().start()

    def _made(self, logical_id: str, ref: str, **attributes: str) -> None:
        """What `!Ref` and `!GetAtt` of a created resource return."""
        self.resolver.refs[logical_id] = ref
        for attribute, value in attributes.items():
            self.resolver.attributes[(logical_id, attribute)] = value

    def _read_secret(self, secret_id: str) -> str:
        return str(self.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])

    def _create_subscribers(self) -> None:
        if "EventsTopic" in self.resolver.refs:
            self.subscribe_to_topic("sns")
        if "EventBus" in self.resolver.refs:
            self.subscribe_to_bus("eventbridge", event_pattern={"source": ["genviral.relay"]})

    # ------------------------------------------------------------------ subscribers
    def subscribe_to_topic(
        self,
        name: str,
        *,
        filter_policy: Mapping[str, Any] | None = None,
        scope: Literal["MessageAttributes", "MessageBody"] = "MessageAttributes",
    ) -> Subscriber:
        """A queue subscribed to the events topic, as a consumer would add one (with its filter policy, on the
        message attributes or, `scope` "MessageBody", on the event document)."""
        url, arn = self._subscriber_queue(name)
        attributes = (
            {"FilterPolicy": json.dumps(filter_policy), "FilterPolicyScope": scope} if filter_policy is not None else {}
        )
        self.client("sns").subscribe(
            TopicArn=self.ref("EventsTopic"), Protocol="sqs", Endpoint=arn, Attributes=attributes
        )
        self.subscribers[name] = Subscriber("sns", url)
        return self.subscribers[name]

    def subscribe_to_bus(self, name: str, *, event_pattern: Mapping[str, Any]) -> Subscriber:
        """A queue targeted by a rule with this pattern on the events bus, as a consumer would add one."""
        url, arn = self._subscriber_queue(name)
        events, bus = self.client("events"), self.ref("EventBus")
        events.put_rule(Name=f"{name}-subscriber", EventBusName=bus, EventPattern=json.dumps(event_pattern))
        events.put_targets(Rule=f"{name}-subscriber", EventBusName=bus, Targets=[{"Id": "subscriber", "Arn": arn}])
        self.subscribers[name] = Subscriber("eventbridge", url)
        return self.subscribers[name]

    def _subscriber_queue(self, name: str) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"{name}-subscriber")["QueueUrl"]
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def received(self, name: str) -> list[dict[str, Any]]:
        """Drain a subscriber queue: the messages as the subscriber receives them (SNS or EventBridge envelopes),
        each one's event document checked against the committed JSON Schema, and each EventBridge event against
        its registry schema (ContractViolation otherwise)."""
        sqs = self.client("sqs")
        subscriber = self.subscribers[name]
        messages: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=subscriber.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = answer.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                envelope = json.loads(message["Body"])
                if subscriber.target == "sns":
                    check_document(json.loads(envelope["Message"]))
                else:
                    check_document(envelope["detail"])
                    # moto's SQS targets leave out `account`, which EventBridge always sets.
                    check_eventbridge_event({"account": ACCOUNT, **envelope})
                messages.append(envelope)
                sqs.delete_message(QueueUrl=subscriber.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def release_delayed(self, logical_id: str, due: Callable[[Mapping[str, str]], bool]) -> int:
        """Make visible now the queue's delayed messages whose message attributes (by name: their values) `due`
        accepts; answer how many. SQS's DelaySeconds counts real seconds, and a test's or the demo's clock moves
        faster: this is the local stand-in for waiting, never the relay's doing."""
        from moto.sqs.models import sqs_backends

        name = self.ref(logical_id).rsplit("/", 1)[-1]
        queue = sqs_backends[ACCOUNT][REGION].queues[name]
        released = 0
        for message in list(queue._messages):
            attributes = {key: str(value.get("StringValue", "")) for key, value in message.message_attributes.items()}
            if message.delayed and due(attributes):
                message.delayed_until = 0.0
                released += 1
        return released

    def drain_subscribers(self) -> None:
        """Empty every subscriber queue, checking what nobody read yet."""
        for name in self.subscribers:
            self.received(name)


@functools.cache
def _serialize_in_process_moto() -> None:
    """One AWS call at a time, as each real AWS request is atomic: moto's in-process backends are not
    thread-safe (a transaction deep-copies a table another thread is writing: "dictionary changed size
    during iteration"), and the worker checks posts on several threads."""
    from moto.core.models import botocore_stubber

    process = botocore_stubber.process_request
    lock = threading.RLock()

    def one_at_a_time(request: Any) -> Any:
        with lock:
            return process(request)

    botocore_stubber.process_request = one_at_a_time  # type: ignore[method-assign]


@functools.cache
def _in_process_client(service: str) -> Any:
    """Shared by every in-process stack: moto intercepts a client's calls at botocore's own hooks,
    whichever mock started after the client was made, and the client itself holds no AWS state."""
    return boto3.client(service, region_name=REGION)


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
