"""After the demo: every hour the source has published since the newest forecast, through the whole graph."""

from __future__ import annotations

import os

import pandas as pd
from dagster import AssetKey, AssetSelection, DagsterInstance

from energy_assets.app.demo import (
    QUIET_RUN_CONFIG,
    SOURCE_TAG,
    demo_instance,
    materialize_range,
    materialize_unpartitioned,
    range_tags,
    unpartitioned_assets,
)
from energy_assets.definitions import defs, hourly_forecast_job
from energy_assets.partitions import hourly_partitions, scored_partitions
from energy_assets.timeline import HOUR, parse_time

CATCH_UP_TAGS = {SOURCE_TAG: "catch-up"}
FORECASTS = AssetKey("energy_forecasts")
ACCURACY = AssetKey("forecast_accuracy")


def materialized_hours(instance: DagsterInstance, asset: AssetKey) -> list[pd.Timestamp]:
    """The hours of `asset` the instance holds a materialization of, oldest first."""
    return sorted(parse_time(key) for key in instance.get_materialized_partitions(asset))


def catch_up(verbose: bool = False) -> pd.Timestamp | None:
    """Run `hourly_forecast_job` (raw -> features -> model -> forecasts) over every published hour after the
    newest forecast, score the issue hours whose actuals have come in since, and refresh the unpartitioned
    assets; returns the newest forecast hour, or None when nothing was published since the last run."""
    instance = demo_instance()
    run_config = None if verbose else QUIET_RUN_CONFIG
    forecast_hours = materialized_hours(instance, FORECASTS)
    if not forecast_hours:
        raise LookupError(
            f"the Dagster instance at {os.environ['DAGSTER_HOME']} has no materialization of energy_forecasts to "
            "continue from: run `energy-assets demo` first (it fills the history a forecast needs)"
        )
    newest_published = parse_time(hourly_partitions.get_last_partition_key())
    first = forecast_hours[-1] + HOUR
    if first > newest_published:
        print(f"nothing to fill: energy_forecasts is materialized up to {forecast_hours[-1]:%Y-%m-%d %H:%M} UTC, the "
              "newest hour the source has published")
        return None
    print(f"1/3 {hourly_forecast_job.name} (raw -> features -> model -> forecasts): hours {first} ... {newest_published}")
    defs.resolve_job_def(hourly_forecast_job.name).execute_in_process(
        instance=instance, run_config=run_config, tags={**CATCH_UP_TAGS, **range_tags(first, newest_published)}
    )
    # An issue hour is scored once the actuals of its whole horizon are in; only hours with forecasts are.
    scored = materialized_hours(instance, ACCURACY)
    first_unscored = max(scored[-1] + HOUR, forecast_hours[0]) if scored else forecast_hours[0]
    newest_scorable = scored_partitions.get_last_partition_key()
    last_scorable = parse_time(newest_scorable) if newest_scorable else None
    if last_scorable is not None and first_unscored <= last_scorable:
        print(f"2/3 forecast_accuracy: issue hours {first_unscored} ... {last_scorable} (their actuals are in)")
        materialize_range(
            AssetSelection.assets(ACCURACY), first_unscored, last_scorable, instance, run_config=run_config,
            tags=CATCH_UP_TAGS,
        )
    else:
        print(f"2/3 forecast_accuracy: no issue hour has all its actuals since {first_unscored - HOUR}")
    print(f"3/3 {', '.join(unpartitioned_assets())}")
    materialize_unpartitioned(instance, run_config, CATCH_UP_TAGS)
    return newest_published
