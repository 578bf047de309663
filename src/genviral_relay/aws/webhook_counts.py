"""The items that keep webhook registrations honest under concurrency, beside the endpoints (aws/webhook_store.py).

- The count of endpoints, `COUNT_KEY`: a registration adds one under the condition `count < limit`, a deletion takes
  one away, each in the transaction that puts or deletes the endpoint, so concurrent registrations never pass the
  limit (counting the endpoints first, then writing, would let each of them see room).
- One subscription item per endpoint, `pk = "webhook_subscriptions"`, `sk` = its `subscription_key` (URL and event
  types, hashed), naming the endpoint: put with `attribute_not_exists` in the same transaction, so the same URL and
  types registered twice at once make one endpoint, and the other registration learns its id.

A table written by 0.4 has neither. A registration or deletion that finds no count (its condition fails with no item
to show) first calls `count_existing`; while there is no count no registration or deletion succeeds, so the
endpoints do not change under it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from genviral_relay.aws.dynamodb_items import is_condition_failure
from genviral_relay.models.webhooks import WebhookEndpoint

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

WEBHOOKS_PK = "webhooks"
"""The endpoints' partition (aws/webhook_store.py)."""
SUBSCRIPTIONS_PK = "webhook_subscriptions"
COUNT_KEY = {"pk": {"S": "relay"}, "sk": {"S": "WEBHOOK_COUNT"}}
TRANSACTION_TRIES = 8
"""Registrations at once contend for the count item: DynamoDB cancels all but one of them (TransactionConflict)."""


def endpoint_item_key(webhook_id: str) -> dict[str, Any]:
    return {"pk": {"S": WEBHOOKS_PK}, "sk": {"S": webhook_id}}


def subscription_item_key(subscription_key: str) -> dict[str, Any]:
    return {"pk": {"S": SUBSCRIPTIONS_PK}, "sk": {"S": subscription_key}}


def registration(endpoint_item: dict[str, Any], subscription_key: str, limit: int) -> list[dict[str, Any]]:
    """The transaction that registers an endpoint: its subscription, the count, the endpoint (in that order: the
    cancellation reasons come in it). On a failed condition the first two answer the item that failed it."""
    subscription = {**subscription_item_key(subscription_key), "webhook_id": endpoint_item["sk"]}
    return [
        {
            "Put": {
                "Item": subscription,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {
            "Update": {
                "Key": COUNT_KEY,
                "UpdateExpression": "ADD #count :one",
                "ConditionExpression": "#count < :limit",  # false, too, when there is no count (0.4)
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {"Put": {"Item": endpoint_item, "ConditionExpression": "attribute_not_exists(pk)"}},
    ]


def deletion(endpoint_key: dict[str, Any], subscription_key: str | None) -> list[dict[str, Any]]:
    """The transaction that deletes an endpoint, with its count and its subscription (None: it has none). The first
    item's condition fails when the endpoint is gone or owns another subscription than the one read (an upgrade gave
    it one meanwhile): deleting it without would leave that subscription naming a deleted endpoint."""
    owns: dict[str, Any]
    if subscription_key is None:
        owns = {"ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#key)"}
    else:
        owns = {
            "ConditionExpression": "#key = :key",
            "ExpressionAttributeValues": {":key": {"S": subscription_key}},
        }
    items: list[dict[str, Any]] = [
        {"Delete": {"Key": endpoint_key, "ExpressionAttributeNames": {"#key": "subscription_key"}, **owns}},
        {
            "Update": {
                "Key": COUNT_KEY,
                "UpdateExpression": "ADD #count :minus",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {"#count": "count"},
                "ExpressionAttributeValues": {":minus": {"N": "-1"}},
            }
        },
    ]
    if subscription_key is not None:
        items.append({"Delete": {"Key": subscription_item_key(subscription_key)}})
    return items


def subscription_move(webhook_id: str, old_key: str, new_key: str, *, owns_old: bool) -> list[dict[str, Any]]:
    """The part of an edit's transaction that moves the endpoint to its new URL or event types: the new subscription
    (its condition failing, with the item, when another endpoint has it) and, when this endpoint owns it (a 0.4
    duplicate owns none), the old one, deleted while it still names this endpoint."""
    items: list[dict[str, Any]] = [
        {
            "Put": {
                "Item": {**subscription_item_key(new_key), "webhook_id": {"S": webhook_id}},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]
    if owns_old:
        condition = {"ConditionExpression": "webhook_id = :id", "ExpressionAttributeValues": {":id": {"S": webhook_id}}}
        items.append({"Delete": {"Key": subscription_item_key(old_key), **condition}})
    return items


def failed(reason: dict[str, Any]) -> bool:
    """This item's condition cancelled the transaction."""
    return reason.get("Code") == "ConditionalCheckFailed"


def transact(
    client: DynamoDBClient,
    table: str,
    items: Sequence[dict[str, Any]],
    *,
    pause: Callable[[float], None] = time.sleep,
) -> Iterator[list[dict[str, Any]]]:
    """Write the items (`{"Put": {...}}`, without the table) in one transaction. Each time a condition cancels it,
    yield the reasons, item by item, for the caller to raise on or to repair before the next try; a conflict with
    another transaction is tried again after a short, jittered wait."""
    request: Any = [{kind: {"TableName": table, **body}} for item in items for kind, body in item.items()]
    for attempt in range(TRANSACTION_TRIES):
        try:
            client.transact_write_items(TransactItems=request)
            return
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = [dict(reason) for reason in error.response.get("CancellationReasons", [])]
            if not any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                yield reasons
            elif attempt == TRANSACTION_TRIES - 1:
                raise
            else:
                pause(random.uniform(0.01, 0.05) * 2 ** min(attempt, 4))  # noqa: S311 - jitter, not a secret
    raise RuntimeError(f"the transaction was refused {TRANSACTION_TRIES} times")


def count_existing(client: DynamoDBClient, table: str, endpoints: Sequence[tuple[WebhookEndpoint, bool]]) -> None:
    """The upgrade from 0.4: each endpoint (oldest first, with whether it has its subscription item already) gets
    its subscription, the oldest of those that share one owning it (the others keep delivering, without), then the
    count is written, once: two upgrades at once count the same endpoints."""
    for endpoint, subscribed in endpoints:
        if not subscribed:
            _adopt_subscription(client, table, endpoint)
    try:
        client.put_item(
            TableName=table,
            Item={**COUNT_KEY, "count": {"N": str(len(endpoints))}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if not is_condition_failure(error):
            raise


def _adopt_subscription(client: DynamoDBClient, table: str, endpoint: WebhookEndpoint) -> None:
    subscription = {**subscription_item_key(endpoint.subscription_key), "webhook_id": {"S": endpoint.id}}
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": subscription,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": endpoint_item_key(endpoint.id),
                        "UpdateExpression": "SET #key = :key",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#key": "subscription_key"},
                        "ExpressionAttributeValues": {":key": {"S": endpoint.subscription_key}},
                    }
                },
            ]
        )
    except ClientError as error:  # an older endpoint owns this subscription (or this one is gone)
        if not is_condition_failure(error):
            raise
