"""The main job offline: the most recent published hours through the whole graph on the embedded defaults."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pandas as pd
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

from energy_assets import settings
from energy_assets.app.forecast_output import forecast_table
from energy_assets.definitions import defs, deployment_resources
from energy_assets.schema import FORECAST_HORIZON_HOURS
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.files import exclusive_lock
from energy_assets.storage.forecasts import latest_forecast
from energy_assets.timeline import HOUR, hour_key, newest_published_hour

# Hidden, so Dagster and its users never take it for part of the instance.
INSTANCE_LOCK_FILE = ".energy_assets_instance.lock"
# The demo's own instance reports nothing home; a DAGSTER_HOME the user set keeps its own settings.
DEMO_TELEMETRY_SETTINGS = "telemetry:\n  enabled: false\n"
# Step events would bury the summary; warnings and errors still show.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
RAW_AND_FEATURES = AssetSelection.assets("consumption_raw", "energy_consumption_features")
MODEL_AND_FORECASTS = AssetSelection.assets("forecasting_model", "energy_forecasts")
# Dagster tags the runs of schedules, sensors and backfills itself; these say where the others came from,
# on the Runs page and in its filters.
SOURCE_TAG = "source"
DEMO_TAGS = {SOURCE_TAG: "demo"}


def demo_instance() -> DagsterInstance:
    """The instance `dg dev` shows: DAGSTER_HOME if set, else one under the state directory."""
    if not os.environ.get("DAGSTER_HOME"):
        home = settings.state_dir() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance_settings = home / "dagster.yaml"
        if not instance_settings.exists():
            instance_settings.write_text(DEMO_TELEMETRY_SETTINGS)
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
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """One in-process run over every hour first_hour ... last_hour, as a single-run backfill does."""
    return materialize(
        list(defs.assets),
        selection=selection,
        resources=resources if resources is not None else deployment_resources(),
        instance=instance,
        tags={**(tags or {}), **range_tags(first_hour, last_hour)},
        raise_on_error=raise_on_error,
        run_config=run_config,
    )


def range_tags(first_hour: pd.Timestamp, last_hour: pd.Timestamp) -> dict[str, str]:
    """The tags that make one run cover every partition first_hour ... last_hour."""
    return {
        "dagster/asset_partition_range_start": hour_key(first_hour),
        "dagster/asset_partition_range_end": hour_key(last_hour),
    }


def unpartitioned_assets() -> list[str]:
    """The assets over every hour at once (the accuracy summary, the serving files when they are on)."""
    return [asset.key.to_user_string() for asset in defs.assets if asset.partitions_def is None]


def materialize_unpartitioned(instance: DagsterInstance, run_config: dict | None, tags: dict[str, str]) -> None:
    """Refresh the unpartitioned assets in one in-process run, after new forecasts and accuracy hours."""
    materialize(
        list(defs.assets), selection=AssetSelection.assets(*unpartitioned_assets()), resources=deployment_resources(),
        instance=instance, run_config=run_config, tags=tags,
    )


def demo_hours(newest: pd.Timestamp, scored_hours: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first issue hour the demo forecasts, and the last whose 24 hours of actuals are published by `newest`."""
    last_scored = newest - FORECAST_HORIZON_HOURS * HOUR
    return last_scored - (scored_hours - 1) * HOUR, last_scored


def run_demo(history_days: int = 28, scored_hours: int = 24, verbose: bool = False) -> pd.Timestamp:
    """Fill the feature group up to the newest published hour, forecast every issue hour from
    `scored_hours` + 24 hours back to it, score the first `scored_hours` (the others await their
    actuals), then refresh the summary and the serving files; returns the newest published hour."""
    instance = demo_instance()
    run_config = None if verbose else QUIET_RUN_CONFIG
    newest = newest_published_hour(pd.Timestamp.now(tz="UTC"), settings.publication_delay())
    first_issue, last_scored = demo_hours(newest, scored_hours)
    history_start = first_issue - pd.Timedelta(days=history_days)
    print(f"1/4 consumption_raw, energy_consumption_features: {history_start} ... {newest}")
    materialize_range(RAW_AND_FEATURES, history_start, newest, instance, run_config=run_config, tags=DEMO_TAGS)
    print(f"2/4 forecasting_model, energy_forecasts: issue hours {first_issue} ... {newest}")
    materialize_range(MODEL_AND_FORECASTS, first_issue, newest, instance, run_config=run_config, tags=DEMO_TAGS)
    print(f"3/4 forecast_accuracy: issue hours {first_issue} ... {last_scored} (their actuals are in)")
    materialize_range(
        AssetSelection.assets("forecast_accuracy"), first_issue, last_scored, instance, run_config=run_config,
        tags=DEMO_TAGS,
    )
    print(f"4/4 {', '.join(unpartitioned_assets())}")
    materialize_unpartitioned(instance, run_config, DEMO_TAGS)
    return newest


def describe_results(newest: pd.Timestamp) -> str:
    """Where the demo's results are, the newest forecast, how to look at them in the UI and how to fill the hours
    published after the demo."""
    home = settings.state_dir()
    forecasts = latest_forecast(deployment_bucket(), at_or_before=newest)
    lines = [
        f"state directory ({settings.HOME}): {home}",
        f"  raw data, forecasts and accuracy (parquet, one object per hour), serving files: {home / 'bucket'}",
        f"  feature group: {home / 'feature_store'}",
        f"  model registry: {home / 'model_registry'}",
        f"  Dagster instance (DAGSTER_HOME): {os.environ['DAGSTER_HOME']}",
        f"the newest forecast (all of it: {with_homes('energy-assets', 'latest')}):",
        forecast_table(forecasts, rows=5),
        "",
        "see it in the Dagster UI (http://127.0.0.1:3000, Assets -> energy_forecasts, forecast_accuracy_summary):",
        f"  {with_homes('dg', 'dev', '-m', 'energy_assets.definitions')}",
        "fill the hours published since (one more each hour) through the whole graph, then score and summarize:",
        f"  {with_homes('energy-assets', 'catch-up')}",
    ]
    return "\n".join(lines)


def with_homes(program: str, *arguments: str) -> str:
    """A shell command running `program` of this environment on the demo's Dagster instance and state directory."""
    variables = {"DAGSTER_HOME": os.environ["DAGSTER_HOME"], settings.HOME: str(settings.state_dir())}
    return shlex.join(
        [*(f"{name}={value}" for name, value in variables.items()), str(Path(sys.executable).with_name(program)), *arguments]
    )
