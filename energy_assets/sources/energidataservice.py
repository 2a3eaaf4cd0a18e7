"""Client of the Energi Data Service REST API (`GET <base>/dataset/<name>`), returning canonical rows.

The API reads `start`/`end` as Danish local time on the dataset's time column (its API guide);
the client sends the UTC window converted to Danish time, widened to cover a DST fold, and cuts
the answer on `HourUTC`. It pages with `offset`/`limit` until `total` records have arrived, a page
adds nothing, or `total` and `limit` allow no further page; retries network errors, 429 (honouring
Retry-After) and 5xx with exponential backoff, and fails at once, naming status, URL and the API's
message, on any other 4xx. Every request has a budget for its whole answer (a slow trickle of bytes
does not reset it), and the whole fetch, retries and waits included, has one deadline.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay, wait_exponential

from energy_assets import settings
from energy_assets.schema import de35_series
from energy_assets.sources import consumption_industry
from energy_assets.timeline import DANISH_TIME_ZONE, HOUR
from energy_assets.sources.canonical import (
    DE35_CODE,
    DE35_COLUMNS,
    HOUR_DK,
    HOUR_UTC,
    PRICE_AREA,
    RowOrigin,
    cut_to_window,
    from_de35_columns,
    window_bounds,
)
from energy_assets.sources.errors import (
    EmptySourceError,
    SourceDeadlineError,
    SourceFormatError,
    SourceRequestError,
    SourceUnavailableError,
)

DEFAULT_BASE_URL = settings.DEFAULT_SOURCE_API_URL
DEFAULT_DEADLINE_SECONDS = settings.DEFAULT_SOURCE_DEADLINE_SECONDS
DE35_DATASET = "ConsumptionDE35Hour"
API_TIME_FORMAT = "%Y-%m-%dT%H:%M"
# How much of an error body a message quotes.
_QUOTED_BODY = 300


@dataclass(frozen=True)
class Dataset:
    """What the client needs to know about one dataset."""

    name: str
    # The columns asked for: the dataset's own, and HourDK to cross-check every HourUTC.
    columns: list[str]
    sort: str
    to_canonical: Callable[[pd.DataFrame, RowOrigin], pd.DataFrame]
    series: Callable[[], pd.DataFrame]


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            DE35_DATASET,
            [*DE35_COLUMNS, HOUR_DK],
            f"{HOUR_UTC},{PRICE_AREA},{DE35_CODE}",
            from_de35_columns,
            de35_series,
        ),
        Dataset(
            consumption_industry.DATASET,
            [*consumption_industry.COLUMNS, HOUR_DK],
            f"{HOUR_UTC},{consumption_industry.MUNICIPALITY},{consumption_industry.BRANCHE}",
            consumption_industry.from_industry_columns,
            consumption_industry.industry_series,
        ),
    )
}


def dataset_named(name: str) -> Dataset:
    """The supported dataset of that name; any other name is an error listing the supported ones."""
    if name not in DATASETS:
        raise ValueError(f"unsupported Energi Data Service dataset {name!r}; supported: {sorted(DATASETS)}")
    return DATASETS[name]


def expected_series(name: str) -> pd.DataFrame:
    """The (area, consumer_type) series the dataset yields every hour."""
    return dataset_named(name).series()


class ApiStatusError(Exception):
    """The API answered with an HTTP error status (turned into a SourceError once retrying is over)."""

    def __init__(self, status_code: int, url: str, message: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status_code} from {url}: {message}")
        self.status_code = status_code
        self.url = url
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Rate limiting and server errors pass; other client errors repeat on every try."""
        return self.status_code == 429 or self.status_code >= 500


@dataclass(frozen=True)
class EnergiDataServiceClient:
    """Fetches a dataset's rows for a UTC window, paged and retried.

    `timeout_seconds` bounds each request from sending it to the last byte of its answer;
    `deadline_seconds` bounds the whole fetch: every page, retry and backoff wait.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_attempts: int = 5
    page_size: int = 10_000
    retry_wait_seconds: float = 1.0
    max_retry_wait_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self):
        if self.page_size < 1:
            # limit=0 asks the API for every record at once.
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not self.timeout_seconds > 0 or not self.deadline_seconds > 0:
            raise ValueError(
                f"timeout_seconds and deadline_seconds must be positive, got {self.timeout_seconds}, {self.deadline_seconds}"
            )

    def fetch(self, dataset: str, start, end) -> pd.DataFrame:
        """Canonical rows of the dataset with start <= datetime_utc < end, sorted; none at all is an error."""
        spec = dataset_named(dataset)
        start, end = window_bounds(start, end)
        url = f"{self.base_url.rstrip('/')}/dataset/{spec.name}"
        params = {
            "start": _danish_wall_time(start),
            # Danish wall time never decreases with UTC, so the hour before `end` bounds every wanted row.
            "end": _danish_wall_time(end - HOUR, plus_hours=1),
            "columns": ",".join(spec.columns),
            "sort": spec.sort,
        }
        records = self.fetch_records(url, params)
        rows = pd.DataFrame()
        if records:
            frame = pd.DataFrame.from_records(records)
            rows = cut_to_window(spec.to_canonical(frame, RowOrigin(f"{spec.name} at {url}")), start, end)
        if rows.empty:
            raise EmptySourceError(f"{spec.name} has no records for [{start}, {end}) ({url} {params})")
        return rows

    def fetch_records(self, url: str, params: dict[str, str]) -> list[dict]:
        """Every record the query matches, page after page, within the fetch's deadline.

        Paging stops when `total` records have arrived, when a page adds no record not already
        received (an API whose `total` overstates what it delivers), or after the pages that the
        first answer's `total` and `limit` allow; rows then missing fail the completeness check.
        """
        deadline = time.monotonic() + self.deadline_seconds
        records: list[dict] = []
        received: set[str] = set()
        with httpx.Client(timeout=self.timeout_seconds) as client:
            page = self._get_page(client, url, {**params, "offset": 0, "limit": self.page_size}, deadline)
            total, batch = _total_and_records(page, url)
            allowed_pages = max(1, math.ceil(total / self.page_size))
            for page_number in range(1, allowed_pages + 1):
                if page_number > 1:
                    page = self._get_page(client, url, {**params, "offset": len(records), "limit": self.page_size}, deadline)
                    batch = _total_and_records(page, url)[1]
                fresh = {_record_identity(record) for record in batch} - received
                if not fresh:
                    break
                received |= fresh
                records.extend(batch)
                if len(records) >= total:
                    break
        return records

    def _get_page(self, client: httpx.Client, url: str, params: dict, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_error(url, params, "before this page")
        retrying = Retrying(
            # A retry whose backoff would end past the deadline is not started.
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(remaining),
            wait=self._wait,
            retry=retry_if_exception_type(httpx.TransportError) | _retryable_status,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(_get_json, client, url, params, self.timeout_seconds, deadline)
        except ApiStatusError as error:
            if not error.retryable:
                raise SourceRequestError(str(error)) from error
            last = str(error)
        except httpx.TransportError as error:
            last = f"{type(error).__name__}: {error}"
        if retrying.statistics.get("attempt_number", 0) < self.max_attempts:
            # Stopped before its attempts ran out: the next try would have ended past the deadline.
            raise self._deadline_error(url, params, f"last: {last}")
        raise SourceUnavailableError(f"{url} failed {self.max_attempts} attempt(s) ({params}); last: {last}")

    def _deadline_error(self, url: str, params: dict, detail: str) -> SourceDeadlineError:
        return SourceDeadlineError(
            f"{url}: the fetch's deadline of {self.deadline_seconds:g} s passed ({params}); {detail}"
        )

    def _wait(self, retry_state) -> float:
        """Retry-After when the API sent one, else exponential backoff."""
        error = retry_state.outcome.exception()
        if isinstance(error, ApiStatusError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_wait_seconds)
        backoff = wait_exponential(multiplier=self.retry_wait_seconds, max=self.max_retry_wait_seconds)
        return backoff(retry_state)


def _retryable_status(retry_state) -> bool:
    error = retry_state.outcome.exception()
    return isinstance(error, ApiStatusError) and error.retryable


def _get_json(client: httpx.Client, url: str, params: dict, timeout_seconds: float, fetch_deadline: float) -> dict:
    """One request whose whole answer must arrive within `timeout_seconds` and before the fetch's deadline
    (httpx's own read timeout restarts with every byte, so a trickling answer would never end)."""
    request_deadline = min(time.monotonic() + timeout_seconds, fetch_deadline)
    budget = max(request_deadline - time.monotonic(), 0.001)
    with client.stream("GET", url, params=params, timeout=budget) as response:
        chunks = []
        # Raw bytes, so the rebuilt response below decodes them by its headers as httpx would.
        for chunk in response.iter_raw():
            chunks.append(chunk)
            if time.monotonic() > request_deadline:
                raise httpx.ReadTimeout(
                    f"answer still arriving after {budget:.3g} s ({sum(map(len, chunks))} bytes so far)",
                    request=response.request,
                )
    response = httpx.Response(
        response.status_code, headers=response.headers, content=b"".join(chunks), request=response.request
    )
    if response.status_code >= 400:
        raise ApiStatusError(
            response.status_code,
            str(response.url),
            _api_message(response),
            _retry_after_seconds(response.headers.get("Retry-After")),
        )
    try:
        return response.json()
    except ValueError as error:
        raise SourceFormatError(f"{response.url}: answer is not JSON: {response.text[:_QUOTED_BODY]!r}") from error


def _api_message(response: httpx.Response) -> str:
    """The API's own explanation: a JSON `message`/`error` field when present, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_QUOTED_BODY] or response.reason_phrase
    if isinstance(body, dict):
        for field in ("message", "error", "detail"):
            if body.get(field):
                return str(body[field])[:_QUOTED_BODY]
    return str(body)[:_QUOTED_BODY]


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def _total_and_records(page, url: str) -> tuple[int, list[dict]]:
    if not isinstance(page, dict) or not isinstance(page.get("records"), list):
        raise SourceFormatError(f"{url}: answer has no 'records' list: {str(page)[:_QUOTED_BODY]}")
    total = page.get("total")
    if not isinstance(total, int):
        raise SourceFormatError(f"{url}: answer has no integer 'total': {total!r}")
    return total, page["records"]


def _record_identity(record: dict) -> str:
    """A record's values as one comparable text, to tell a new record from one already received."""
    return json.dumps(record, sort_keys=True, default=str)


def _danish_wall_time(moment: pd.Timestamp, plus_hours: int = 0) -> str:
    """The Danish local wall time of a UTC moment, in the API's format."""
    wall = moment.tz_convert(DANISH_TIME_ZONE).tz_localize(None) + pd.Timedelta(hours=plus_hours)
    return wall.strftime(API_TIME_FORMAT)
