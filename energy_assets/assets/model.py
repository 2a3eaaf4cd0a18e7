"""The forecasting model in effect for each issue hour, trained on a cadence and registered."""

import json
import tempfile
from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from energy_assets.assets.metadata import png_image, table_preview
from energy_assets.forecasting.plots import plot_forecasts_vs_actuals
from energy_assets.forecasting.training import (
    ForecasterConfig,
    InsufficientHistoryError,
    TrainingResult,
    save_forecaster,
    search_hyperparameters,
    train_forecaster,
)
from energy_assets.partitions import TRAINING_WINDOW_HOURS, hourly_partitions, past_hours
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.model_registry import ModelRegistry, RegisteredModel, model_in_effect
from energy_assets.schema import DATETIME, MODEL_NAME

SEARCH_RESULTS_KEY = "hyperparameter_search"
# Random search space around the defaults; sampled `search_candidates` times.
# Tree counts matter most (the model averages over its sizes); Christmas-like periods favour other weights.
SEARCH_GRID: dict[str, list] = {
    "n_estimators": [100, 200, 400],
    "holiday_weight": [0.0, 1.0],
    "num_leaves": [15, 31],
    "min_child_samples": [20, 50],
}


class ForecastingModelConfig(Config):
    """How often and on what the forecasting model is retrained."""

    training_window_days: int = Field(default=30, ge=1, description="Days of features a training reads.")
    retrain_every_hours: int = Field(default=24, ge=1, description="Retrain once the model in effect is this old.")
    validation_hours: int = Field(default=24, ge=1, description="Final hours held out to score each new model.")
    hyperparameter_search: bool = Field(
        default=False, description="Search hyperparameters before training; later retrains reuse the best found."
    )
    search_candidates: int = Field(default=6, ge=1, description="Random configurations a search tries.")


@dataclass
class _Retraining:
    model: RegisteredModel
    result: TrainingResult


@asset(
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[AssetDep("energy_consumption_features", partition_mapping=past_hours(TRAINING_WINDOW_HOURS))],
    check_specs=[
        AssetCheckSpec(
            "beats_seasonal_naive_168",
            asset="forecasting_model",
            description="The model's validation MAPE is below the 168-hour seasonal naive baseline's.",
        )
    ],
    group_name="forecasting",
    kinds={"lightgbm", "sktime"},
    pool="model_training",  # one training at a time across runs: limit in deploy/dagster.yaml (concurrency > pools)
)
def forecasting_model(
    context: AssetExecutionContext,
    config: ForecastingModelConfig,
    feature_store: FeatureStore,
    model_registry: ModelRegistry,
):
    """The model in effect for forecasts issued at each hour: trained only on features up to that hour."""
    window = context.partition_time_window
    hours = pd.date_range(window.start, window.end, freq="h", inclusive="left")
    training_window = pd.Timedelta(hours=config.training_window_days * 24)
    # One batch read serves every retraining of the range.
    history = feature_store.read(hours[0] - training_window + pd.Timedelta(hours=1), hours[-1] + pd.Timedelta(hours=1))
    registered = model_registry.versions(MODEL_NAME)
    forecaster_config = _best_known_config(registered)
    retrainings: list[_Retraining] = []
    in_effect: dict[pd.Timestamp, RegisteredModel] = {}
    for hour in hours:
        current = model_in_effect(registered, hour)
        if _needs_retraining(current, hour, config, forecaster_config, feature_store.feature_group_version):
            training_rows = history[(history[DATETIME] > hour - training_window) & (history[DATETIME] <= hour)]
            search_results = None
            if config.hyperparameter_search:
                forecaster_config, search_results = search_hyperparameters(
                    training_rows, hour, SEARCH_GRID, n_iter=config.search_candidates, base=forecaster_config
                )
            try:
                result = train_forecaster(training_rows, hour, forecaster_config, config.validation_hours)
            except InsufficientHistoryError as too_short:
                raise Failure(description=f"cannot train the model for {hour.isoformat()}: {too_short}", allow_retries=False) from too_short
            current = _register(
                model_registry, result, feature_store.feature_group_version, config.training_window_days, search_results
            )
            registered.append(current)
            retrainings.append(_Retraining(current, result))
            context.log.info(f"registered {MODEL_NAME} v{current.version} trained up to {hour.isoformat()}")
        in_effect[hour] = current

    latest = in_effect[hours[-1]]
    beats_baseline = latest.metrics["model_mape"] < latest.metrics["snaive168_mape"]
    yield MaterializeResult(metadata=_model_metadata(latest, retrainings, in_effect))
    yield AssetCheckResult(
        check_name="beats_seasonal_naive_168",
        passed=bool(beats_baseline),
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "model_version": latest.version,
            "model_mape": latest.metrics["model_mape"],
            "snaive168_mape": latest.metrics["snaive168_mape"],
        },
    )



def _best_known_config(registered: list[RegisteredModel]) -> ForecasterConfig:
    """The configuration of the newest model that came out of a search, else the defaults."""
    searched = [model for model in registered if SEARCH_RESULTS_KEY in model.extra]
    if not searched:
        return ForecasterConfig()
    return ForecasterConfig.from_dict(max(searched, key=lambda model: model.version).config)


def _needs_retraining(
    current: RegisteredModel | None,
    hour: pd.Timestamp,
    config: ForecastingModelConfig,
    forecaster_config: ForecasterConfig,
    feature_group_version: int,
) -> bool:
    """Whether the model in effect is missing, too old, or trained with another configuration."""
    return (
        current is None
        or hour - current.data_cutoff >= pd.Timedelta(hours=config.retrain_every_hours)
        or current.config != _json_normal(forecaster_config.to_dict())
        or current.feature_group_version != feature_group_version
        or current.extra.get("training_window_days") != config.training_window_days
    )


def _register(
    model_registry: ModelRegistry,
    result: TrainingResult,
    feature_group_version: int,
    training_window_days: int,
    search_results: pd.DataFrame | None,
) -> RegisteredModel:
    """Save the trained forecaster and register it with what it was trained on."""
    extra = {
        "training_rows": result.training_rows,
        "training_window_days": training_window_days,
        "excluded_series": result.excluded_series.to_dict(orient="records"),
    }
    if search_results is not None:
        extra[SEARCH_RESULTS_KEY] = search_results.to_dict(orient="records")
    with tempfile.TemporaryDirectory() as model_dir:
        save_forecaster(result.forecaster, model_dir)
        return model_registry.register(
            MODEL_NAME,
            model_dir,
            data_cutoff=result.data_cutoff,
            training_start=result.training_start,
            feature_group_version=feature_group_version,
            config=_json_normal(result.config.to_dict()),
            metrics=result.validation_metrics,
            extra=_json_normal(extra),
        )


def _json_normal(value):
    """The value as it reads back from JSON, so stored and fresh configurations compare equal."""
    return json.loads(json.dumps(value, default=str))


def _model_metadata(
    latest: RegisteredModel, retrainings: list[_Retraining], in_effect: dict[pd.Timestamp, RegisteredModel]
) -> dict:
    """What the UI shows: the model in effect at the range's last hour and what this run trained."""
    metrics = latest.metrics
    metadata = {
        "registry_version": latest.version,
        "data_cutoff": latest.data_cutoff.isoformat(),
        "training_start": latest.training_start.isoformat(),
        "training_rows": latest.extra.get("training_rows", 0),
        "retrained_in_this_run": MetadataValue.json([r.model.version for r in retrainings]),
        "versions_in_effect": MetadataValue.json(sorted({model.version for model in in_effect.values()})),
        "hyperparameters": MetadataValue.json(latest.config),
        "validation_scores": MetadataValue.md(
            pd.DataFrame(
                {
                    "forecaster": ["model", "seasonal naive 24 h", "seasonal naive 168 h"],
                    "MAPE": [metrics["model_mape"], metrics["snaive24_mape"], metrics["snaive168_mape"]],
                    "RMSPE": [metrics["model_rmspe"], metrics["snaive24_rmspe"], metrics["snaive168_rmspe"]],
                }
            ).to_markdown(index=False, floatfmt=".4f")
        ),
        **{name: MetadataValue.float(float(value)) for name, value in metrics.items()},
    }
    excluded = pd.DataFrame(latest.extra.get("excluded_series", []))
    if not excluded.empty:
        metadata["excluded_series"] = table_preview(excluded, rows=100)
    if retrainings:
        newest = retrainings[-1].result
        metadata["validation_plot"] = png_image(
            plot_forecasts_vs_actuals(newest.validation_forecasts), "forecasts against actuals"
        )
    if SEARCH_RESULTS_KEY in latest.extra:
        metadata["hyperparameter_search"] = table_preview(pd.DataFrame(latest.extra[SEARCH_RESULTS_KEY]))
    return metadata
