"""The hourly partitioning shared by every asset, and the windows that tie hours together."""

from __future__ import annotations

import os

from dagster import HourlyPartitionsDefinition, TimeWindowPartitionMapping

PARTITIONS_START_VARIABLE = "ENERGY_ASSETS_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2022-12-01-00:00"

# A partition key names data time (UTC), never the wall clock.
hourly_partitions = HourlyPartitionsDefinition(
    start_date=os.environ.get(PARTITIONS_START_VARIABLE) or DEFAULT_PARTITIONS_START,
    timezone="UTC",
)

TRAINING_WINDOW_HOURS = 30 * 24


def past_hours(hours: int) -> TimeWindowPartitionMapping:
    """Hour H depends on hours H-hours+1 ... H; hours before the first partition are simply absent."""
    return TimeWindowPartitionMapping(
        start_offset=-(hours - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
    )


def future_hours(hours: int) -> TimeWindowPartitionMapping:
    """Hour H depends on hours H+1 ... H+hours (the actuals of forecasts issued at H)."""
    return TimeWindowPartitionMapping(start_offset=1, end_offset=hours)
