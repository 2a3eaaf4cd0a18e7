"""The hourly schedule that keeps forecasts fresh for the newest published hour."""

from __future__ import annotations

import pandas as pd
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    schedule,
)

from energy_assets import settings
from energy_assets.timeline import hour_key


def newest_published_hour(now: pd.Timestamp, publication_delay_hours: int) -> pd.Timestamp:
    """The newest hour whose data is complete at `now`, given the source's publication delay."""
    return (now.tz_convert("UTC") - pd.Timedelta(hours=publication_delay_hours)).floor("h") - pd.Timedelta(hours=1)


def build_hourly_schedule(job):
    """Every hour, run `job` for the newest published hour; stopped until switched on."""
    publication_delay_hours = int(settings.publication_delay() / pd.Timedelta(hours=1))

    @schedule(
        job=job,
        cron_schedule="5 * * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Materializes the newest published hour ({publication_delay_hours} h publication delay).",
    )
    def hourly_forecast_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        hour = newest_published_hour(pd.Timestamp(context.scheduled_execution_time), publication_delay_hours)
        partition_key = hour_key(hour)
        return RunRequest(run_key=partition_key, partition_key=partition_key)

    return hourly_forecast_schedule
