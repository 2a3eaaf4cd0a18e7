"""Retrying only what can heal: a transient error asks Dagster for another attempt; anything else fails at once.

No asset carries an op-level `RetryPolicy`: Dagster's multiprocess and step-delegating executors retry a
step whose resources fail to initialise by its op's policy whatever the error (dagster 1.13,
`Executor.log_failure_or_retry_event_after_error`), so a refused source or a missing setting would wait
30 + 90 s before the user saw it. Code that knows an error can heal raises `retry_transient` instead.
"""

from __future__ import annotations

from dagster import Backoff, Failure, RetryPolicy, RetryRequested

# The waits between attempts of a step whose error can heal: 30 s, then 90 s.
TRANSIENT_RETRIES = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL)


def retry_transient(error: BaseException, previous_attempts: int, what: str) -> Exception:
    """What to raise for an error that can heal: a request for another attempt after the schedule's wait,
    or, once the retries are spent, a failure naming `what` failed, how often, and the last error."""
    if previous_attempts >= TRANSIENT_RETRIES.max_retries:
        return Failure(
            description=f"{what}: {type(error).__name__}: {error} (attempt {previous_attempts + 1}, the last)",
            allow_retries=False,
        )
    return RetryRequested(
        max_retries=TRANSIENT_RETRIES.max_retries,
        seconds_to_wait=TRANSIENT_RETRIES.calculate_delay(previous_attempts + 1),
    )
