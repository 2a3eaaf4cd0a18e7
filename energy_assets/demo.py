"""The main job offline: a range of hours through the whole graph on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from dagster import AssetSelection, DagsterInstance, materialize

from energy_assets.definitions import defs, forecast_assets
from energy_assets.settings import state_dir

DEFAULT_DEMO_START = pd.Timestamp("2022-12-01 00:00", tz="UTC")
PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"


def demo_instance() -> DagsterInstance:
    """The instance `dagster dev` shows: DAGSTER_HOME if set, else one under the state directory."""
    if not os.environ.get("DAGSTER_HOME"):
        home = state_dir() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").touch()
        os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def materialize_range(selection: AssetSelection, first_hour: pd.Timestamp, last_hour: pd.Timestamp, instance: DagsterInstance):
    """One run over every hour first_hour ... last_hour, as a single-run backfill does."""
    result = materialize(
        forecast_assets,
        selection=selection,
        resources=defs.resources,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first_hour.strftime(PARTITION_KEY_FORMAT),
            "dagster/asset_partition_range_end": last_hour.strftime(PARTITION_KEY_FORMAT),
        },
    )
    return result


def run_demo(start: pd.Timestamp = DEFAULT_DEMO_START, history_days: int = 28, forecast_hours: int = 24) -> pd.Timestamp:
    """Fill the feature group with `history_days`, then run the whole graph for `forecast_hours`."""
    instance = demo_instance()
    history_end = start + pd.Timedelta(days=history_days)
    last_hour = history_end + pd.Timedelta(hours=forecast_hours - 1)
    print(f"1/2 consumption_raw, energy_consumption_features: {start} ... {history_end - pd.Timedelta(hours=1)}")
    materialize_range(
        AssetSelection.assets("consumption_raw", "energy_consumption_features"),
        start,
        history_end - pd.Timedelta(hours=1),
        instance,
    )
    print(f"2/2 the whole graph: {history_end} ... {last_hour}")
    materialize_range(AssetSelection.all(), history_end, last_hour, instance)
    return last_hour


def describe_results(last_hour: pd.Timestamp) -> str:
    """Where the demo's results are, and the newest forecast."""
    from energy_assets.forecast_store import latest_forecast
    from energy_assets.resources import build_bucket

    home = state_dir()
    forecasts = latest_forecast(build_bucket(), at_or_before=last_hour)
    lines = [
        f"state directory (ENERGY_ASSETS_HOME): {home}",
        f"  raw data and forecasts (parquet, one object per hour): {home / 'bucket'}",
        f"  feature group: {home / 'feature_store'}",
        f"  model registry: {home / 'model_registry'}",
        f"  Dagster instance (DAGSTER_HOME): {os.environ['DAGSTER_HOME']}",
        f"newest forecast, issued at {last_hour}: {len(forecasts)} rows; first rows:",
        forecasts.head(5).to_string(index=False),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `energy-assets demo`."""
    last_hour = run_demo()
    print(describe_results(last_hour))


if __name__ == "__main__":
    main()
