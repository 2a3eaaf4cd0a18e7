"""Forecasts issued every hour for the next 24 hours, for every series with enough history."""

import pandas as pd
from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, Failure, MetadataValue, asset

from energy_assets.assets.metadata import png_image
from energy_assets.forecasting.plots import plot_forecast_with_history
from energy_assets.forecasting.issuing import CannotForecast, history_window, issue_forecasts, models_for
from energy_assets.forecasting.training import ForecasterConfig, required_history_hours
from energy_assets.partitions import hourly_partitions, past_hours
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.model_registry import ModelRegistry
from energy_assets.schema import DATETIME, HORIZON, ISSUED_AT, MODEL_NAME, SERIES_KEY

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
    metadata={"partition_column": ISSUED_AT},
    group_name="forecasting",
    kinds={"pandas", "parquet"},
)
def energy_forecasts(
    context: AssetExecutionContext, feature_store: FeatureStore, model_registry: ModelRegistry
) -> pd.DataFrame:
    """Forecasts issued at each hour H for H+1 ... H+24, with the model in effect at H."""
    window = context.partition_time_window
    origins = pd.date_range(window.start, window.end, freq="h", inclusive="left")
    try:
        registered = model_registry.versions(MODEL_NAME)
        models = models_for(origins, registered)
        history = feature_store.read(*history_window(models))
        forecasts = issue_forecasts(models, history, model_registry.download, registered)
    except CannotForecast as impossible:
        raise Failure(description=str(impossible), allow_retries=False) from impossible
    last_origin = origins[-1]
    context.add_output_metadata(
        {
            "rows": len(forecasts),
            "series": len(forecasts[SERIES_KEY].drop_duplicates()),
            "issue_hours": len(origins),
            "horizon_range": f"{forecasts[HORIZON].min()}..{forecasts[HORIZON].max()}",
            "model_versions": MetadataValue.json(sorted({model.version for model in models.values()})),
        }
    )
    # The plot goes on the range's newest partition only: a backfill keeps one copy, not one per hour.
    plot = plot_forecast_with_history(
        forecasts[forecasts[ISSUED_AT] == last_origin], history[history[DATETIME] <= last_origin]
    )
    context.add_asset_metadata(
        {"forecast_plot": png_image(plot, f"forecast issued at {last_origin.isoformat()}")},
        partition_key=context.partition_key_range.end,
    )
    return forecasts
