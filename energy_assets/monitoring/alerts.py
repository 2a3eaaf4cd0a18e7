"""Alerts to an operator: what a failed run or an overdue hour says, and its POST to a webhook as JSON.

A webhook URL usually holds its secret (Slack's and Mattermost's incoming webhooks do), so no message
here names it: errors name the setting that holds it and what went wrong, never the address.
"""

from __future__ import annotations

import logging

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from energy_assets import settings

# A run's error can be a long traceback; the alert carries its head, the UI the rest.
ERROR_CHARACTERS = 1500


class _WithoutWebhookUrls(logging.Filter):
    """Drops log records naming a webhook this module posts to: httpx logs each request's URL at INFO, and the
    daemon shows the sensors' logs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(url in message for url in self.urls)


_hidden = _WithoutWebhookUrls()
logging.getLogger("httpx").addFilter(_hidden)


class AlertNotSent(RuntimeError):
    """The webhook did not take an alert; the message names the setting, not the URL."""


def run_failure_alert(job: str, run_id: str, partitions: str | None, errors: list[str]) -> dict:
    """The payload of a failed run: `text` (what Slack, Mattermost and most chat webhooks show) and its facts."""
    where = f" for {partitions}" if partitions else ""
    error = "\n".join(errors)[:ERROR_CHARACTERS]
    return {
        "event": "run_failure",
        "text": f"energy_assets: run {run_id} of {job}{where} failed: {error or 'no step failed (see the run)'}",
        "job": job,
        "run_id": run_id,
        "partitions": partitions,
        "error": error,
    }


def overdue_alert(asset: str, description: str, deadline: str | None) -> dict:
    """The payload of an asset overdue at its deadline (its `freshness_check` failed, `description` says why)."""
    by = f" (deadline {deadline})" if deadline else ""
    return {
        "event": "overdue_hour",
        "text": f"energy_assets: {asset} is late{by}: {description}",
        "asset": asset,
        "deadline": deadline,
        "description": description,
    }


def post_alert(url: str, payload: dict, timeout_seconds: float = 10.0, attempts: int = 3) -> None:
    """POST `payload` as JSON to `url`; network errors, 429 and 5xx are retried (`attempts` in all).

    AlertNotSent when the webhook refuses it or stays unreachable, naming the setting and the cause (an
    HTTP status or the kind of network error), never the URL.
    """
    _hidden.urls.add(url)
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=1, max=5),
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    try:
        retrying(_post, url, payload, timeout_seconds)
    except httpx.HTTPStatusError as refused:
        cause = f"answered HTTP {refused.response.status_code}"
    except httpx.TransportError as unreachable:
        cause = f"could not be reached ({type(unreachable).__name__})"
    else:
        return
    # `from None`: httpx's errors and their requests carry the URL.
    raise AlertNotSent(
        f"the alert webhook ({settings.ALERT_WEBHOOK_URL}) {cause} after {attempts} attempt(s); the alert was not delivered"
    ) from None


def _post(url: str, payload: dict, timeout_seconds: float) -> None:
    response = httpx.post(url, json=payload, timeout=timeout_seconds, follow_redirects=False)
    response.raise_for_status()


def _retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code == 429 or error.response.status_code >= 500
    return isinstance(error, httpx.TransportError)
