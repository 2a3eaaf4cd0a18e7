"""One global LightGBM model for every series, as an sktime forecaster: a thin adapter over the engine
(`model.fit` / `GlobalModel.forecast` on `Panel`s), which declares the hyperparameters once."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster

from energy_assets.forecasting import model as engine
from energy_assets.forecasting.calibration import ConformalErrors
from energy_assets.forecasting.panel import Panel, extend_grid
from energy_assets.schema import INTERVAL_COVERAGES

DEFAULT_LAGS = (1, 2, 3, 4, 5, 6, 12, 24)


class GlobalLGBMForecaster(BaseForecaster):
    """Global LightGBM over lags, rolling statistics, calendar and series keys; recursive horizon.

    Rows are scaled per series, so series from 1e2 to 1e6 kWh share one model: with
    `reference_lag` (default 168 h) the target and every lag or window mean become deviations from
    the same hours one season earlier, and the trees, starting from zero, learn corrections to that
    seasonal naive forecast; with `reference_lag=0` they are relative to the trailing
    `scale_window`-hour mean. Deviations are log differences when `log_target`, else relative.
    With `average_sizes` the booster predicts the mean of its first 1, 2, ..., n trees (tree i
    weighs (n - i) / n, set once after fitting, so prediction costs no more): the forecast then
    depends little on `n_estimators`. With `combine_without_level_lags` (and `level_lags`) the model
    is two such boosters, one with the level lags and one without, each forecasting recursively from
    its own steps; the forecast is the mean of theirs in model space (with `log_target`, a geometric
    mean of 1 + value), and calibration and shrinkage apply to that mean. The level lag helps where
    the reference week was unusual and yesterday was not, and misleads where yesterday was unusual:
    the two members err differently, and their mean beat both alone on the real extract's holiday
    folds and on the ordinary days after them. The defaults are what `search_hyperparameters` (400
    trees; then level and holiday lags and the combination; then calibration hours) chose on the real
    extract's daily folds (see `benchmarks/accuracy_real_data.py --check-defaults` and docs/forecaster.md).
    `predict_origins` forecasts many issue times of many series with one LightGBM call per step and member.

    Prediction intervals are split-conformal: `fit` first fits the same model on the points before
    the last `calibration_hours` (as many as the final model learns from, with `training_window`),
    forecasts every origin inside those hours (out of sample, as the final model will be used), and
    keeps per-horizon quantiles of the absolute log errors (`ConformalErrors`); the final model is
    then fitted on the newest points. Errors in log space are relative, so series of any size share
    one calibration; per horizon, because errors grow along the recursion. Split rather than
    sktime's `ConformalIntervals` (a refit per calibration origin) or mlforecast's cross-validation
    windows (one refit per window): one extra fit, none when a model that made it is at hand
    (`model.fit`'s `earlier`: a backfill's or the registry's model of `calibration_hours` before), and
    every calibration forecast is still made by a model that never saw its target. With `interval_scale_hours` each error is first divided by its
    series' mean absolute error of seasonal naive over the hours before its origin (normalized
    conformal prediction, on a recent MASE scale; with several `interval_scale_lags`, the geometric
    mean of each period's): on the real extract series differ 35-fold in their mean day-over-day
    change, and one shared width per horizon makes quiet series' intervals far too wide and volatile
    ones' too narrow; scaled, each interval is as many of its own series' recent errors wide. With
    `interval_series_prior_hours`, each series' width is further multiplied by how much larger its
    own calibration errors ran than all series' (Mondrian conformal prediction, shrunk towards the
    pooled width by the evidence behind it).

    Parameters
    ----------
    lags : tuple of int, default=(1, 2, 3, 4, 5, 6, 12, 24)
        Steps back whose (scaled) values are features.
    windows : tuple of int, default=(24,)
        Lengths of the trailing windows whose mean and standard deviation are features.
    holiday_lags : tuple of int, default=(24, 168, 192)
        Steps back whose Danish-holiday flag is a feature (was the reference day a normal day?).
    level_lags : tuple of int, default=(24,)
        Steps back whose value, scaled by the predicted point's own reference (not the lag's), is a
        feature: with `reference_lag` 168, 24 says how yesterday compares with last week's same hour.
    scale_window : int, default=168
        Hours of the trailing mean that scales each row when `reference_lag` is 0; 0 turns scaling off.
    reference_lag : int, default=168
        Steps back of the value each row is scaled by (a seasonal naive reference); 0 uses
        `scale_window` instead.
    log_target : bool, default=True
        Model log differences from the reference instead of relative ones.
    n_estimators : int, default=400
        Boosting rounds.
    learning_rate : float, default=0.05
        LightGBM shrinkage.
    num_leaves : int, default=15
        Leaves per tree.
    min_child_samples : int, default=20
        Minimum rows per leaf (and per categorical group).
    feature_fraction : float, default=0.9
        Share of features each tree samples.
    reg_lambda : float, default=0.0
        L2 regularisation of leaf values.
    objective : str, default="l2"
        LightGBM objective.
    holiday_weight : float, default=1.0
        Sample weight of target hours on Danish holidays, relative to other hours.
    average_sizes : bool, default=True
        Predict the mean of the first 1 ... n trees' forecasts instead of the n-tree forecast.
    n_jobs : int, default=1
        LightGBM threads; -1 takes the cores free at each fit and prediction (`threads.free_cores`).
        The model does not depend on it (deterministic LightGBM: identical forecasts). Threads on
        busy cores wait on each other: on the project's 2-core machine at load 11-13 a 2-thread fit
        took 72-76 s against 1.8-5 s on one thread, while on the idle machine 2 threads fit 1.5x and
        predict 1.8x faster than one.
    random_state : int, default=0
        Seed of LightGBM's sampling; equal seeds and data give equal models.
    calibration_hours : int, default=48
        Final time points held out to calibrate prediction intervals (one extra fit on the points
        before them); 0 fits once and leaves `predict_interval` unavailable. Horizon h is calibrated
        on the errors of the first `calibration_hours` - h + 1 origins: at 48, every horizon up to 24
        on at least 25 origins.
    calibration_horizon : int, default=24
        Furthest step calibrated; intervals further ahead take its errors.
    shrink_to_reference : bool, default=False
        Per horizon, shrink the forecast's deviation from its reference (`reference_lag` back) by the
        weight in [0, 1] that least squares gives on the calibration forecasts (a horizon-dependent
        blend with seasonal naive: the recursion's errors grow with the step). Needs calibration.
    training_window : int or None, default=None
        Newest time points the model learns from (the first `history_length` of them only as
        history); None: all. The calibration fit learns from as many points before the held-out
        ones, so it is trained on as much data as the model it calibrates, and it is the very fit
        made `calibration_hours` earlier on that data: a retraining every `calibration_hours` or a
        divisor of it takes that model's members (fits are deterministic; a digest of parameters and
        points says when they are the same) instead of fitting them again.
    combine_without_level_lags : bool, default=True
        Also fit the booster without `level_lags` (every other setting equal) and forecast the mean of
        both members in model space; without level lags there is one member either way.
    interval_scale_lags : tuple of int, default=(24,)
        Periods of the seasonal naive forecasts whose recent errors scale the intervals; with several,
        the scale is the geometric mean of each period's (a series whose day-over-day changes are large
        and whose week-over-week ones are small gets a width between the two). Empty: no scaling.
        With the week's lag, forecasts read `168 + interval_scale_hours` hours up to their origin
        (`forecast_reach`), and a series younger than that has unbounded intervals.
    interval_scale_hours : int, default=168
        Hours up to the origin over which each period's error is averaged (`calibration.seasonal_scale`,
        in the errors' own log or relative space): the unit of calibration errors and interval widths,
        per series and origin. Where a series has no point with one of the periods before, its
        intervals are unbounded. 0: no scaling, one width per horizon for every series. With a daily
        lag keep it whole weeks: over a shorter span the day-over-day changes depend on whether a
        weekend is inside it, and the scale would rise and fall with the origin's weekday.
    interval_series_prior_hours : int or None, default=48
        Per-series widths (Mondrian conformal prediction with shrinkage, `calibration.series_factors`):
        each series' intervals are multiplied by the ratio of its mean calibration error to all series'
        (in units of the scale), shrunk towards 1 in log space by n / (n + this), n being the hours of
        its calibration forecasts that were scored; a series the calibration did not score keeps the
        pooled width. None: one width per horizon and scale for every series.

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
    >>> forecaster = GlobalLGBMForecaster(
    ...     lags=(1, 2, 12), windows=(3,), holiday_lags=(), level_lags=(), reference_lag=12, n_estimators=20
    ... )
    >>> forecaster = forecaster.fit(load_airline())
    >>> y_pred = forecaster.predict(fh=[1, 2, 3])
    """

    _tags = {
        "authors": ["energy_assets"],
        "python_dependencies": ["lightgbm", "holidays"],
        "y_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "capability:exogenous": False,
        "capability:multivariate": False,
        "capability:missing_values": True,
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:unequal_length": True,
        "capability:random_state": True,
        "requires-fh-in-fit": False,
        "capability:update": True,
    }
    # The forecaster keeps the history it predicts from itself (`_history`), so sktime need not store
    # `_y`; this is also sktime 1.3's default, and setting it here is what silences 1.2's notice.
    _config = {"remember_data": False}

    def __init__(
        self,
        lags: tuple[int, ...] = DEFAULT_LAGS,
        windows: tuple[int, ...] = (24,),
        holiday_lags: tuple[int, ...] = (24, 168, 192),
        level_lags: tuple[int, ...] = (24,),
        scale_window: int = 168,
        reference_lag: int = 168,
        log_target: bool = True,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        feature_fraction: float = 0.9,
        reg_lambda: float = 0.0,
        objective: str = "l2",
        holiday_weight: float = 1.0,
        average_sizes: bool = True,
        n_jobs: int = 1,
        random_state: int = 0,
        calibration_hours: int = 48,
        calibration_horizon: int = 24,
        shrink_to_reference: bool = False,
        training_window: int | None = None,
        combine_without_level_lags: bool = True,
        interval_scale_lags: tuple[int, ...] = (24,),
        interval_scale_hours: int = 168,
        interval_series_prior_hours: int | None = 48,
    ):
        self.lags = lags
        self.windows = windows
        self.holiday_lags = holiday_lags
        self.level_lags = level_lags
        self.scale_window = scale_window
        self.reference_lag = reference_lag
        self.log_target = log_target
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.reg_lambda = reg_lambda
        self.objective = objective
        self.holiday_weight = holiday_weight
        self.average_sizes = average_sizes
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.calibration_hours = calibration_hours
        self.calibration_horizon = calibration_horizon
        self.shrink_to_reference = shrink_to_reference
        self.training_window = training_window
        self.combine_without_level_lags = combine_without_level_lags
        self.interval_scale_lags = interval_scale_lags
        self.interval_scale_hours = interval_scale_hours
        self.interval_series_prior_hours = interval_series_prior_hours
        super().__init__()

    def _fit(self, y: pd.DataFrame, X=None, fh=None) -> GlobalLGBMForecaster:
        """Fit the global model on every series of `y`."""
        self._history = y
        self.model_, self.calibration_forecasts_ = engine.fit(Panel.from_sktime(y), self.get_params())
        return self

    def _update(self, y: pd.DataFrame, X=None, update_params: bool = True) -> GlobalLGBMForecaster:
        """Append `y` to the history (new values win); refit on the whole history when `update_params`."""
        combined = pd.concat([self._history, y])
        self._history = combined[~combined.index.duplicated(keep="last")].sort_index()
        if update_params:
            self.model_, self.calibration_forecasts_ = engine.fit(Panel.from_sktime(self._history), self.get_params())
        return self

    def _predict(self, fh, X=None) -> pd.DataFrame:
        """Forecast every series from the cutoff, recursively up to the furthest step of `fh`."""
        return self._point_forecast(fh)[0]

    def _predict_quantiles(self, fh, X=None, alpha=None) -> pd.DataFrame:
        """Quantiles of the conformal forecast distribution: interval bounds of coverage |2 alpha - 1|."""
        point, steps, scale = self._point_forecast(fh)
        errors = self._conformal_errors()
        values = point.to_numpy()[:, 0]
        frame = pd.DataFrame({a: errors.quantile(values, a, steps, scale) for a in alpha}, index=point.index)
        frame.columns = self._get_columns(method="predict_quantiles", alpha=alpha)
        return frame

    def _predict_interval(self, fh, X=None, coverage=None) -> pd.DataFrame:
        """Split-conformal intervals of each `coverage` around the point forecast."""
        point, steps, scale = self._point_forecast(fh)
        errors = self._conformal_errors()
        values = point.to_numpy()[:, 0]
        bounds = [bound for c in coverage for bound in errors.bounds(values, c, steps, scale)]
        frame = pd.DataFrame(np.column_stack(bounds), index=point.index)
        frame.columns = self._get_columns(method="predict_interval", coverage=coverage)
        return frame

    def _conformal_errors(self) -> ConformalErrors:
        if self.model_.calibration is None:
            raise ValueError(
                "this forecaster has no calibrated intervals: fit it with calibration_hours > 0 on "
                f"more than {self.history_length + self.calibration_hours} time points"
            )
        return self.model_.calibration.errors

    def _point_forecast(self, fh) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Point forecasts for `fh`, each row's step ahead of the cutoff, and its series' interval scale."""
        panel = Panel.from_sktime(self._history)
        steps = np.asarray(fh.to_relative(self.cutoff), dtype="int64")
        if steps.min() < 1:
            raise ValueError(f"only out-of-sample steps (>= 1) can be forecast, got {steps.tolist()}")
        last = np.array([len(panel.grid) - 1])
        values = self.model_.forecast(panel, last, int(steps.max()))[:, 0, steps - 1]
        scale = self.model_.scale(panel, last)  # (series, 1)
        times = extend_grid(panel.grid, int(steps.max()))[len(panel.grid) - 1 + steps]
        observed = self._history.index.get_level_values(-1)
        if isinstance(observed, pd.DatetimeIndex):
            times = times.as_unit(observed.unit)  # y's own resolution, so forecasts align with actuals
        if not isinstance(self._history.index, pd.MultiIndex):
            return pd.DataFrame({panel.name: values[0]}, index=times), steps, scale[0]
        keys = panel.keys.repeat(len(times))
        key_arrays = [keys.get_level_values(i) for i in range(keys.nlevels)]
        index = pd.MultiIndex.from_arrays(
            [*key_arrays, times[np.tile(np.arange(len(times)), len(panel.keys))]], names=self._history.index.names
        )
        rows = pd.DataFrame({panel.name: values.ravel()}, index=index)
        return rows, np.tile(steps, len(panel.keys)), np.repeat(scale[:, 0], len(steps))

    def predict_origins(
        self,
        y_history: pd.DataFrame,
        origins: pd.Index | list,
        horizon: int = 24,
        coverage: tuple[float, ...] = INTERVAL_COVERAGES,
    ) -> pd.DataFrame:
        """Forecasts issued at each of `origins` for the next `horizon` steps, every series of `y_history`.

        `y_history` is sktime data as in fit; an origin's forecast uses only history at or before it.
        Returns one row per (series, origin, step): key columns, issued_at, time, horizon, target, and
        the lower and upper bound of each `coverage` interval (`schema.interval_column` names), equal to
        what `predict_interval` gives; NaN where it gives none (no calibration) or an infinite one (too
        few calibration errors for the level), so stored tables hold no infinities.
        """
        self.check_is_fitted()
        time_name = y_history.index.names[-1] or "time"
        return engine.forecast_frame(self.model_, Panel.from_sktime(y_history), pd.Index(origins), horizon, coverage, time_name)

    @property
    def history_length(self) -> int:
        """Time points before the predicted one that a feature row reads."""
        return engine.history_length(self.get_params())

    @property
    def forecast_reach(self) -> int:
        """Time points up to an origin that its forecasts and their intervals read: a feature row's
        history, or the interval scale's if longer."""
        return engine.forecast_reach(self.get_params())

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict]:
        """Two tiny configurations for sktime's conformance checks."""
        return [
            {
                "lags": (1, 2, 3),
                "windows": (3,),
                "holiday_lags": (),
                "level_lags": (),
                "scale_window": 3,
                "reference_lag": 0,
                "n_estimators": 5,
                "num_leaves": 4,
                "min_child_samples": 2,
                "n_jobs": 1,
                "calibration_hours": 6,
                "calibration_horizon": 3,
                "interval_scale_hours": 0,
            },
            {
                "lags": (1, 2),
                "windows": (),
                "holiday_lags": (1,),
                "level_lags": (1,),
                "combine_without_level_lags": True,
                "scale_window": 0,
                "reference_lag": 2,
                "log_target": False,
                "n_estimators": 3,
                "num_leaves": 3,
                "min_child_samples": 2,
                "n_jobs": 1,
                "calibration_hours": 4,
                "calibration_horizon": 2,
                "interval_scale_lags": (1, 2),
                "interval_scale_hours": 3,
                "interval_series_prior_hours": 2,
            },
        ]

