"""The hourly schedule that keeps forecasts fresh for the newest published hour."""

from __future__ import annotations

import os

import pandas as pd
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    schedule,
)

PUBLICATION_DELAY_VARIABLE = "ENERGY_ASSETS_PUBLICATION_DELAY_HOURS"
# ConsumptionDE35Hour was published 15 days after the hour it describes.
DEFAULT_PUBLICATION_DELAY_HOURS = 15 * 24
SCHEDULE_CRON_VARIABLE = "ENERGY_ASSETS_SCHEDULE_CRON"
# Minute 5 of every hour: the newest published hour changes once an hour.
DEFAULT_SCHEDULE_CRON = "5 * * * *"


def newest_published_hour(now: pd.Timestamp, publication_delay_hours: int) -> pd.Timestamp:
    """The newest hour whose data is complete at `now`, given the source's publication delay."""
    return (now.tz_convert("UTC") - pd.Timedelta(hours=publication_delay_hours)).floor("h") - pd.Timedelta(hours=1)


def build_hourly_schedule(job):
    """Every hour, run `job` for the newest published hour; stopped until switched on."""
    publication_delay_hours = int(os.environ.get(PUBLICATION_DELAY_VARIABLE, DEFAULT_PUBLICATION_DELAY_HOURS))
    cron_schedule = os.environ.get(SCHEDULE_CRON_VARIABLE) or DEFAULT_SCHEDULE_CRON

    @schedule(
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Materializes the newest published hour ({publication_delay_hours} h publication delay).",
    )
    def hourly_forecast_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        hour = newest_published_hour(pd.Timestamp(context.scheduled_execution_time), publication_delay_hours)
        partition_key = hour.strftime("%Y-%m-%d-%H:%M")
        return RunRequest(run_key=partition_key, partition_key=partition_key)

    return hourly_forecast_schedule
