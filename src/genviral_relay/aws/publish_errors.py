"""What a publish failure says, and so what becomes of the event (`PublishFailure.retryable`):

- Transient (throttling, internal errors, HTTP 429 and 5xx, connection errors and timeouts; for the
  whole call or one entry): sent again at once with capped, jittered backoff (`batch_publishing.py`);
  still failing after the last attempt, kept in the outbox.
- The target refuses the call as a whole (the topic or the bus is missing: `NotFound`,
  `ResourceNotFoundException`; `AuthorizationError`, `AccessDenied(Exception)`, KMS errors, an
  expired or unknown key, or any code not known as a validation error): every event of the call is
  kept in the outbox at once (retrying within the call would not help). The next checks retry with
  back-off, and the same documents go out, under the same ids, once the target is back.
- An entry refused in a 200 answer for a reason of its own (EventBridge `MalformedDetail`,
  `ValidationException`; SNS `Failed[]` with `SenderFault`): that event is refused for good (the
  caller parks it in the dead-letter queue), unless the code is one of the target's own
  (`AccessDeniedException`, `NotAuthorizedForSourceException`, KMS...): then it is kept.
- The call refused as a whole for a validation reason (`InvalidParameter`, `ValidationException`,
  a request too long, HTTP 413): one entry is bad, or the batch too large. The batch is split in
  halves until the bad entry is alone, which is then refused for good; the rest is published. A
  validation error that names the topic or the bus is the target's, not an entry's: kept.

Reasons carry the error code, and for an entry refused for good the start of the service's message;
never an event's body.
"""

from __future__ import annotations

from typing import Literal

from botocore.exceptions import ClientError

MAX_MESSAGE_CHARS = 200  # of a service's error message kept in a reason: some quote the value refused
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "Throttled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalError",
        "InternalException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottling",
        "KMSThrottlingException",
    }
)
"""Transient failures, of a call or of one entry: worth sending again at once."""
VALIDATION_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "ValidationException",
        "ValidationError",
        "BatchRequestTooLong",
        "TooManyEntriesInBatchRequest",
        "RequestEntityTooLarge",
    }
)
"""A call refused as a whole for what its entries hold: split the batch to find the bad one."""
TARGET_CODES = frozenset(
    {
        "NotFound",
        "NotFoundException",
        "ResourceNotFound",
        "ResourceNotFoundException",
        "InvalidEventBusNameException",
        "InvalidAccountIdException",
        "AuthorizationError",
        "AccessDenied",
        "AccessDeniedException",
        "NotAuthorized",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
        "InvalidSecurity",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "OptInRequired",
    }
)
"""The target (or the relay's access to it) refuses: no entry is at fault, even when one entry reports it.
Codes starting with `KMS` count too (an encrypted topic or bus whose key cannot be used)."""
_TARGET_PARAMETERS = ("topicarn", "eventbusname")  # a validation error about these is the target's

Cause = Literal["transient", "target", "entry"]
"""Why something failed: worth retrying now, the target refuses (keep), an entry is at fault."""


def call_error_cause(error: ClientError) -> Cause:
    """What a call refused as a whole says: retry it, keep its events, or split it (an entry is at fault)."""
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return "transient"
    if code in VALIDATION_CODES or status == 413:
        message = details.get("Message", "").lower().replace(" ", "")
        return "target" if any(name in message for name in _TARGET_PARAMETERS) else "entry"
    return "target"  # missing, denied, KMS, or unknown: never a reason to drop an event


def entry_error_cause(code: str, *, sender_fault: bool = True) -> Cause:
    """What one entry's failure in a 200 answer says (SNS: `sender_fault` as `Failed[].SenderFault`)."""
    if code in RETRYABLE_CODES or not sender_fault:
        return "transient"
    if code in TARGET_CODES or code.startswith("KMS"):
        return "target"
    return "entry"


def failure_reason(code: str, message: str) -> str:
    """A reason as kept and logged: the code, then the start of the service's message."""
    return f"{code}: {message[:MAX_MESSAGE_CHARS]}".strip().rstrip(":")


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code") or "ClientError"


def call_failure_reason(error: ClientError) -> str:
    return failure_reason(error_code(error), error.response.get("Error", {}).get("Message", ""))
