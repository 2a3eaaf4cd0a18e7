"""Rolling-origin backtests and their scores (`metrics`' rule) overall, per horizon and per series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sktime.performance_metrics.forecasting import (
    MeanAbsolutePercentageError,
    MeanSquaredPercentageError,
)

from energy_assets import schema
from energy_assets.forecasting import model as engine
from energy_assets.forecasting.baselines import seasonal_naive_panel
from energy_assets.forecasting.calibration import IntervalMethod, conformal_errors
from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
from energy_assets.forecasting.history_gaps import HistoryGaps
from energy_assets.forecasting.intervals import bound_columns, interval_metric_names, interval_scores, series_coverage_stats
from energy_assets.forecasting.metrics import HEADLINE, score_groups
from energy_assets.forecasting.panel import Panel

MODEL = "model"
# The definitions MAPE and RMSPE follow on the rows that have a relative error (tests hold `_scores` to them).
METRICS = {
    "mape": MeanAbsolutePercentageError(symmetric=False, multilevel="raw_values"),
    "rmspe": MeanSquaredPercentageError(symmetric=False, square_root=True, multilevel="raw_values"),
}


@dataclass(frozen=True)
class ForecastScores:
    """Point scores (`metrics.POINT_SCORES`) of one forecast column against the actuals, at three levels of detail."""

    overall: pd.DataFrame  # one row: wape, mape, rmspe, mae, mean_actual, n, zero_actuals
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
    """The point and interval scores of every row of the frame (the `overall` row of `score_forecasts`)."""
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
    """Point scores per group of `by` (one row without) by `metrics`' rule, MAPE and RMSPE as sktime's
    `METRICS` define them on the rows they score, in one groupby: sktime's metrics take a hierarchical
    frame and a call per metric, 40 ms a retraining."""
    keys = [frame[c].to_numpy() for c in by]
    table = score_groups(frame[actual].to_numpy(dtype="float64"), frame[forecast].to_numpy(dtype="float64"), keys)
    table.index.names = by or ["all"]
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


def interval_calibration(frame: pd.DataFrame) -> dict[str, float]:
    """How well the intervals of a frame of scored forecasts (`score_forecasts`' input, with bounds) cover,
    pooled and per series, per nominal coverage: `coverage_<pct>` and `winkler_<pct>` pooled, the largest
    miss of nominal at any horizon (`horizon_miss_<pct>`), the per-series statistics of
    `intervals.series_coverage_stats` (`series_median_<pct>`, ...) and the median and 90th-percentile series'
    relative Winkler score (`series_winkler_median_<pct>`, `series_winkler_p90_<pct>`); then `winkler`, `horizon_miss` and
    `series_miss`: the mean Winkler score, the largest horizon miss and the mean series miss over the levels."""
    scores = score_forecasts(frame)
    record = {}
    for coverage in schema.INTERVAL_COVERAGES:
        pct = round(coverage * 100)
        covered, winkler = interval_metric_names(coverage)
        record[covered] = float(scores.overall[covered].iloc[0])
        record[winkler] = float(scores.overall[winkler].iloc[0])
        record[f"horizon_miss_{pct}"] = float((scores.per_horizon[covered] - coverage).abs().max())
        stats = series_coverage_stats(scores.per_series[covered].to_numpy(), coverage)
        record.update({f"{name}_{pct}": value for name, value in stats.items()})
        series_winkler = scores.per_series[winkler].dropna()
        record[f"series_winkler_median_{pct}"] = float(series_winkler.median())
        record[f"series_winkler_p90_{pct}"] = float(series_winkler.quantile(0.9))
    for name in ("winkler", "horizon_miss", "series_miss"):
        values = [record[f"{name}_{round(c * 100)}"] for c in schema.INTERVAL_COVERAGES]
        record[name] = float(max(values) if name == "horizon_miss" else np.mean(values))
    return record


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
    fitted: list[engine.GlobalModel] | None = None,
) -> pd.DataFrame:
    """Rolling-origin forecasts of the model and seasonal naive baselines, with actuals attached.

    The model (the estimator's hyperparameters, `forecaster.get_params()`) is refitted at every retraining
    cutoff on rows at or before it only; each origin is forecast by the newest fit at or before it, from
    history at or before the origin. A fit that a model in `fitted` already made on the same points (a
    later cutoff's calibration fit is an earlier cutoff's model) is taken from it; each new model is
    added to `fitted`, so backtests sharing the list share their fits. Returns long rows: keys,
    issued_at, datetime_utc, horizon, model, forecast and actual; a (series, origin) whose forecast the
    `history_gaps` rule refuses has no rows, of the model or the baselines (all are scored on the same).
    """
    origins = pd.DatetimeIndex(origins).sort_values()
    panel = Panel.from_long(history)
    params = forecaster.get_params()
    cutoffs = retraining_cutoffs(origins, retrain_every)
    block = np.searchsorted(cutoffs, origins, side="right") - 1
    fitted = [] if fitted is None else fitted
    frames, blocks, refused = [], [], []
    for i, cutoff in enumerate(cutoffs):
        block_origins = origins[block == i]
        if block_origins.empty:
            continue
        model, _ = engine.fit(panel.until(int(panel.position(pd.Index([cutoff]))[0]) + 1), params, fitted)
        fitted.append(model)
        frame = engine.forecast_frame(model, panel, block_origins, horizon, schema.INTERVAL_COVERAGES, schema.DATETIME)
        frames.append(frame.assign(**{MODEL: "model"}))
        blocks.append((cutoff, block_origins))
        refused.append(HistoryGaps.of(panel, block_origins, model.forecast_reads(horizon)).refused)
    forecasts = _with_baselines(frames, history, panel, blocks, horizon, seasonal_periods, IntervalMethod.of(params))
    return without_refused(forecasts, pd.concat(refused, ignore_index=True))


def without_refused(forecasts: pd.DataFrame, refused: pd.DataFrame) -> pd.DataFrame:
    """`forecasts` without the rows of any forecaster issued for the (series, issued_at) pairs of `refused`."""
    on = [*schema.SERIES_KEY, schema.ISSUED_AT]
    if refused.empty:
        return forecasts
    pairs = pd.MultiIndex.from_frame(refused[on].astype({schema.ISSUED_AT: forecasts[schema.ISSUED_AT].dtype}))
    return forecasts[~pd.MultiIndex.from_frame(forecasts[on]).isin(pairs)].reset_index(drop=True)


def beside_baselines(
    model_forecasts: pd.DataFrame,
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon: int = 24,
    seasonal_periods: tuple[int, ...] = (24, 168),
    intervals_like: GlobalLGBMForecaster | None = None,
    panel: Panel | None = None,
) -> pd.DataFrame:
    """`backtest`'s rows for forecasts a model fitted on rows up to `cutoff` already issued.

    `model_forecasts` has `forecast_frame` rows (the target column holding the forecast). The baselines
    forecast from the same origins; with `intervals_like`, their intervals are calibrated as that
    forecaster's, as in `backtest` (else they have none). `panel`: the history as a panel, when at hand.
    ValueError when an origin is before `cutoff`: its forecasts would score the model on data it was
    trained on.
    """
    origins = pd.DatetimeIndex(model_forecasts[schema.ISSUED_AT].unique()).sort_values()
    if origins[0] < cutoff:
        raise ValueError(
            f"the model was fitted on rows up to {cutoff}, after the first origin {origins[0]}: "
            "its forecasts would score it on data it was trained on"
        )
    frame = model_forecasts.assign(**{MODEL: "model"})
    intervals = IntervalMethod() if intervals_like is None else IntervalMethod.of(intervals_like.get_params())
    panel = Panel.from_long(history) if panel is None else panel
    return _with_baselines([frame], history, panel, [(cutoff, origins)], horizon, seasonal_periods, intervals)


def _with_baselines(
    frames: list[pd.DataFrame],
    history: pd.DataFrame,
    panel: Panel,
    blocks: list[tuple[pd.Timestamp, pd.DatetimeIndex]],
    horizon: int,
    seasonal_periods: tuple[int, ...],
    intervals: IntervalMethod,
) -> pd.DataFrame:
    """Model forecasts beside seasonal naive ones from the same origins, with actuals attached.

    Each block is (the cutoff of the model that forecast it, its origins); a baseline's intervals are
    calibrated like the model's (`intervals`): on its own errors over the calibration hours up to that
    cutoff, in units of the same scale, with series factors where the model has them.
    """
    for sp in seasonal_periods:
        for cutoff, origins in blocks:
            frames.append(
                seasonal_naive_with_intervals(panel, cutoff, origins, horizon, sp, intervals).assign(
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
    intervals: IntervalMethod = IntervalMethod(),
    coverage: tuple[float, ...] = schema.INTERVAL_COVERAGES,
) -> pd.DataFrame:
    """Seasonal naive forecasts from `origins`, with split-conformal intervals built as the model's are
    (`intervals`): from its errors, per horizon and in log space, forecasting the calibration hours up to
    `cutoff`, in units of the model's interval scale and with its series factors (none for 0 calibration hours)."""
    positions = panel.position(origins)
    values = seasonal_naive_panel(panel, positions, horizon, sp)
    frame = panel.origin_frame(origins, values, schema.DATETIME)
    end = int(panel.position(pd.Index([cutoff]))[0])
    calibration = np.arange(max(sp - 1, end - intervals.calibration_hours), end)
    steps = np.arange(1, horizon + 1)
    scale = intervals.scale(panel.values, positions, log_space=True)[..., None]
    errors = None
    if intervals.calibration_hours > 0 and len(calibration):
        targets = calibration[:, None] + steps
        actual = np.where(targets <= end, panel.values[:, np.minimum(targets, end)], np.nan)
        forecast = seasonal_naive_panel(panel, calibration, horizon, sp)
        calibration_scale = intervals.scale(panel.values, calibration, log_space=True)[..., None]
        errors, series = conformal_errors(
            actual, forecast, calibration, True, calibration_scale, panel.keys, intervals.series_prior_hours
        )
        if series is not None:
            scale = scale * series.factors[:, None, None]
    return frame.assign(**bound_columns(errors, values, steps, coverage, schema.TARGET, scale))


def score_models(frame: pd.DataFrame) -> pd.DataFrame:
    """Overall scores of each model of a `backtest` frame (the `overall_scores` of its rows), best headline
    score (`metrics.HEADLINE`) first."""
    scored = _scorable(frame, schema.FORECAST, schema.TARGET)
    table = _scores(scored, [MODEL], schema.FORECAST, schema.TARGET).set_index(MODEL)
    return table.astype({"n": "float64", "zero_actuals": "float64"}).sort_values(HEADLINE)
