"""Forecasts issued at many hours at once, each by the model in effect at its hour."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from energy_assets.forecasting.history_gaps import MAX_FILLED_HOURS, HistoryGaps, hour_ranges, partition_ranges
from energy_assets.forecasting.model import KeptForecasts
from energy_assets.forecasting.retraining import (
    CALIBRATED_BY_KEY,
    RegisteredModel,
    model_format,
    model_in_effect,
    training_sha256,
)
from energy_assets.forecasting.saved_model import load_kept_forecasts
from energy_assets.forecasting.training import (
    MODEL_FORMAT,
    ForecasterConfig,
    InsufficientHistoryError,
    forecasts_and_gaps,
    load_forecaster,
    required_history_hours,
)
from energy_assets.schema import (
    DATETIME,
    FORECAST_COLUMNS,
    FORECAST_DTYPES,
    FORECAST_HORIZON_HOURS,
    HORIZON,
    ISSUED_AT,
    MODEL_COLUMNS,
    MODEL_NAME,
    MODEL_TRAINING_SHA256,
    MODEL_VERSION,
    SERIES_KEY,
)
from energy_assets.timeline import HOUR


class CannotForecast(ValueError):
    """Some issue hours have no model in effect, no history, or no series the `history_gaps` rule lets forecast."""


def models_for(origins: pd.DatetimeIndex, registered: list[RegisteredModel]) -> dict[pd.Timestamp, RegisteredModel]:
    """The model in effect at every origin; `CannotForecast` naming the first origins that have none."""
    models = {origin: model_in_effect(registered, origin) for origin in origins}
    unserved = [origin.isoformat() for origin, model in models.items() if model is None]
    if unserved:
        raise CannotForecast(
            f"no registered {MODEL_NAME} has a data cutoff at or before {unserved[:3]}...; "
            "materialize forecasting_model for these hours first"
        )
    old = sorted({model.version for model in models.values() if model_format(model) != MODEL_FORMAT})
    if old:
        raise CannotForecast(
            f"the {MODEL_NAME} versions {old} in effect at some of these hours were saved in an older format, which "
            f"this version does not read: retrain them (materialize forecasting_model for these hours)"
        )
    return models


def history_window(models: Mapping[pd.Timestamp, RegisteredModel]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the feature rows that forecasts from every origin of `models` need."""
    lookback = max(required_history_hours(ForecasterConfig.from_dict(model.config)) for model in models.values())
    return min(models) - pd.Timedelta(hours=lookback), max(models) + HOUR


def issue_forecasts(
    models: Mapping[pd.Timestamp, RegisteredModel],
    history: pd.DataFrame,
    download: Callable[[RegisteredModel], Path],
    registered: list[RegisteredModel] = (),
) -> tuple[pd.DataFrame, HistoryGaps]:
    """Forecasts of every origin in `models` for the next 24 hours, one vectorized prediction per model version,
    and the gaps in the history they read (`history_gaps`: the series refused or flagged at each origin).

    A version whose members were a later `registered` version's calibration fit already forecast some of
    these origins there (a backfill trains before it issues): those forecasts, kept with the later version,
    are taken where they were made from the same history. `CannotForecast` naming the feature hours to
    materialize when an origin has no history to forecast from, or every series is refused there."""
    by_version: dict[int, tuple[RegisteredModel, list[pd.Timestamp]]] = {}
    for origin, model in models.items():
        by_version.setdefault(model.version, (model, []))[1].append(origin)
    parts, gaps = [], []
    for version, (model, origins) in by_version.items():
        forecaster = load_forecaster(download(model))
        kept = _kept_forecasts(model, registered, download)
        try:
            part, part_gaps = forecasts_and_gaps(forecaster, history, origins, horizon=FORECAST_HORIZON_HOURS, kept=kept)
        except InsufficientHistoryError as short:
            raise CannotForecast(f"{short}: {_materialize(short.missing_hours)}") from short
        gaps.append(part_gaps)
        # The version alone is ambiguous once a registry reuses numbers (a reset local one, a deleted Hopsworks version).
        parts.append(part.assign(**{MODEL_VERSION: version, MODEL_TRAINING_SHA256: training_sha256(model)}))
    forecasts = pd.concat(parts, ignore_index=True).sort_values([ISSUED_AT, *SERIES_KEY, HORIZON])
    forecasts = forecasts[FORECAST_COLUMNS].astype({column: FORECAST_DTYPES[column] for column in MODEL_COLUMNS})
    gaps = HistoryGaps.concat(gaps)
    missing = pd.DatetimeIndex(list(models)).difference(pd.DatetimeIndex(forecasts[ISSUED_AT].unique()))
    if len(missing):
        raise CannotForecast(_all_refused(missing, gaps, history))
    return forecasts.reset_index(drop=True), gaps


def _all_refused(origins: pd.DatetimeIndex, gaps: HistoryGaps, history: pd.DataFrame) -> str:
    """Why no series could be forecast from `origins`, and the feature hours no series has among those read."""
    refused_series = gaps.refused[gaps.refused[ISSUED_AT].isin(origins)][SERIES_KEY].drop_duplicates()
    read = pd.DatetimeIndex(gaps.hours.merge(refused_series, on=SERIES_KEY)[DATETIME].unique())
    nowhere = read.difference(pd.DatetimeIndex(history[DATETIME].unique()))
    message = (
        f"no series can be forecast from {hour_ranges(origins)}: each lacks more than {MAX_FILLED_HOURS} "
        "of the hours its forecast reads, or the oldest of them"
    )
    return f"{message}; {_materialize(nowhere)}" if len(nowhere) else message


def _materialize(hours: pd.DatetimeIndex | None) -> str:
    """What to do about feature hours no series has: materialize their partitions."""
    if hours is None or not len(hours):
        return "materialize energy_consumption_features for the hours these forecasts read first"
    return (
        f"energy_consumption_features has no rows for {hour_ranges(hours)}; "
        f"materialize energy_consumption_features for {partition_ranges(hours)} first"
    )


def _kept_forecasts(
    model: RegisteredModel, registered: list[RegisteredModel], download: Callable[[RegisteredModel], Path]
) -> KeptForecasts | None:
    """The forecasts `model`'s members made as the calibration fit of a later version, if one kept them."""
    later = [other for other in registered if other.extra.get(CALIBRATED_BY_KEY) == model.version]
    return load_kept_forecasts(download(later[0])) if later else None
