"""The main job offline: a range of hours through the whole graph on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

from energy_assets.definitions import defs, deployment_resources, forecast_assets
from energy_assets.settings import state_dir
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.files import exclusive_lock
from energy_assets.storage.forecasts import latest_forecast
from energy_assets.timeline import hour_key
# Hidden, so Dagster and its users never take it for part of the instance.
INSTANCE_LOCK_FILE = ".energy_assets_instance.lock"
# Step events would bury the summary; warnings and errors still show.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def demo_instance() -> DagsterInstance:
    """The instance `dagster dev` shows: DAGSTER_HOME if set, else one under the state directory."""
    if not os.environ.get("DAGSTER_HOME"):
        home = state_dir() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").touch()
        os.environ["DAGSTER_HOME"] = str(home)
    return initialized_instance(Path(os.environ["DAGSTER_HOME"]))


def initialized_instance(home: Path) -> DagsterInstance:
    """The instance at `home`, its storages created by one process at a time.

    Dagster creates its SQLite tables without a lock when it first opens a fresh home, so two
    processes starting at once can break the instance ("table runs already exists", then
    "alembic_version has more than one head", dagster-io/dagster#27390): the first creates them
    under a file lock, the others wait and open what it created.
    """
    home.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(home / INSTANCE_LOCK_FILE):
        return DagsterInstance.get()


def materialize_range(
    selection: AssetSelection,
    first_hour: pd.Timestamp,
    last_hour: pd.Timestamp,
    instance: DagsterInstance,
    resources: dict | None = None,
    raise_on_error: bool = True,
    run_config: dict | None = None,
) -> ExecuteInProcessResult:
    """One in-process run over every hour first_hour ... last_hour, as a single-run backfill does."""
    return materialize(
        list(defs.assets),
        selection=selection,
        resources=resources if resources is not None else deployment_resources(),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": hour_key(first_hour),
            "dagster/asset_partition_range_end": hour_key(last_hour),
        },
        raise_on_error=raise_on_error,
        run_config=run_config,
    )


def run_demo(start: pd.Timestamp, history_days: int = 28, forecast_hours: int = 24) -> pd.Timestamp:
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
        run_config=QUIET_RUN_CONFIG,
    )
    print(f"2/2 the whole graph: {history_end} ... {last_hour}")
    materialize_range(AssetSelection.assets(*forecast_assets), history_end, last_hour, instance, run_config=QUIET_RUN_CONFIG)
    return last_hour


def describe_results(last_hour: pd.Timestamp) -> str:
    """Where the demo's results are, and the newest forecast."""
    home = state_dir()
    forecasts = latest_forecast(deployment_bucket(), at_or_before=last_hour)
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
