"""The forecasting model in effect for each issue hour, trained on a cadence and registered."""

from collections.abc import Mapping
from typing import Any

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

from energy_assets.assets.metadata import in_effect_metadata, png_image, table_preview
from energy_assets.forecasting.plots import plot_forecasts_vs_actuals
from energy_assets.forecasting.provenance import registry_metric_name, registry_metrics
from energy_assets.forecasting.retraining import (
    SEARCH_RESULTS_KEY,
    CannotTrain,
    ModelsInEffect,
    RetrainingPolicy,
    keep_models_in_effect,
)
from energy_assets.forecasting.metrics import HEADLINE
from energy_assets.forecasting.training import (
    TRAINING_READ_HOURS,
    TRAINING_WINDOW_HOURS,
    VALIDATION_METRICS,
)
from energy_assets.partitions import hourly_partitions, past_hours
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.model_registry import ModelRegistry
from energy_assets.timeline import hour_key

VALIDATED = {"model": "model", "snaive24": "seasonal naive 24 h", "snaive168": "seasonal naive 168 h"}
REFERENCE = "snaive168"


class ForecastingModelConfig(Config):
    """How often and on what the forecasting model is retrained."""

    training_window_days: int = Field(
        default=TRAINING_WINDOW_HOURS // 24, ge=1, description="Days of features a model learns from."
    )
    retrain_every_hours: int = Field(default=24, ge=1, description="Retrain once the model in effect is this old.")
    validation_hours: int = Field(default=24, ge=1, description="Final hours held out to score each new model.")
    hyperparameter_search: bool = Field(
        default=False, description="Search hyperparameters before training; later retrains reuse the best found."
    )
    search_candidates: int = Field(default=6, ge=1, description="Random configurations a search tries.")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Hyperparameters of GlobalLGBMForecaster (its get_params names) that replace the defaults and any"
            " search's choice, e.g. {combine_without_level_lags: false}: one booster instead of two, about half"
            " the work of a fit and a forecast. A change retrains the model in effect."
        ),
    )


@asset(
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # The default configuration's read; a run reads what its configuration needs.
    deps=[AssetDep("energy_consumption_features", partition_mapping=past_hours(TRAINING_READ_HOURS))],
    check_specs=[
        AssetCheckSpec(
            "beats_seasonal_naive_168",
            asset="forecasting_model",
            description="The model's validation WAPE (well defined on zero actuals) is below the 168-hour seasonal "
            "naive baseline's (MAPE for models registered before WAPE).",
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
    try:
        policy = RetrainingPolicy(
            training_window_hours=config.training_window_days * 24,
            retrain_every_hours=config.retrain_every_hours,
            validation_hours=config.validation_hours,
            feature_group_version=feature_store.feature_group_version,
            hyperparameter_search=config.hyperparameter_search,
            search_candidates=config.search_candidates,
            hyperparameters=config.hyperparameters,
        )
    except ValueError as unknown:
        raise Failure(description=f"run config hyperparameters: {unknown}", allow_retries=False) from unknown
    # One batch read serves every retraining of the range.
    history = feature_store.read(*policy.read_window(hours))
    try:
        models = keep_models_in_effect(
            hours,
            history,
            model_registry,
            policy,
            feature_store.data_source,
            log=context.log.info,
        )
    except CannotTrain as too_short:
        raise Failure(description=str(too_short), allow_retries=False) from too_short
    latest = models.latest
    metrics = registry_metrics(latest.metrics)  # also names metrics of models registered before the renaming
    # Each hour's partition names the model in effect at it; the run's figures, scores and tables go on the
    # range's newest partition only: a backfill keeps one copy of them, not one per hour.
    for hour, model in models.by_hour.items():
        context.add_asset_metadata(in_effect_metadata(model), partition_key=hour_key(hour))
    context.add_asset_metadata(
        {**_model_metadata(models), **_model_figures(models)}, partition_key=context.partition_key_range.end
    )
    yield MaterializeResult()
    yield beats_reference_check(latest.version, metrics)


def beats_reference_check(version: int, metrics: Mapping[str, float]) -> AssetCheckResult:
    """Whether the model's validation headline score (`metrics.HEADLINE`) is below the 168-hour seasonal naive's;
    models registered before WAPE recorded only MAPE, and are judged on it."""
    judged_on = HEADLINE if registry_metric_name("model", HEADLINE) in metrics else "mape"
    model_name, reference_name = registry_metric_name("model", judged_on), registry_metric_name(REFERENCE, judged_on)
    if model_name not in metrics or reference_name not in metrics:
        return AssetCheckResult(
            check_name="beats_seasonal_naive_168",
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"v{version} has no validation score: no forecast of its validation window could be scored (the window's"
                " actuals are missing from the feature group, or the history_gaps rule refused every forecast of it)"
            ),
            metadata={"model_version": version, "judged_on": judged_on},
        )
    model, reference = metrics[model_name], metrics[reference_name]
    passed = bool(model < reference)  # False where either is undefined (NaN)
    return AssetCheckResult(
        check_name="beats_seasonal_naive_168",
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=None if passed else f"validation {judged_on.upper()} {model:.4f} is not below the 168-hour seasonal "
        f"naive's {reference:.4f}",
        metadata={"model_version": version, "judged_on": judged_on, model_name: model, reference_name: reference},
    )


def _model_metadata(models: ModelsInEffect) -> dict:
    """What the UI shows: the model in effect at the range's last hour and what this run trained."""
    latest, retrainings, in_effect = models.latest, models.retrainings, models.by_hour
    metrics = registry_metrics(latest.metrics)
    metadata = {
        **in_effect_metadata(latest),
        "training_start": latest.training_start.isoformat(),
        "training_rows": latest.extra.get("training_rows", 0),
        "retrained_in_this_run": MetadataValue.json([r.model.version for r in retrainings]),
        "versions_in_effect": MetadataValue.json(sorted({model.version for model in in_effect.values()})),
        "hyperparameters": MetadataValue.json(latest.config),
        "validated_by": _validator(latest.extra),
        "validation_scores": MetadataValue.md(
            pd.DataFrame(
                {
                    "forecaster": list(VALIDATED.values()),
                    # Models registered before WAPE have none (nan).
                    **{
                        metric.upper(): [metrics.get(registry_metric_name(f, metric), float("nan")) for f in VALIDATED]
                        for metric in VALIDATION_METRICS
                    },
                }
            ).to_markdown(index=False, floatfmt=".4f")
        ),
        **{name: MetadataValue.float(float(value)) for name, value in metrics.items()},
    }
    if "training_rows_left_out" in latest.extra:  # models registered before the count existed: no false 0
        metadata["training_rows_left_out"] = latest.extra["training_rows_left_out"]
    return metadata


def _validator(extra: Mapping) -> str:
    """Which model scored the validation window, never one trained on it."""
    if "validation_cutoff" in extra:
        return f"a fit on the rows up to {extra['validation_cutoff']}, before the validation window"
    if extra.get("validated_by_version") is not None:  # registered before validation came from calibration
        return f"v{extra['validated_by_version']}, the model in effect before this one, trained up to the window's start"
    return "a fit on the rows before the validation window"


def _model_figures(models: ModelsInEffect) -> dict:
    """The bulky part of the metadata: excluded series, the newest validation plot, search results."""
    latest, retrainings = models.latest, models.retrainings
    metadata = {}
    excluded = pd.DataFrame(latest.extra.get("excluded_series", []))
    if not excluded.empty:
        metadata["excluded_series"] = table_preview(excluded, rows=100)
    training_gaps = pd.DataFrame(latest.extra.get("training_gaps", []))
    if not training_gaps.empty:
        metadata["training_gaps"] = table_preview(training_gaps, rows=100)
    if retrainings:
        newest = retrainings[-1].result
        metadata["validation_plot"] = png_image(
            plot_forecasts_vs_actuals(newest.validation_forecasts), "forecasts against actuals"
        )
    if SEARCH_RESULTS_KEY in latest.extra:
        metadata["hyperparameter_search"] = table_preview(pd.DataFrame(latest.extra[SEARCH_RESULTS_KEY]))
    return metadata
