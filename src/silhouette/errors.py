"""The error taxonomy shared by every function.

Step Functions matches errors by the exception's class name, so statemachine.asl.json retries
exactly `TransientError` (plus Lambda service errors) and every other error is permanent: it is
caught and recorded as FAILED. A rejected input is not an error but a stage outcome."""

from __future__ import annotations


class TransientError(Exception):
    """A failure that may pass on retry: throttling, a dependency briefly unreachable."""


class PermanentError(Exception):
    """A failure that retrying cannot fix: missing artifact, job gone, broken invariant."""


class TenantBusy(Exception):
    """The tenant already runs as many batch items as it may: the batch state machine retries
    the step, with back-off, until one of them ends."""


class RejectedInput(Exception):
    """The upload cannot be analysed; `reason` tells the client why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_TRANSIENT_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def is_transient_aws_error(error: BaseException) -> bool:
    """True for botocore errors that a retry may fix (throttling, 5xx, connection trouble)."""
    from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

    if isinstance(error, (ConnectionError, ReadTimeoutError)):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_AWS_CODES or status >= 500
    return False
