"""Forecasts issued every hour for the next 24 hours, for every series with enough history."""

import pandas as pd
from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, Failure, MetadataValue, asset

from energy_assets.assets.metadata import png_image
from energy_assets.forecasting.plots import plot_forecast_with_history
from energy_assets.forecasting.training import (
    ForecasterConfig,
    forecast_origins,
    load_forecaster,
    required_history_hours,
)
from energy_assets.partitions import hourly_partitions, past_hours
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.model_registry import ModelRegistry, RegisteredModel, model_in_effect
from energy_assets.schema import (
    FORECAST_DTYPES,
    DATETIME,
    FORECAST_COLUMNS,
    FORECAST_HORIZON_HOURS,
    HORIZON,
    ISSUED_AT,
    MODEL_NAME,
    MODEL_VERSION,
    SERIES_KEY,
)

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
    registered = model_registry.versions(MODEL_NAME)
    models = {origin: model_in_effect(registered, origin) for origin in origins}
    unserved = [origin.isoformat() for origin, model in models.items() if model is None]
    if unserved:
        raise Failure(
            description=f"no registered {MODEL_NAME} has a data cutoff at or before {unserved[:3]}...; "
            "materialize forecasting_model for these hours first",
            allow_retries=False,
        )
    lookback = max(required_history_hours(ForecasterConfig.from_dict(m.config)) for m in models.values())
    history = feature_store.read(origins[0] - pd.Timedelta(hours=lookback), origins[-1] + pd.Timedelta(hours=1))

    # One vectorized prediction per model version, across all of that version's origins.
    by_version: dict[int, tuple[RegisteredModel, list[pd.Timestamp]]] = {}
    for origin, model in models.items():
        by_version.setdefault(model.version, (model, []))[1].append(origin)
    parts = []
    for version, (model, version_origins) in by_version.items():
        forecaster = load_forecaster(model_registry.download(model))
        part = forecast_origins(forecaster, history, version_origins, horizon=FORECAST_HORIZON_HOURS)
        parts.append(part.assign(**{MODEL_VERSION: version}))
    forecasts = pd.concat(parts, ignore_index=True).sort_values([ISSUED_AT, *SERIES_KEY, HORIZON])
    forecasts = forecasts[FORECAST_COLUMNS].astype({MODEL_VERSION: FORECAST_DTYPES[MODEL_VERSION]}).reset_index(drop=True)

    missing = sorted(set(origins) - set(forecasts[ISSUED_AT]))
    if missing:
        raise Failure(
            description=f"no series had enough history to forecast from {[m.isoformat() for m in missing[:3]]}",
            allow_retries=False,
        )
    last_origin = origins[-1]
    context.add_output_metadata(
        {
            "rows": len(forecasts),
            "series": len(forecasts[SERIES_KEY].drop_duplicates()),
            "issue_hours": len(origins),
            "horizon_range": f"{forecasts[HORIZON].min()}..{forecasts[HORIZON].max()}",
            "model_versions": MetadataValue.json(sorted(by_version)),
            "forecast_plot": png_image(
                plot_forecast_with_history(
                    forecasts[forecasts[ISSUED_AT] == last_origin],
                    history[history[DATETIME] <= last_origin],
                ),
                f"forecast issued at {last_origin.isoformat()}",
            ),
        }
    )
    return forecasts

