"""Rolling-origin backtests and MAPE / RMSPE scores overall, per horizon and per series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sktime.performance_metrics.forecasting import (
    MeanAbsolutePercentageError,
    MeanSquaredPercentageError,
)

from energy_assets import schema
from energy_assets.forecasting.baselines import seasonal_naive_panel
from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
from energy_assets.forecasting.intervals import ConformalErrors, bound_columns, interval_scores
from energy_assets.forecasting.panel import Panel, to_sktime

MODEL = "model"
METRICS = {
    "mape": MeanAbsolutePercentageError(symmetric=False, multilevel="raw_values"),
    "rmspe": MeanSquaredPercentageError(symmetric=False, square_root=True, multilevel="raw_values"),
}


@dataclass(frozen=True)
class ForecastScores:
    """MAPE and RMSPE of one forecast column against the actuals, at three levels of detail."""

    overall: pd.DataFrame  # one row: mape, rmspe, n
    per_horizon: pd.DataFrame  # index horizon
    per_series: pd.DataFrame  # index (area, consumer_type)


def score_forecasts(
    frame: pd.DataFrame, forecast: str = schema.FORECAST, actual: str = schema.TARGET
) -> ForecastScores:
    """Scores of a long frame with key columns, horizon, an actual and a forecast column."""
    scored = _scorable(frame, forecast, actual)
    return ForecastScores(
        overall=_scores(scored, [], forecast, actual),
        per_horizon=_scores(scored, [schema.HORIZON], forecast, actual),
        per_series=_scores(scored, schema.SERIES_KEY, forecast, actual),
    )


def overall_scores(
    frame: pd.DataFrame, forecast: str = schema.FORECAST, actual: str = schema.TARGET
) -> pd.Series:
    """mape, rmspe and n over every row of the frame (the `overall` row of `score_forecasts`)."""
    return _scores(_scorable(frame, forecast, actual), [], forecast, actual).iloc[0]


def _scorable(frame: pd.DataFrame, forecast: str, actual: str) -> pd.DataFrame:
    """Rows with both values; ValueError naming missing columns, or when no row is left."""
    missing = [c for c in [*schema.SERIES_KEY, schema.HORIZON, forecast, actual] if c not in frame]
    if missing:
        raise ValueError(f"forecast frame lacks columns {missing}")
    scored = frame.dropna(subset=[forecast, actual])
    if scored.empty:
        raise ValueError("no row has both an actual and a forecast value to score")
    return scored


def _scores(frame: pd.DataFrame, by: list[str], forecast: str, actual: str) -> pd.DataFrame:
    """sktime's metrics per group: groups become instances of a hierarchical frame."""
    groups = [frame[c].to_numpy() for c in by] or [np.zeros(len(frame), dtype="int64")]
    order = np.lexsort(groups[::-1])
    groups = [g[order] for g in groups]
    row = pd.Series(groups[0]).groupby(groups).cumcount().to_numpy()
    index = pd.MultiIndex.from_arrays([*groups, row], names=[*(by or ["all"]), "row"])
    y_true = pd.DataFrame({"y": frame[actual].to_numpy()[order]}, index=index)
    y_pred = pd.DataFrame({"y": frame[forecast].to_numpy()[order]}, index=index)
    counts = y_true.groupby(level=list(range(index.nlevels - 1))).size()
    # sktime returns one value per instance, in the sorted instance order of `counts`.
    table = pd.DataFrame(
        {name: metric(y_true, y_pred).iloc[:, 0].to_numpy() for name, metric in METRICS.items()},
        index=counts.index,
    )
    table["n"] = counts
    bounds = [c for c in schema.INTERVAL_COVERAGES if schema.interval_column("lower", c) in frame]
    if bounds:
        # Both tables list the groups in sorted key order.
        table = table.join(_interval_table(frame, by, actual, bounds).set_axis(table.index))
    return table.reset_index(drop=not by)


def _interval_table(frame: pd.DataFrame, by: list[str], actual: str, coverages: list[float]) -> pd.DataFrame:
    """coverage_<pct> and winkler_<pct> of each interval level, per group of `by` (one row without)."""
    groups = frame.groupby(by, sort=True) if by else [(0, frame)]
    table = []
    for _, group in groups:
        scores = {}
        for c in coverages:
            lower, upper = (group[schema.interval_column(side, c)].to_numpy() for side in ("lower", "upper"))
            scores.update(interval_scores(group[actual].to_numpy(), lower, upper, c))
        table.append(scores)
    return pd.DataFrame(table)


def with_actuals(forecasts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Forecast rows whose target hour has an actual in `history`, with that actual attached."""
    actuals = history[[*schema.SERIES_KEY, schema.DATETIME, schema.TARGET]]
    return forecasts.merge(actuals, on=[*schema.SERIES_KEY, schema.DATETIME], how="inner")


def retraining_cutoffs(origins: pd.DatetimeIndex, every_hours: int) -> pd.DatetimeIndex:
    """When a backtest retrains: at the first origin, then every `every_hours` hours."""
    return pd.date_range(origins[0], origins[-1], freq=pd.Timedelta(hours=every_hours))


def backtest(
    history: pd.DataFrame,
    origins: pd.DatetimeIndex,
    forecaster: GlobalLGBMForecaster,
    retrain_every: int = 24,
    horizon: int = 24,
    seasonal_periods: tuple[int, ...] = (24, 168),
) -> pd.DataFrame:
    """Rolling-origin forecasts of the model and seasonal naive baselines, with actuals attached.

    The model is refitted at every retraining cutoff on rows at or before it only; each origin is
    forecast by the newest fit at or before it, from history at or before the origin.
    Returns long rows: keys, issued_at, datetime_utc, horizon, model, forecast and actual.
    """
    origins = pd.DatetimeIndex(origins).sort_values()
    y = to_sktime(history)
    times = y.index.get_level_values(-1)
    cutoffs = retraining_cutoffs(origins, retrain_every)
    block = np.searchsorted(cutoffs, origins, side="right") - 1
    frames, blocks = [], []
    for i, cutoff in enumerate(cutoffs):
        block_origins = origins[block == i]
        if block_origins.empty:
            continue
        fitted = forecaster.clone().fit(y[times <= cutoff])
        frames.append(_model_forecasts(fitted, y, block_origins, horizon))
        blocks.append((cutoff, block_origins))
    return _with_baselines(frames, history, y, blocks, horizon, seasonal_periods, forecaster.calibration_hours)


def forecast_fitted(
    history: pd.DataFrame,
    origins: pd.DatetimeIndex,
    fitted: GlobalLGBMForecaster,
    horizon: int = 24,
    seasonal_periods: tuple[int, ...] = (24, 168),
) -> pd.DataFrame:
    """`backtest`'s rows for a model already fitted on data up to the first origin at the latest.

    Every forecast is out of sample: ValueError when `fitted` was trained on a row after the first origin.
    """
    origins = pd.DatetimeIndex(origins).sort_values()
    trained_until = fitted.cutoff[0]
    if trained_until > origins[0]:
        raise ValueError(
            f"the model was fitted on rows up to {trained_until}, after the first origin {origins[0]}: "
            "its forecasts would score it on data it was trained on"
        )
    y = to_sktime(history)
    return _with_baselines(
        [_model_forecasts(fitted, y, origins, horizon)],
        history,
        y,
        [(trained_until, origins)],
        horizon,
        seasonal_periods,
        fitted.calibration_hours,
    )


def _model_forecasts(fitted: GlobalLGBMForecaster, y: pd.DataFrame, origins: pd.DatetimeIndex, horizon: int) -> pd.DataFrame:
    """The fitted model's forecasts from each origin, from history at or before it."""
    times = y.index.get_level_values(-1)
    return fitted.predict_origins(y[times <= origins[-1]], origins, horizon).assign(**{MODEL: "model"})


def _with_baselines(
    frames: list[pd.DataFrame],
    history: pd.DataFrame,
    y: pd.DataFrame,
    blocks: list[tuple[pd.Timestamp, pd.DatetimeIndex]],
    horizon: int,
    seasonal_periods: tuple[int, ...],
    calibration_hours: int,
) -> pd.DataFrame:
    """Model forecasts beside seasonal naive ones from the same origins, with actuals attached.

    Each block is (the cutoff of the model that forecast it, its origins); a baseline's intervals are
    calibrated like the model's: on its own errors over the `calibration_hours` up to that cutoff.
    """
    panel = Panel.from_sktime(y)
    for sp in seasonal_periods:
        for cutoff, origins in blocks:
            frames.append(
                seasonal_naive_with_intervals(panel, cutoff, origins, horizon, sp, calibration_hours).assign(
                    **{MODEL: f"snaive{sp}"}
                )
            )
    forecasts = pd.concat(frames, ignore_index=True).rename(columns={schema.TARGET: schema.FORECAST})
    return with_actuals(forecasts, history)


def seasonal_naive_with_intervals(
    panel: Panel,
    cutoff: pd.Timestamp,
    origins: pd.DatetimeIndex,
    horizon: int,
    sp: int,
    calibration_hours: int,
    coverage: tuple[float, ...] = schema.INTERVAL_COVERAGES,
) -> pd.DataFrame:
    """Seasonal naive forecasts from `origins`, with split-conformal intervals built as the model's are:
    from its errors, per horizon and in log space, forecasting the `calibration_hours` up to `cutoff`."""
    values = seasonal_naive_panel(panel, panel.position(origins), horizon, sp)
    frame = panel.origin_frame(origins, values, schema.DATETIME)
    end = int(panel.position(pd.Index([cutoff]))[0])
    calibration = np.arange(max(sp - 1, end - calibration_hours), end)
    steps = np.arange(1, horizon + 1)
    errors = None
    if calibration_hours > 0 and len(calibration):
        targets = calibration[:, None] + steps
        actual = np.where(targets <= end, panel.values[:, np.minimum(targets, end)], np.nan)
        errors = ConformalErrors.from_forecasts(actual, seasonal_naive_panel(panel, calibration, horizon, sp), log_space=True)
    return frame.assign(**bound_columns(errors, values, steps, coverage, schema.TARGET))


def score_models(frame: pd.DataFrame) -> pd.DataFrame:
    """Overall MAPE and RMSPE of each model of a `backtest` frame, best MAPE first."""
    table = {model: overall_scores(rows) for model, rows in frame.groupby(MODEL)}
    return pd.DataFrame(table).T.rename_axis(MODEL).sort_values("mape")
