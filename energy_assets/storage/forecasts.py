"""Published forecasts read straight from the bucket, for consumers that do not run Dagster."""

from __future__ import annotations

import pandas as pd

from energy_assets.schema import AREA, CONSUMER_TYPE, FORECAST_SCHEMA, empty_frame
from energy_assets.settings import DEFAULT_BUCKET_PREFIX
from energy_assets.storage.buckets import Bucket
from energy_assets.storage.objects import asset_folder, hourly_objects, read_frame
from energy_assets.timeline import to_utc_hour

FORECASTS_ASSET = "energy_forecasts"


def issued_hours(bucket: Bucket, prefix: str = DEFAULT_BUCKET_PREFIX) -> dict[pd.Timestamp, str]:
    """Issue hour -> object key of every stored forecast, oldest first, from one listing."""
    return hourly_objects(bucket, asset_folder(prefix, [FORECASTS_ASSET]))


def latest_forecast(
    bucket: Bucket,
    at_or_before: pd.Timestamp,
    area: int | None = None,
    consumer_type: int | None = None,
    prefix: str = DEFAULT_BUCKET_PREFIX,
) -> pd.DataFrame:
    """The newest forecast issued at or before `at_or_before`, for every series or the one selected."""
    at = to_utc_hour(at_or_before)
    stored = issued_hours(bucket, prefix)
    issued = [hour for hour in stored if hour <= at]
    if not issued:
        folder = bucket.uri(asset_folder(prefix, [FORECASTS_ASSET]))
        raise LookupError(f"no forecast issued at or before {at} in {folder}")
    forecast = _select(read_frame(bucket, [stored[issued[-1]]]), area, consumer_type)
    if forecast.empty:
        raise LookupError(
            f"the forecast issued at {issued[-1]} ({bucket.uri(stored[issued[-1]])}) has no series "
            f"with area={area} and consumer_type={consumer_type}"
        )
    return forecast


def gather_forecasts(
    bucket: Bucket,
    issued_from: pd.Timestamp,
    issued_to: pd.Timestamp,
    area: int | None = None,
    consumer_type: int | None = None,
    prefix: str = DEFAULT_BUCKET_PREFIX,
) -> pd.DataFrame:
    """Every forecast issued from `issued_from` to `issued_to` (both included) in one table, oldest issue first;
    zero rows with the forecast columns when none was issued then."""
    start, end = to_utc_hour(issued_from), to_utc_hour(issued_to)
    if start > end:
        raise ValueError(f"issued_from {start} is after issued_to {end}")
    keys = [key for hour, key in issued_hours(bucket, prefix).items() if start <= hour <= end]
    if not keys:
        return empty_frame(FORECAST_SCHEMA)
    return _select(read_frame(bucket, keys), area, consumer_type)


def _select(forecast: pd.DataFrame, area: int | None, consumer_type: int | None) -> pd.DataFrame:
    keep = pd.Series(True, index=forecast.index)
    if area is not None:
        keep &= forecast[AREA] == area
    if consumer_type is not None:
        keep &= forecast[CONSUMER_TYPE] == consumer_type
    return forecast[keep].reset_index(drop=True)

