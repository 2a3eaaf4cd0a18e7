"""The hourly partitioning shared by every asset, and the windows that tie hours together."""

from __future__ import annotations

import logging

import pandas as pd
from dagster import HourlyPartitionsDefinition, TimeWindowPartitionMapping

from energy_assets import settings
from energy_assets.schema import FORECAST_HORIZON_HOURS
from energy_assets.sources.files import snapshot_hours
from energy_assets.timeline import HOUR, HOUR_KEY_FORMAT, hour_key, newest_published_hour

LOGGER = logging.getLogger(__name__)


def published_partitions(now: pd.Timestamp | None = None) -> HourlyPartitionsDefinition:
    """Every hour a run can fill: from the start to the newest hour the source can have published.

    A snapshot file ends at its last hour and, unless told otherwise, starts at its first. Other
    sources end `publication_delay` before the wall clock (a negative end offset, so the set moves
    with time) and start ENERGY_ASSETS_PARTITIONS_START, or DEFAULT_PARTITION_DAYS before the
    newest published hour. A snapshot that gives no hours (missing, empty, unreadable, not a snapshot)
    never stops the code location from loading: the set falls back to the other sources' window, a
    warning says why, and every run fails naming the file and what is wrong with it.
    """
    start = settings.partitions_start()
    path = settings.text(settings.SOURCE_PATH)
    if settings.source_kind() == "file" and path:
        try:
            first, last = snapshot_hours(path)
        except Exception as unusable:  # noqa: BLE001 (whatever is wrong with the data, the definitions load)
            LOGGER.warning(
                "%s=file: %s gives no hours (%s: %s); the partitions fall back to the window before the newest "
                "published hour, and runs fail naming the file until it is fixed",
                settings.SOURCE, path, type(unusable).__name__, unusable,
            )
        else:
            return _hourly(start or hour_key(first), end_date=hour_key(last + HOUR))
    delay = settings.publication_delay()
    newest = newest_published_hour(now if now is not None else pd.Timestamp.now(tz="UTC"), delay)
    default_start = (newest - pd.Timedelta(days=settings.DEFAULT_PARTITION_DAYS)).floor("D")
    return _hourly(start or hour_key(default_start), end_offset=-int(delay / HOUR))


def _hourly(start: str, **end) -> HourlyPartitionsDefinition:
    return HourlyPartitionsDefinition(start_date=start, timezone="UTC", fmt=HOUR_KEY_FORMAT, **end)


def scorable_partitions(published: HourlyPartitionsDefinition) -> HourlyPartitionsDefinition:
    """The issue hours whose forecasts can be scored: the hours of `published` whose whole horizon (the next
    `FORECAST_HORIZON_HOURS`) is published too. The set ends that many hours before `published` and moves with it,
    so each of its hours appears when the last actual of its forecasts does."""
    start = hour_key(published.start)
    if published.end is not None:
        return _hourly(start, end_date=hour_key(published.end - FORECAST_HORIZON_HOURS * HOUR))
    return _hourly(start, end_offset=published.end_offset - FORECAST_HORIZON_HOURS)


# A partition key names data time (UTC), never the wall clock.
hourly_partitions = published_partitions()
# forecast_accuracy's: an issue hour exists once its forecasts can be scored.
scored_partitions = scorable_partitions(hourly_partitions)


def past_hours(hours: int) -> TimeWindowPartitionMapping:
    """Hour H depends on hours H-hours+1 ... H; hours before the first partition are simply absent."""
    return TimeWindowPartitionMapping(
        start_offset=-(hours - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
    )


def future_hours(hours: int) -> TimeWindowPartitionMapping:
    """Hour H depends on hours H+1 ... H+hours (the actuals of forecasts issued at H)."""
    return TimeWindowPartitionMapping(start_offset=1, end_offset=hours)
