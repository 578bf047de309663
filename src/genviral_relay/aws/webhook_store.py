"""The webhook endpoints in the state table: one item each, partition `pk = "webhooks"`, `sk` = the endpoint's id.

The item holds the URL and types, the signing keys (`secrets`, sealed by the API: see aws/webhook_secrets.py; read
only by `endpoint`, which the delivery function and the API's rotation and test routes call: the listing and the
fan-out project it away) and the delivery health, which each attempt updates in place (`ADD attempts_pending`,
`SET failing_since = if_not_exists(...)`), only while the item exists, so a delivery in flight never brings a deleted
endpoint back.

Two more kinds of item keep registrations honest under concurrency, each written in the same transaction as the
endpoint's put and delete: the count of endpoints (`COUNT_KEY`, its update conditioned on the limit) and one item per
subscription (`pk = "webhook_subscriptions"`, `sk` = the endpoint's `subscription_key`, naming its endpoint). A table
written by 0.4 has neither: the first registration or deletion counts the endpoints and writes their subscriptions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_items import paginated
from genviral_relay.aws.webhook_counts import (
    TRANSACTION_TRIES,
    WEBHOOKS_PK,
    count_existing,
    deletion,
    endpoint_item_key,
    failed,
    registration,
    subscription_item_key,
    subscription_move,
    transact,
)
from genviral_relay.aws.webhook_items import (
    EDITABLE,
    HEALTH,
    PUBLIC,
    editable_values,
    endpoint_from_item,
    endpoint_to_item,
    secrets_value,
    serialized,
)
from genviral_relay.clock import format_ts
from genviral_relay.errors import TooManyWebhooksError, WebhookExistsError
from genviral_relay.models.webhooks import DEFAULT_FORMAT, SigningSecret, WebhookEndpoint
from genviral_relay.webhooks.ports import AttemptRecord, WebhookStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class DynamoDbWebhookStore(WebhookStore):
    def __init__(self, client: DynamoDBClient, table_name: str, *, pause: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table_name
        self._pause = pause

    def create(self, endpoint: WebhookEndpoint, *, limit: int) -> None:
        items = registration(endpoint_to_item(endpoint), endpoint.subscription_key, limit)
        for subscription, count, _ in self._transact(items):
            if failed(subscription):
                existing = subscription.get("Item") or self._subscription(endpoint.subscription_key)
                if "webhook_id" not in existing:  # deleted since the transaction saw it: the URL is free, try again
                    continue
                raise WebhookExistsError(existing["webhook_id"]["S"])
            if failed(count) and "Item" in count:
                raise TooManyWebhooksError(f"at most {limit} webhook endpoints; delete one first")
            if failed(count):
                self._count_existing()

    def _subscription(self, subscription_key: str) -> dict[str, Any]:
        key = subscription_item_key(subscription_key)
        return self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item", {})

    def _transact(self, items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        return transact(self._client, self._table, items, pause=self._pause)

    def _count_existing(self) -> None:
        """The upgrade from 0.4 (aws/webhook_counts.py), given every endpoint and whether it has its subscription."""
        items = self._items("sk", "url", "event_types", "created_at", "subscription_key")
        found = [(endpoint_from_item(item), "subscription_key" in item) for item in items]
        count_existing(self._client, self._table, sorted(found, key=lambda each: each[0].registration_order()))

    def endpoint(self, webhook_id: str) -> WebhookEndpoint | None:
        item = self._client.get_item(TableName=self._table, Key=endpoint_item_key(webhook_id), ConsistentRead=True).get(
            "Item"
        )
        return endpoint_from_item(item) if item else None

    def endpoints(self) -> list[WebhookEndpoint]:
        found = [endpoint_from_item(item) for item in self._items(*PUBLIC, *HEALTH)]
        return sorted(found, key=WebhookEndpoint.registration_order)

    def _items(self, *attributes: str) -> Iterator[dict[str, Any]]:
        """Every endpoint's item, with these attributes only. Strongly consistent: an event detected once a
        registration (or a deletion) has been answered goes to (or no longer goes to) that endpoint. At most 100
        small items: the double read is cheap."""
        names = {f"#{name}": name for name in attributes}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": WEBHOOKS_PK}},
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
            "ConsistentRead": True,
        }
        return paginated(self._client.query, request)

    def delete(self, webhook_id: str) -> bool:
        for _ in range(TRANSACTION_TRIES):
            item = self._client.get_item(
                TableName=self._table,
                Key=endpoint_item_key(webhook_id),
                ConsistentRead=True,
                ProjectionExpression="subscription_key",
            ).get("Item")
            if item is None:
                return False
            # A 0.4 endpoint has no subscription_key until the upgrade gives it one (none at all when it shares its
            # subscription with an older one): read again after an upgrade, so the deletion takes the one it got.
            owned = item["subscription_key"]["S"] if "subscription_key" in item else None
            if self._deleted(webhook_id, owned):
                return True
        raise RuntimeError(f"the deletion of {webhook_id} was refused {TRANSACTION_TRIES} times")

    def _deleted(self, webhook_id: str, owned: str | None) -> bool:
        """One try: False when the endpoint changed since it was read (gone, or given a subscription) or the table
        had no count yet (it is counted now)."""
        for reasons in self._transact(deletion(endpoint_item_key(webhook_id), owned)):
            if not failed(reasons[0]):
                self._count_existing()
            return False
        return True

    def plaintext_keyed(self) -> list[WebhookEndpoint]:
        found = [endpoint_from_item(item) for item in self._items("sk", "url", "event_types", "created_at", "secrets")]
        return sorted(
            (e for e in found if e.keyed_in_clear),
            key=WebhookEndpoint.registration_order,
        )

    def replace_secrets(
        self, webhook_id: str, secrets: Sequence[SigningSecret], *, replacing: Sequence[SigningSecret] | None = None
    ) -> bool:
        names = {"#secrets": "secrets"}
        values = {":secrets": serialized(secrets_value(secrets))}
        condition = ""
        if replacing is not None:  # the values only: how 0.4 wrote an `expires_at` does not matter
            names["#value"] = "value"
            values[":held"] = {"N": str(len(replacing))}
            condition = " AND size(#secrets) = :held"
            for index, secret in enumerate(replacing):
                values[f":held{index}"] = {"S": secret.value}
                condition += f" AND #secrets[{index}].#value = :held{index}"
        return self._update(webhook_id, "SET #secrets = :secrets", names, values, condition)

    def record_attempt(self, webhook_id: str, outcome: AttemptRecord) -> None:
        at = {"S": format_ts(outcome.at)}
        if not outcome.made:
            if outcome.pending_change:
                change = {":change": {"N": str(outcome.pending_change)}}
                self._update(webhook_id, "ADD attempts_pending :change", {}, change)
            return
        if outcome.succeeded:
            expression = "SET last_success_at = :at REMOVE failing_since"
            values: dict[str, Any] = {":at": at}
        else:
            expression = (
                "SET last_failure_at = :at, last_failure_reason = :reason, "
                "failing_since = if_not_exists(failing_since, :at)"
            )
            values = {":at": at, ":reason": {"S": outcome.reason or "failed"}}
            if outcome.status is not None:
                expression += ", last_failure_status = :status"
                values[":status"] = {"N": str(outcome.status)}
            else:
                expression += " REMOVE last_failure_status"
        if outcome.pending_change:
            expression += " ADD attempts_pending :change"
            values[":change"] = {"N": str(outcome.pending_change)}
        self._update(webhook_id, expression, {}, values)

    def update(self, endpoint: WebhookEndpoint, *, previous: WebhookEndpoint) -> bool:
        moves = endpoint.subscription_key != previous.subscription_key
        values = editable_values(endpoint)
        names = {f"#{name}": name for name in EDITABLE}
        kept = [f"#{name} = :{name}" for name in EDITABLE if values[name] is not None]
        removed = [f"#{name}" for name in EDITABLE if values[name] is None]
        attributes = {f":{name}": serialized(value) for name, value in values.items() if value is not None}
        unchanged, held = _as_read(previous)
        attributes.update(held)
        expression = "SET " + ", ".join(kept)
        if moves:
            expression += ", #key = :key"
            names["#key"] = "subscription_key"
            attributes[":key"] = {"S": endpoint.subscription_key}
        expression += (" REMOVE " + ", ".join(removed)) if removed else ""
        # Every editable field as read: the item is written whole, so an edit that came first (of any field, the
        # URL and types with their subscription too) would otherwise be written back over; it wins, this one is refused.
        change: dict[str, Any] = {
            "Update": {
                "Key": endpoint_item_key(endpoint.id),
                "UpdateExpression": expression,
                "ConditionExpression": "attribute_exists(pk) AND " + unchanged,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": attributes,
            }
        }
        if not moves:
            return self._update_item(change["Update"])
        owner = self._subscription(previous.subscription_key).get("webhook_id", {}).get("S")
        moved = subscription_move(
            endpoint.id, previous.subscription_key, endpoint.subscription_key, owns_old=owner == endpoint.id
        )
        items = [*moved, change]
        for reasons in self._transact(items):
            if failed(reasons[0]):
                existing = reasons[0].get("Item") or self._subscription(endpoint.subscription_key)
                if "webhook_id" in existing and existing["webhook_id"]["S"] != endpoint.id:
                    raise WebhookExistsError(existing["webhook_id"]["S"])
            return False  # the endpoint changed (or went) since it was read; its caller reads it again
        return True

    def set_enabled(
        self,
        webhook_id: str,
        enabled: bool,
        *,
        at: datetime,
        reason: str | None = None,
        failing_since: datetime | None = None,
    ) -> bool:
        if enabled:
            expression = "SET #enabled = :on REMOVE disabled_at, disabled_reason, failing_since"
            values: dict[str, Any] = {":on": {"BOOL": True}, ":off": {"BOOL": False}}
            condition = " AND #enabled = :off"
        else:
            expression = "SET #enabled = :off, disabled_at = :at, disabled_reason = :reason"
            values = {":off": {"BOOL": False}, ":at": {"S": format_ts(at)}, ":reason": {"S": reason or "disabled"}}
            condition = " AND (attribute_not_exists(#enabled) OR #enabled <> :off)"
            if failing_since is not None:
                values[":since"] = {"S": format_ts(failing_since)}
                condition += " AND failing_since = :since"
        return self._update(webhook_id, expression, {"#enabled": "enabled"}, values, condition)

    def _update(
        self, webhook_id: str, expression: str, names: dict[str, str], values: dict[str, Any], condition: str = ""
    ) -> bool:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": endpoint_item_key(webhook_id),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk)" + condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        return self._update_item(request)

    def _update_item(self, request: dict[str, Any]) -> bool:
        """One conditional update; False when its condition failed."""
        try:
            self._client.update_item(**{"TableName": self._table, **request})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _as_read(previous: WebhookEndpoint) -> tuple[str, dict[str, Any]]:
    """The condition that the item's editable fields are still `previous`'s, and its values. A field read as None
    is absent; `format` read as the default may be absent too (0.4 wrote none)."""
    held = editable_values(previous)
    conditions: list[str] = []
    values: dict[str, Any] = {}
    for name in EDITABLE:
        if held[name] is None:
            # an empty filter map (written before `{}` was stored as no filter) reads as None too
            absent = f"attribute_not_exists(#{name})"
            if name == "filter":
                values[":empty_size"] = {"N": "0"}  # an expression takes no literal numbers
                absent = f"({absent} OR size(#{name}) = :empty_size)"
            conditions.append(absent)
            continue
        values[f":was_{name}"] = serialized(held[name])
        condition = f"#{name} = :was_{name}"
        if name == "format" and held[name] == DEFAULT_FORMAT:
            condition = f"({condition} OR attribute_not_exists(#{name}))"
        conditions.append(condition)
    return " AND ".join(conditions), values
