"""Each function's execution role, as the SAM transform builds it, enforced on moto.

A stack made with `MotoStack(..., enforce_iam=True)` creates, while moto's access control is still
off, one IAM role per function carrying exactly the inline policies and managed policy ARNs of the
role the SAM transform (samtranslator, offline) generates for it, their references resolved to the
moto resources, and assumes it: each handler then runs with its own role's credentials, and
everything else (set-up, subscribers, assertions) with those of an admin role. Then `IamEnforcement`
turns moto's access control on (its `INITIAL_NO_AUTH_ACTION_COUNT` setting, set to 0 in-process), so
every call is signed, attributed to its principal and checked against that principal's policies.

moto's own check needs three corrections to prove least privilege rather than refuse everything:

- moto evaluates the Resource element against the request's resource only for SQS, IAM and STS: for
  any other service it matches against "*", which no resource-scoped statement matches (getmoto/moto
  #9581). `required_permissions` names, per request, the IAM actions and resource ARNs AWS authorizes
  (per the Service Authorization Reference) for the operations the relay makes.
- Some operations are authorized as other actions: TransactWriteItems as PutItem, UpdateItem, DeleteItem
  and ConditionCheckItem on each item's table; SNS PublishBatch as sns:Publish; SQS batch operations as
  their single-message action. moto checks the operation's own name.
- moto refuses a policy document without "Version" (SAM's policy templates have none; IAM reads that as
  2008-10-17, the same for statements without policy variables): the copies here say 2012-10-17.

A refused call answers as AWS does (AccessDeniedException, SNS AuthorizationError, SQS AccessDenied)
and is also recorded in `IamEnforcement.denials`, since some refusals are handled quietly by design
(a publish refused is parked in EventsDLQ).

AWS managed policies the role attaches are applied from moto's bundled copy of their documents (moto
does not load them by default; loading all 1,500 costs most of a second per stack), as inline policies
named after them; one moto has no copy of is skipped and listed in `FunctionRole.skipped_managed`.

What moto cannot evaluate is refused loudly when the role is made: a statement with a Condition (moto
has no request context, so it would deny) or a NotResource (moto would allow it everywhere).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.template import TEMPLATE_PATH, Resolver, transform_offline

POLICY_VERSION = "2012-10-17"
ADMIN_ROLE = "LocalAdmin-local"
MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
JSON_SERVICES = frozenset({"dynamodb", "sqs", "events", "secretsmanager", "kms"})
"""Services the relay calls whose SDK speaks JSON (SNS, IAM and STS speak the query protocol)."""


# ---------------------------------------------------------------------------------------------- the roles
@functools.cache
def transformed_template() -> dict[str, Any]:
    """The template as CloudFormation sees it after the SAM transform, made offline as tests/infra makes it:
    a placeholder code location and no managed-policy lookup. Function roles do not depend on parameter values
    (conditional policies stay `Fn::If`); resolve them with `function_roles`."""
    placeholder = {"GenviralSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:placeholder-AbCdEf"}
    return transform_offline(TEMPLATE_PATH.read_text(), placeholder)


def function_roles(resolver: Resolver) -> dict[str, tuple[str, dict[str, Any]]]:
    """Function logical id -> (its role's logical id, the role's properties with every reference resolved by
    `resolver`, the local stack's: its parameters, conditions and created resources)."""
    transformed = transformed_template()
    view = Resolver(
        transformed,
        resolver.parameters,
        refs=resolver.refs,
        attributes=resolver.attributes,
        pseudo=resolver.pseudo,
    )
    roles: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        roles[logical_id] = (role_id, view.evaluate(transformed["Resources"][role_id]["Properties"]))
    return roles


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        """As Lambda hands a function its execution role's credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def client_arguments(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


@dataclass
class FunctionRole:
    function: str
    logical_id: str
    name: str
    arn: str
    credentials: Credentials
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Policy name -> document, the template's inline policies as created (with a Version)."""
    managed: list[str] = field(default_factory=list)
    """The managed policy ARNs applied (from moto's copy of the document)."""
    skipped_managed: list[str] = field(default_factory=list)
    """Managed policy ARNs moto has no document for."""


def create_function_roles(iam: Any, sts: Any, resolver: Resolver) -> dict[str, FunctionRole]:
    """One role per function as the transformed template builds it, and an assumed session of it. Call while
    moto's access control is off (the AssumeRole calls are not checked against the trust policies)."""
    made: dict[str, FunctionRole] = {}
    for function, (role_id, properties) in function_roles(resolver).items():
        name = f"{role_id}-local"
        arn = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
        role = FunctionRole(function, role_id, name, arn, credentials=_assume(sts, arn, function))
        for policy in properties.get("Policies", []):
            document = versioned(policy["PolicyDocument"])
            _check_evaluable(document, f"{role_id}/{policy['PolicyName']}")
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
            role.inline[policy["PolicyName"]] = document
        for policy_arn in properties.get("ManagedPolicyArns", []):
            managed = aws_managed_policy(policy_arn)
            if managed is None:
                role.skipped_managed.append(policy_arn)
                continue
            iam.put_role_policy(
                RoleName=name, PolicyName=managed_policy_name(policy_arn), PolicyDocument=json.dumps(managed)
            )
            role.managed.append(policy_arn)
        made[function] = role
    return made


def create_admin(iam: Any, sts: Any) -> Credentials:
    """A role allowed everything, for what is not a function: the stack's own set-up, subscribers, assertions."""
    arn = iam.create_role(
        RoleName=ADMIN_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": POLICY_VERSION,
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
            }
        ),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=ADMIN_ROLE,
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": POLICY_VERSION, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    return _assume(sts, arn, "local-admin")


def _assume(sts: Any, role_arn: str, session: str) -> Credentials:
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


def versioned(document: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, **copy.deepcopy(dict(document))}


def _check_evaluable(document: Mapping[str, Any], where: str) -> None:
    statements = document["Statement"]
    for statement in statements if isinstance(statements, list) else [statements]:
        for element in ("Condition", "NotResource", "NotPrincipal"):
            if element in statement:
                raise NotImplementedError(
                    f"{where}: moto cannot evaluate a statement with {element}; the enforced run would be wrong"
                )


def managed_policy_name(policy_arn: str) -> str:
    return "AWSManaged-" + policy_arn.rsplit("/", 1)[-1]


def aws_managed_policy(policy_arn: str) -> dict[str, Any] | None:
    """The document of an AWS managed policy, from moto's bundled copy; None when moto has none."""
    if not policy_arn.startswith(MANAGED_PREFIX):
        return None
    document = _bundled_managed_policies().get(policy_arn.rsplit("/", 1)[-1])
    return None if document is None else versioned(document["Document"])


@functools.cache
def _bundled_managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    parsed: dict[str, Any] = json.loads(aws_managed_policies_data)
    return parsed


# ---------------------------------------------------------------------------------------------- the check
Permission = tuple[str, str]
"""(IAM action, resource ARN) one request needs."""

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def required_permissions(
    service: str, operation: str, params: Mapping[str, Any], *, region: str, account: str, fallback: str
) -> list[Permission]:
    """What AWS authorizes for one request of the operations the relay and the local stack make; any other
    operation as moto does (its own name, on `fallback`, the resource moto determined)."""
    if service == "dynamodb":
        found = _dynamodb(operation, params, f"arn:aws:dynamodb:{region}:{account}:table/")
    elif service == "sqs":
        found = _sqs(operation, params, region)
    elif service == "sns":
        topic = params.get("TopicArn") or params.get("TargetArn")
        action = "Publish" if operation in ("Publish", "PublishBatch") else operation
        found = [(f"sns:{action}", topic)] if topic else []
    elif service == "events" and operation == "PutEvents":
        buses = [entry.get("EventBusName") or "default" for entry in params.get("Entries", [])]
        prefix = f"arn:aws:events:{region}:{account}:event-bus/"
        found = [("events:PutEvents", bus if bus.startswith("arn:") else prefix + bus) for bus in buses]
    elif service == "kms" and "KeyId" in params:
        found = [(f"kms:{operation}", _key_arn(params["KeyId"], region=region, account=account))]
    elif service == "kms" and operation == "Decrypt" and "CiphertextBlob" in params:
        # AWS authorizes a Decrypt that names no key on the key that encrypted the ciphertext (moto's blob names it)
        found = [("kms:Decrypt", _key_arn(_ciphertext_key(params["CiphertextBlob"]), region=region, account=account))]
    elif service == "secretsmanager" and "SecretId" in params:
        found = [(f"secretsmanager:{operation}", _secret_arn(params["SecretId"], region=region, account=account))]
    else:
        found = []
    return list(dict.fromkeys(found)) or [(f"{service}:{operation}", fallback)]


def _dynamodb(operation: str, params: Mapping[str, Any], table_prefix: str) -> list[Permission]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else table_prefix + name

    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", table(body["TableName"]))
            for item in params.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", table(name)) for name in params.get("RequestItems", {})]
    if "TableName" not in params:
        return []
    resource = table(params["TableName"])
    if operation in ("Query", "Scan") and params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", resource)]


def _sqs(operation: str, params: Mapping[str, Any], region: str) -> list[Permission]:
    url = params.get("QueueUrl")
    if not url:
        return []
    account, name = url.rstrip("/").split("/")[-2:]
    return [(f"sqs:{_SQS_BATCH_ACTIONS.get(operation, operation)}", f"arn:aws:sqs:{region}:{account}:{name}")]


def _secret_arn(secret_id: str, *, region: str, account: str) -> str:
    """A secret is authorized by its full ARN, whether the call names it by name, partial or full ARN."""
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[account][region].secrets.get(secret_id)
    if secret is not None:
        return str(secret.arn)
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _ciphertext_key(blob: str | bytes) -> str:
    from moto.kms.utils import _deserialize_ciphertext_blob

    raw = base64.b64decode(blob) if isinstance(blob, str) else blob
    key_id = _deserialize_ciphertext_blob(raw).key_id
    return key_id.decode(errors="replace") if isinstance(key_id, bytes) else str(key_id)


def _key_arn(key_id: str, *, region: str, account: str) -> str:
    """A KMS key is authorized by its ARN, whether the call names it by id, alias or ARN."""
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    try:
        return str(backend.describe_key(key_id).arn)
    except Exception:  # no such key: AWS refuses it by the name it was given
        return key_id if key_id.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{key_id}"


@dataclass(frozen=True)
class Denial:
    principal: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.principal} may not {self.action} on {self.resource}"


_active: IamEnforcement | None = None


class IamEnforcement:
    """moto's access control on for the process (in-process mocks and a ThreadedMotoServer alike), with the
    resource-aware check above; `denials` lists every call refused."""

    def __init__(self) -> None:
        self.denials: list[Denial] = []
        self.allowed: set[tuple[str, str, str]] = set()
        """(principal ARN, action, resource) of every permission a call was allowed."""
        self._exit: contextlib.ExitStack | None = None

    def start(self) -> IamEnforcement:
        global _active
        if _active is not None:
            raise RuntimeError("another stack enforces IAM already: moto's access control is process-wide")
        from moto.core import enable_iam_authentication
        from moto.core.authorization import ActionAuthenticatorMixin

        request_class = _request_class(self.denials, self.allowed)

        def authorize(response: Any, resource: str = "*") -> None:
            response._authenticate_and_authorize_action(request_class, resource)

        exit_stack = contextlib.ExitStack()
        exit_stack.enter_context(
            _patched(ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", authorize)
        )
        exit_stack.enter_context(enable_iam_authentication())
        self._exit, _active = exit_stack, self
        return self

    def stop(self) -> None:
        global _active
        if self._exit is not None:
            self._exit.close()
            self._exit = None
        if _active is self:
            _active = None

    def used_by(self, role_name: str) -> set[Permission]:
        """The permissions the sessions of this role were allowed, (action, resource)."""
        marker = f":assumed-role/{role_name}/"
        return {(action, resource) for principal, action, resource in self.allowed if marker in principal}

    def take_denials(self) -> list[Denial]:
        """The calls refused so far, forgotten once read."""
        taken, self.denials[:] = list(self.denials), []
        return taken


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def _request_class(denials: list[Denial], allowed: set[tuple[str, str, str]]) -> type:
    from moto.core.exceptions import AccessDeniedError, JsonRESTError, _RESTError
    from moto.iam.access_control import IAMRequest

    class AuthorizationError(_RESTError):
        code = 403

    class ResourceAwareRequest(IAMRequest):
        """One signed request: every permission it needs is checked, each with its resource."""

        _resource = "*"

        def check_action_permitted(self, resource: str) -> None:
            _, _, operation = self._action.partition(":")
            for action, arn in required_permissions(
                self._service,
                operation,
                self._parameters(),
                region=self._region,
                account=self.account_id,
                fallback=resource,
            ):
                self._action, self._resource = action, arn
                super().check_action_permitted(arn)
                allowed.add((self._access_key.arn, action, arn))

        def _parameters(self) -> dict[str, Any]:
            if self._service not in JSON_SERVICES:  # query protocol: moto has parsed the form into lists
                return {key: values[0] if isinstance(values, list) else values for key, values in self._data.items()}
            body = self._body or b""
            text = body.decode() if isinstance(body, bytes) else str(body)
            return dict(json.loads(text)) if text.strip() else {}

        def _raise_access_denied(self) -> None:
            principal = self._access_key.arn
            denials.append(Denial(principal, self._action, self._resource))
            message = (
                f"User: {principal} is not authorized to perform: {self._action} on resource: {self._resource} "
                f"because no identity-based policy allows the {self._action} action"
            )
            if self._service == "sns":
                raise AuthorizationError("AuthorizationError", message)
            if self._service == "sqs":
                error = JsonRESTError("AccessDenied", message)
                error.code = 403
                raise error
            if self._service in JSON_SERVICES:
                raise JsonRESTError("AccessDeniedException", message)
            raise AccessDeniedError(user_arn=principal, action=self._action)

    return ResourceAwareRequest
