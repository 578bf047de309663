"""One emulator and moto stack per test module, reset between tests, and reading the stored watch item."""

from __future__ import annotations

import functools
from typing import Any

from botocore.exceptions import ClientError

from local.emulator import GenviralEmulator
from local.stack import MotoStack
from tests.conftest import NO_ACCOUNT_CHECKS, TOKEN


class SharedRig:
    """A module's emulator and stack, handed to each test as new: the table and the queues emptied, the
    key and the plan reset, no faults, an empty request log. Rebuilt when a test failed since (state
    unknown) or the secret is gone."""

    def __init__(self) -> None:
        self.emulator: GenviralEmulator | None = None
        self.stack: MotoStack | None = None
        self._failures = -1

    def get(self, failures: int) -> tuple[GenviralEmulator, MotoStack]:
        if self.emulator is None or self.stack is None or failures != self._failures or not self._reset():
            self.close(check=False)
            self.emulator = GenviralEmulator(tokens=[TOKEN]).start()
            self.stack = MotoStack(
                genviral_api_url=self.emulator.base_url, token=TOKEN, parameters=NO_ACCOUNT_CHECKS
            ).start()
            self.stack.client = functools.cache(self.stack.client)  # type: ignore[method-assign]
            self._failures = failures
        return self.emulator, self.stack

    def _reset(self) -> bool:
        assert self.emulator is not None
        assert self.stack is not None
        try:
            self.stack.rotate_token(TOKEN)
        except ClientError:  # the secret was deleted
            return False
        self._empty_table(self.stack)
        self._empty_queues(self.stack)
        self.emulator.tokens = {TOKEN}
        self.emulator.plan_error = None
        self.emulator.scope_accounts = None
        self.emulator.clear_faults()
        self.emulator.requests_log.clear()
        return True

    @staticmethod
    def _empty_table(stack: MotoStack) -> None:
        dynamodb, table = stack.client("dynamodb"), stack.ref("StateTable")
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
            for key in page["Items"]:
                dynamodb.delete_item(TableName=table, Key=key)

    @staticmethod
    def _empty_queues(stack: MotoStack) -> None:
        """Receive and delete (SQS allows one PurgeQueue a minute); what the subscribers got is checked on the way."""
        stack.drain_subscribers()
        sqs, queue_url = stack.client("sqs"), stack.ref("WorkQueue")
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def close(self, *, check: bool = True) -> None:
        """Stop both; `check`: first check the events the subscribers received that no test read."""
        if self.stack is not None:
            try:
                if check:
                    self.stack.drain_subscribers()
            finally:
                self.stack.stop()
        if self.emulator is not None:
            self.emulator.stop()
        self.emulator = self.stack = None


def stored_item(stack: MotoStack, post_id: str) -> dict[str, Any]:
    answer = stack.client("dynamodb").get_item(
        TableName=stack.ref("StateTable"), Key={"pk": {"S": post_id}, "sk": {"S": "WATCH"}}
    )
    return dict(answer.get("Item", {}))
