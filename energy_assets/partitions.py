"""The hourly partitioning shared by every asset, and the windows that tie hours together."""

from __future__ import annotations

from dagster import HourlyPartitionsDefinition, TimeWindowPartitionMapping

from energy_assets import settings
from energy_assets.timeline import HOUR_KEY_FORMAT

# A partition key names data time (UTC), never the wall clock.
hourly_partitions = HourlyPartitionsDefinition(
    start_date=settings.partitions_start(), timezone="UTC", fmt=HOUR_KEY_FORMAT
)


def past_hours(hours: int) -> TimeWindowPartitionMapping:
    """Hour H depends on hours H-hours+1 ... H; hours before the first partition are simply absent."""
    return TimeWindowPartitionMapping(
        start_offset=-(hours - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
    )


def future_hours(hours: int) -> TimeWindowPartitionMapping:
    """Hour H depends on hours H+1 ... H+hours (the actuals of forecasts issued at H)."""
    return TimeWindowPartitionMapping(start_offset=1, end_offset=hours)
