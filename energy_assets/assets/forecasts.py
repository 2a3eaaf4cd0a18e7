"""Forecasts issued every hour for the next 24 hours, for every series with enough history."""

from collections.abc import Mapping

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
    asset,
)

from energy_assets.assets.metadata import in_effect_metadata, png_image, table_preview
from energy_assets.forecasting.history_gaps import MAX_FILLED_HOURS, HistoryGaps
from energy_assets.forecasting.plots import plot_forecast_with_history
from energy_assets.forecasting.issuing import CannotForecast, history_window, issue_forecasts, models_for
from energy_assets.forecasting.retraining import RegisteredModel
from energy_assets.forecasting.training import ForecasterConfig, required_history_hours
from energy_assets.partitions import hourly_partitions, past_hours
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.io_manager import column_schema_metadata
from energy_assets.resources.model_registry import ModelRegistry
from energy_assets.schema import DATETIME, FORECAST_SCHEMA, HORIZON, ISSUED_AT, MODEL_NAME, SERIES_KEY
from energy_assets.timeline import hour_key

# The lineage shown in the UI uses the default configuration's needs; a run reads what its model needs.
FORECAST_LOOKBACK_HOURS = required_history_hours(ForecasterConfig())


@asset(
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[
        AssetDep("forecasting_model"),
        AssetDep("energy_consumption_features", partition_mapping=past_hours(FORECAST_LOOKBACK_HOURS)),
    ],
    io_manager_key="bucket_io_manager",
    metadata={"partition_column": ISSUED_AT, **column_schema_metadata(FORECAST_SCHEMA)},
    check_specs=[
        AssetCheckSpec(
            "complete_history",
            asset="energy_forecasts",
            description=(
                "No forecast read an hour its series lacks in the feature group. A warning, not blocking: the other"
                f" series' forecasts are sound; a series lacking more than {MAX_FILLED_HOURS} of the hours its"
                " forecast reads (or the oldest of them) got none, one lacking fewer is stored with the count in"
                " history_hours_missing."
            ),
        )
    ],
    group_name="forecasting",
    kinds={"pandas", "parquet"},
)
def energy_forecasts(
    context: AssetExecutionContext, feature_store: FeatureStore, model_registry: ModelRegistry
):
    """Forecasts issued at each hour H for H+1 ... H+24, with the model in effect at H; a series whose history
    lacks hours the forecast reads is refused or flagged (`history_gaps`), and the check lists it."""
    window = context.partition_time_window
    origins = pd.date_range(window.start, window.end, freq="h", inclusive="left")
    try:
        registered = model_registry.versions(MODEL_NAME)
        models = models_for(origins, registered)
        history = feature_store.read(*history_window(models))
        forecasts, gaps = issue_forecasts(models, history, model_registry.download, registered)
    except CannotForecast as impossible:
        raise Failure(description=str(impossible), allow_retries=False) from impossible
    # Each issue hour's partition says what is true of that hour; the run's totals and the plot go on the
    # range's newest partition only, named as the run's: Dagster copies an Output's metadata into every
    # partition's materialization, where a backfill's totals would read as each hour's.
    for origin, facts in _issue_hour_facts(forecasts, gaps, models).items():
        context.add_asset_metadata(facts, partition_key=hour_key(origin))
    context.add_asset_metadata(
        _run_summary(forecasts, gaps, models, history), partition_key=context.partition_key_range.end
    )
    yield Output(forecasts)
    yield _complete_history(gaps)


def _issue_hour_facts(
    forecasts: pd.DataFrame, gaps: HistoryGaps, models: Mapping[pd.Timestamp, RegisteredModel]
) -> dict[pd.Timestamp, dict]:
    """Per issue hour: its rows and series, the model that issued them, and the series the gap rule refused
    or flagged there (a refused series has no rows at that hour)."""
    origins = pd.DatetimeIndex(list(models))
    counts = pd.DataFrame(
        {
            "rows": forecasts[ISSUED_AT].value_counts(),
            "series": forecasts.drop_duplicates([ISSUED_AT, *SERIES_KEY])[ISSUED_AT].value_counts(),
            "forecasts_refused": gaps.refused[ISSUED_AT].value_counts(),
            "forecasts_flagged": gaps.flagged[ISSUED_AT].value_counts(),
        }
    )
    counts = counts.reindex(origins).fillna(0).astype(int)
    return {
        origin: {
            "rows": int(row.rows),
            "series": int(row.series),
            **in_effect_metadata(models[origin]),
            "forecasts_refused": int(row.forecasts_refused),
            "forecasts_flagged": int(row.forecasts_flagged),
        }
        for origin, row in zip(origins, counts.itertuples())
    }


def _run_summary(
    forecasts: pd.DataFrame,
    gaps: HistoryGaps,
    models: Mapping[pd.Timestamp, RegisteredModel],
    history: pd.DataFrame,
) -> dict:
    """The run's totals, and the plot of the forecasts issued at its newest hour with the history before it."""
    last_origin = max(models)
    plot = plot_forecast_with_history(
        forecasts[forecasts[ISSUED_AT] == last_origin], history[history[DATETIME] <= last_origin]
    )
    return {
        "issue_hours_in_this_run": len(models),
        "rows_in_this_run": len(forecasts),
        "series_in_this_run": len(forecasts[SERIES_KEY].drop_duplicates()),
        "horizon_range_in_this_run": f"{forecasts[HORIZON].min()}..{forecasts[HORIZON].max()}",
        "registry_versions_in_this_run": MetadataValue.json(sorted({model.version for model in models.values()})),
        "forecasts_refused_in_this_run": len(gaps.refused),
        "forecasts_flagged_in_this_run": len(gaps.flagged),
        "forecast_plot": png_image(plot, f"forecast issued at {last_origin.isoformat()}"),
    }


def _complete_history(gaps: HistoryGaps) -> AssetCheckResult:
    """The check result: passed when no forecast read a missing hour, else a warning listing the series."""
    by_series = gaps.by_series()
    metadata = {
        "series_refused": int((by_series["refused"] > 0).sum()),
        "series_flagged": int((by_series["flagged"] > 0).sum()),
        "forecasts_refused": len(gaps.refused),
        "forecasts_flagged": len(gaps.flagged),
        "max_filled_hours": MAX_FILLED_HOURS,
    }
    if not by_series.empty:
        metadata["series"] = table_preview(by_series, rows=100)
    return AssetCheckResult(
        check_name="complete_history",
        passed=by_series.empty,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
        description=None if by_series.empty else (
            f"{metadata['series_refused']} series refused and {metadata['series_flagged']} flagged for hours missing "
            "from the history their forecasts read: " + "; ".join(
                f"{' '.join(str(v) for v in row[:-6])} lacks {row[-6]}" for row in by_series.itertuples(index=False)
            )[:2000]
        ),
    )
