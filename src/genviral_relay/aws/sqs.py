"""SQS's own limits, as every adapter of its queues (and the CLI's redrive) meets them."""

BATCH_LIMIT = 10
"""The most entries of one batch call (`SendMessageBatch`, `DeleteMessageBatch`, `ChangeMessageVisibilityBatch`)
and the most messages one `ReceiveMessage` answers. SNS `PublishBatch` and EventBridge `PutEvents` take as many."""
