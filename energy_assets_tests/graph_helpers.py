"""Running the real asset graph in-process over hour ranges, as single-run backfills do."""

from __future__ import annotations

import pandas as pd
from dagster import AssetKey, AssetSelection, DagsterInstance, ExecuteInProcessResult

from energy_assets.app.demo import materialize_range
from energy_assets.definitions import deployment_resources, forecast_assets
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.timeline import hour_key

RAW_AND_FEATURES = AssetSelection.assets("consumption_raw", "energy_consumption_features")
FORECAST_GRAPH = AssetSelection.assets(*forecast_assets)
# Enough history for a training with its 24-hour validation window, before the graph tests' first issue hour.
HISTORY_HOURS = min_training_hours(ForecasterConfig()) + 24
FIRST_ISSUE = pd.Timestamp("2023-01-12 00:00", tz="UTC")


def hour(text: str) -> pd.Timestamp:
    """A UTC hour from text such as '2023-01-05 13:00'."""
    return pd.Timestamp(text, tz="UTC")


def partition_key(stamp: pd.Timestamp) -> str:
    return hour_key(stamp)


def run_range(
    first: pd.Timestamp,
    last: pd.Timestamp,
    selection: AssetSelection = FORECAST_GRAPH,
    instance: DagsterInstance | None = None,
    resources: dict | None = None,
    raise_on_error: bool = True,
    run_config: dict | None = None,
) -> ExecuteInProcessResult:
    """One run over hours first ... last (inclusive) with the current environment's resources."""
    return materialize_range(
        selection,
        first,
        last,
        instance or DagsterInstance.ephemeral(),
        resources if resources is not None else deployment_resources(),
        raise_on_error=raise_on_error,
        run_config=run_config,
    )


def check_results(result: ExecuteInProcessResult) -> dict[str, bool]:
    """Check name -> passed, for every asset check evaluated in a run."""
    return {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data.passed
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def partition_metadata(instance: DagsterInstance, asset: str) -> dict[str, dict]:
    """Partition key -> the metadata of its newest materialization, as the instance stored it (what the UI
    shows on that partition's page)."""
    metadata: dict[str, dict] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(AssetKey(asset), limit=10_000, cursor=cursor)  # newest first
        for record in page.records:
            materialization = record.asset_materialization
            metadata.setdefault(materialization.partition, dict(materialization.metadata))
        if not page.has_more:
            return metadata
        cursor = page.cursor
