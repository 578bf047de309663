"""The stored events a webhook delivery signs, read from the state table (`dynamodb_items.py` lays them out):
the relay's events under their post, the notices under the relay's own partition (the notice outbox writes them),
the test events under their endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from genviral_relay.aws.dynamodb_items import event_key, notice_key, test_event_key
from genviral_relay.models.events import RelayEvent, parse_event_or_none
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent, parse_notice
from genviral_relay.webhooks.ports import StoredEvents

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class DynamoDbStoredEvents(StoredEvents):
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def relay_event(self, post_id: str, event_id: str) -> RelayEvent | None:
        # Not a document the relay wrote (None): it names nothing a delivery may sign
        return parse_event_or_none(self._document(event_key(post_id, event_id)))

    def notice(self, event_id: str) -> AccountStatusEvent | RelayStateEvent | None:
        document = self._document(notice_key(event_id))
        try:
            return parse_notice(document) if document is not None else None
        except ValidationError:  # not a document the relay wrote: it names nothing a delivery may sign
            return None

    def test_event(self, webhook_id: str, event_id: str) -> str | None:
        return self._document(test_event_key(webhook_id, event_id))

    def store_test_event(self, webhook_id: str, event_id: str, document: str, *, expires_at: datetime) -> None:
        item = {
            **test_event_key(webhook_id, event_id),
            "document": {"S": document},
            "expires_at": {"N": str(int(expires_at.timestamp()))},
        }
        self._client.put_item(TableName=self._table, Item=item)

    def _document(self, key: Any) -> str | None:
        try:
            # Strongly consistent: the delivery may follow the write by milliseconds (the test route's).
            answer = self._client.get_item(
                TableName=self._table, Key=key, ProjectionExpression="document", ConsistentRead=True
            )
        except ClientError as error:
            # A key no item can have (empty, too long: a message's attribute is anyone's text) names nothing.
            if error.response.get("Error", {}).get("Code") == "ValidationException":
                return None
            raise
        item = answer.get("Item")
        return str(item["document"]["S"]) if item and "document" in item else None
