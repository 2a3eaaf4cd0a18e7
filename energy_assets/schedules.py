"""The hourly schedule that keeps forecasts fresh for the newest published hour."""

from __future__ import annotations

import pandas as pd
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from energy_assets import settings
from energy_assets.timeline import HOUR, hour_key, newest_published_hour


def build_hourly_schedule(job, partitions_def):
    """Every hour, run `job` for the newest published hour; stopped until switched on."""
    delay = settings.publication_delay()

    @schedule(
        job=job,
        cron_schedule=settings.schedule_cron(),
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Materializes the newest published hour ({int(delay / HOUR)} h publication delay).",
    )
    def hourly_forecast_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        hour = newest_published_hour(pd.Timestamp(context.scheduled_execution_time), delay)
        partition_key = hour_key(hour)
        if not partitions_def.has_partition_key(partition_key):
            # A snapshot file ends where its data ends: nothing newer will ever be published there.
            return SkipReason(f"{partition_key} is not a partition: the source has no data that recent")
        return RunRequest(run_key=partition_key, partition_key=partition_key)

    return hourly_forecast_schedule
