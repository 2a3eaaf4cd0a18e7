"""One global LightGBM model for every series, as an sktime forecaster, predicting recursively."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import replace
from typing import NamedTuple

import lightgbm as lgb
import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster

from energy_assets.forecasting.features import (
    FeatureLayout,
    RunningSums,
    TrailingWindows,
    calendar,
    feature_rows,
)
from energy_assets.forecasting.intervals import ConformalErrors, bound_columns, seasonal_scale
from energy_assets.forecasting.panel import InsufficientHistoryError, Panel, extend_grid
from energy_assets.forecasting.threads import free_cores
from energy_assets.schema import INTERVAL_COVERAGES

DEFAULT_LAGS = (1, 2, 3, 4, 5, 6, 12, 24)
# (series, origin) rows predicted together: with the default 192-hour history and a 24-hour
# horizon a batch holds 216 MiB of values (2**17 rows x 216 x 8 bytes) plus one step's features.
PREDICTION_BATCH_ROWS = 2**17


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
    extract's daily folds (see `benchmarks/accuracy_real_data.py --check-defaults` and the README).
    `predict_origins` forecasts many issue times of many series with one LightGBM call per step and member.

    Prediction intervals are split-conformal: `fit` first fits the same model on the points before
    the last `calibration_hours` (as many as the final model learns from, with `training_window`),
    forecasts every origin inside those hours (out of sample, as the final model will be used), and
    keeps per-horizon quantiles of the absolute log errors (`ConformalErrors`); the final model is
    then fitted on the newest points. Errors in log space are relative, so series of any size share
    one calibration; per horizon, because errors grow along the recursion. Split rather than
    sktime's `ConformalIntervals` (a refit per calibration origin) or mlforecast's cross-validation
    windows (one refit per window): one extra fit, none when that fit was made before in the same
    process (a backfill's earlier retraining), and every calibration forecast is still made by a
    model that never saw its target. With `interval_scale_hours` each error is first divided by its
    series' mean absolute error of seasonal naive `interval_scale_lag` over the hours before its
    origin (normalized conformal prediction, on a recent MASE scale): on the real extract series
    differ 35-fold in their mean day-over-day change, and one shared width per horizon makes quiet
    series' intervals far too wide and volatile ones' too narrow; scaled, each interval is as many of
    its own series' recent errors wide.

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
        made `calibration_hours` earlier on that data: a backfill retraining every
        `calibration_hours` or a divisor of it reuses that booster (fits are deterministic and
        the last few are kept by parameters and data) instead of fitting it again.
    combine_without_level_lags : bool, default=True
        Also fit the booster without `level_lags` (every other setting equal) and forecast the mean of
        both members in model space; without level lags there is one member either way.
    interval_scale_lag : int, default=24
        Period of the seasonal naive forecast whose recent errors scale the intervals.
    interval_scale_hours : int, default=168
        Hours up to the origin over which that error is averaged (`intervals.seasonal_scale`, in the
        errors' own log or relative space): the unit of calibration errors and interval widths, per
        series and origin. Where a series has no point with one `interval_scale_lag` before, its
        intervals are unbounded. 0: no scaling, one width per horizon for every series. With a daily
        lag keep it whole weeks: over a shorter span the day-over-day changes depend on whether a
        weekend is inside it, and the scale would rise and fall with the origin's weekday.

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
        interval_scale_lag: int = 24,
        interval_scale_hours: int = 168,
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
        self.interval_scale_lag = interval_scale_lag
        self.interval_scale_hours = interval_scale_hours
        super().__init__()
        # sktime's conformance checks expect these attributes even when it does not fill them.
        self._y = None
        self._X = None

    def _fit(self, y: pd.DataFrame, X=None, fh=None) -> GlobalLGBMForecaster:
        """Fit the global model on every series of `y`."""
        self._history = y
        self.fit_panel(Panel.from_sktime(y))
        return self

    def _update(self, y: pd.DataFrame, X=None, update_params: bool = True) -> GlobalLGBMForecaster:
        """Append `y` to the history (new values win); refit on the whole history when `update_params`."""
        combined = pd.concat([self._history, y])
        self._history = combined[~combined.index.duplicated(keep="last")].sort_index()
        if update_params:
            self.fit_panel(Panel.from_sktime(self._history))
        return self

    def _predict(self, fh, X=None) -> pd.DataFrame:
        """Forecast every series from the cutoff, recursively up to the furthest step of `fh`."""
        return self._point_forecast(fh)[0]

    def _predict_quantiles(self, fh, X=None, alpha=None) -> pd.DataFrame:
        """Quantiles of the conformal forecast distribution: interval bounds of coverage |2 alpha - 1|."""
        point, steps, scale = self._point_forecast(fh)
        errors = self._conformal_errors()
        values = point.to_numpy()[:, 0]
        columns = {a: errors.quantile(values, a, steps, scale) for a in alpha}
        frame = pd.DataFrame(columns, index=point.index)
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
        if getattr(self, "conformal_errors_", None) is None:
            raise ValueError(
                "this forecaster has no calibrated intervals: fit it with calibration_hours > 0 on "
                f"more than {self.layout_.history + self.calibration_hours} time points"
            )
        return self.conformal_errors_

    def _point_forecast(self, fh) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Point forecasts for `fh`, each row's step ahead of the cutoff, and its series' interval scale."""
        panel = Panel.from_sktime(self._history)
        steps = np.asarray(fh.to_relative(self.cutoff), dtype="int64")
        if steps.min() < 1:
            raise ValueError(f"only out-of-sample steps (>= 1) can be forecast, got {steps.tolist()}")
        last = np.array([len(panel.grid) - 1])
        values = self.predict_panel(panel, last, int(steps.max()))[:, 0, steps - 1]
        scale = self._interval_scale(panel, last)  # (series, 1)
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

    def _interval_scale(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        """(series, origins) units of the calibration errors and interval widths (`interval_scale_hours`)."""
        lag, hours = self.interval_scale
        if not hours:
            return np.ones((len(panel.keys), len(origins)))
        return seasonal_scale(panel.values, origins, lag, hours, log_space=self.log_target)

    @property
    def interval_scale(self) -> tuple[int, int]:
        """(interval_scale_lag, interval_scale_hours) as this model calibrated; 0 hours: unscaled."""
        # Models saved before scaling existed have neither attribute.
        return getattr(self, "interval_scale_lag", 0), getattr(self, "interval_scale_hours", 0)

    def fit_panel(self, panel: Panel) -> GlobalLGBMForecaster:
        """Fit on a panel (one training row per series and time point with a full history), calibrated."""
        self.reference_weights_, self.conformal_errors_, self._calibration = self._calibrate(panel)
        self._fit_booster(self._window(panel, len(panel.grid)))
        return self

    def _window(self, panel: Panel, end: int) -> Panel:
        """The newest `training_window` of the panel's points before position `end` (all without a window)."""
        start = 0 if self.training_window is None else max(0, end - self.training_window)
        return Panel(keys=panel.keys, grid=panel.grid[start:end], values=panel.values[:, start:end], name=panel.name)

    def calibration_forecasts(self) -> pd.DataFrame | None:
        """The calibration fit's forecasts from every origin of the held-out points, None without calibration.

        Rows as `predict_origins` gives them, with the bounds this calibration gives them. Each comes from a
        model fitted only on the points before the held-out ones (with `shrink_to_reference`, weighted by
        the weights fitted on these same forecasts). They serve the fit that made them, e.g. as its
        validation; a saved and loaded forecaster no longer has them.
        """
        self.check_is_fitted()
        if getattr(self, "_calibration", None) is None:
            return None
        panel, origins, forecast, scale = self._calibration
        time_name = self._history.index.names[-1] or "time"
        steps = np.arange(1, forecast.shape[-1] + 1)
        bounds = bound_columns(self.conformal_errors_, forecast, steps, INTERVAL_COVERAGES, panel.name, scale)
        return panel.origin_frame(panel.grid[origins], forecast, time_name).assign(**bounds)

    def __getstate__(self) -> dict:
        # The calibration forecasts are as large as the training data and only serve the fit that made them.
        return {name: value for name, value in self.__dict__.items() if name != "_calibration"}

    def _calibrate(
        self, panel: Panel
    ) -> tuple[np.ndarray | None, ConformalErrors | None, tuple[Panel, np.ndarray, np.ndarray, np.ndarray] | None]:
        """Per-horizon weights on the model against its reference, the errors of the weighted forecasts, and
        the forecasts (panel, origin positions, (series, origins, horizon) values, (series, origins, 1)
        interval scales), from a fit without the last `calibration_hours` points forecasting from each of them.

        Nones when there is nothing to calibrate on: `calibration_hours` is 0, or the points before the
        held-out ones are too few to fit.
        """
        layout = self._layout(panel.key_names)
        held_out = self.calibration_hours
        first = len(panel.grid) - held_out  # first held-out position
        if held_out <= 0 or first <= layout.history:
            return None, None, None
        calibrating = self.clone().set_params(calibration_hours=0)._fit_booster(self._window(panel, first))
        horizon = min(self.calibration_horizon, held_out)
        origins = np.arange(first - 1, len(panel.grid) - 1)
        forecast = calibrating.predict_panel(panel, origins, horizon, last_target=len(panel.grid) - 1)
        targets = origins[:, None] + np.arange(1, horizon + 1)
        padded = np.concatenate([panel.values, np.full((len(panel.keys), horizon), np.nan)], axis=1)
        actual = padded[:, targets]  # NaN past the panel's end: those origins score shorter horizons
        weights = None
        if self.shrink_to_reference and layout.reference_lag:
            # Only steps within one season have an observed reference (the rest keep weight 1).
            within = min(horizon, layout.reference_lag)
            reference = layout.transform(panel.gaps_filled())[:, targets[:, :within] - layout.reference_lag]
            deviation = layout.transform(forecast[..., :within]) - reference
            weights = _least_squares_weights(layout.transform(actual[..., :within]) - reference, deviation)
            forecast[..., :within] = layout.inverse(reference + weights * deviation)
        scale = self._interval_scale(panel, origins)[..., None]
        errors = ConformalErrors.from_forecasts(actual, forecast, log_space=self.log_target, scale=scale)
        return weights, errors, (panel, origins, forecast, scale)

    def _fit_booster(self, panel: Panel) -> GlobalLGBMForecaster:
        """Fit one booster per member (`_member_layouts`) on the panel's points."""
        self.layout_ = self._layout(panel.key_names)
        self.categories_ = [panel.keys.unique(level=i) for i in range(panel.keys.nlevels)]
        history, width = self.layout_.history, panel.values.shape[1]
        if self.training_window is not None and self.training_window <= history:
            raise ValueError(
                f"training_window {self.training_window} leaves no target: "
                f"a training row reads {history} points before it"
            )
        if width <= history:
            raise InsufficientHistoryError(history + 1, width, "fitting")
        self.members_ = [(layout, self._member_booster(layout, panel)) for layout in self._member_layouts(panel.key_names)]
        self.booster_ = self.members_[0][1]
        return self

    def _member_booster(self, layout: FeatureLayout, panel: Panel) -> lgb.Booster:
        """The booster of one member's features on the panel: a kept one, or a new fit."""
        key = _RECENT_BOOSTERS.key({**self._booster_params(), "level_lags": layout.level_lags}, panel)
        if (kept := _RECENT_BOOSTERS.get(key)) is not None:
            return kept
        # Features read gap-filled history; only observed targets are learned.
        history, width = layout.history, panel.values.shape[1]
        z = layout.transform(panel.gaps_filled())
        positions = np.arange(history, width)
        grid_calendar = calendar(_datetimes(panel.grid), width)
        X, level = feature_rows(
            layout,
            z,
            RunningSums(z),
            positions,
            grid_calendar,
            np.zeros(len(panel.keys), dtype="int64"),
            self._key_codes(panel.keys),
        )
        target = layout.scale(layout.transform(panel.values)[:, positions], level).ravel()
        special = grid_calendar[positions, 2] > 0
        for lag in layout.holiday_lags:
            special |= grid_calendar[positions - lag, 2] > 0
        weight = np.tile(np.where(special, self.holiday_weight, 1.0), len(panel.keys))
        keep = np.isfinite(target) & (weight > 0)
        if not keep.any():
            raise ValueError("no training row has an observed target and history")
        dataset = lgb.Dataset(
            X[keep],
            target[keep],
            weight=weight[keep],
            feature_name=layout.names,
            categorical_feature=layout.categorical,
            free_raw_data=True,
        )
        booster = lgb.train(self._lgb_params(), dataset, num_boost_round=self.n_estimators)
        if self.average_sizes:
            _average_sizes(booster)
        _RECENT_BOOSTERS.put(key, booster)
        return booster

    def _member_layouts(self, key_levels: tuple[str, ...]) -> list[FeatureLayout]:
        """The features of each member: all of them, and without the level lags when combined (and any)."""
        layout = self._layout(key_levels)
        if self.combine_without_level_lags and layout.level_lags:
            return [layout, replace(layout, level_lags=())]
        return [layout]

    def _members(self) -> list[tuple[FeatureLayout, lgb.Booster]]:
        # Models saved before members existed have one booster.
        return getattr(self, "members_", None) or [(self.layout_, self.booster_)]

    def _booster_params(self) -> dict:
        """The parameters the booster depends on: not threads (deterministic), windowing or calibration."""
        ignored = {
            "n_jobs",
            "training_window",
            "calibration_hours",
            "calibration_horizon",
            "shrink_to_reference",
            "combine_without_level_lags",
            "interval_scale_lag",
            "interval_scale_hours",
        }
        return {name: value for name, value in self.get_params().items() if name not in ignored}

    def predict_panel(
        self,
        panel: Panel,
        origins: np.ndarray,
        horizon: int,
        max_rows: int = PREDICTION_BATCH_ROWS,
        last_target: int | None = None,
    ) -> np.ndarray:
        """(series, origins, horizon) forecasts issued after grid positions `origins`.

        Series and origins form batches of at most `max_rows` (series, origin) rows counted over all
        members (whole origins, at least one per batch); each horizon step of a batch is one booster
        call per member. A batch's members hold at most `max_rows` x (history + horizon) model-space
        values in all, plus one step's features, so memory beyond the result stays bounded however
        many series and origins there are. With `last_target`, steps past that grid position are not
        forecast (NaN): a calibration has no actual to score them on.
        """
        history = self.layout_.history
        if origins.min() < history - 1:
            raise InsufficientHistoryError(history, int(origins.min()) + 1, "a forecast")
        model_space = self.layout_.transform(panel.gaps_filled())
        grid_calendar = calendar(_datetimes(extend_grid(panel.grid, horizon)), len(panel.grid) + horizon)
        codes = self._key_codes(panel.keys)
        members = self._members()
        # A batch holds the members' running sum beside the next member's recursion: rows per member.
        per_batch = max(1, max_rows // max(1, len(panel.keys)) // len(members))
        result = np.empty((len(panel.keys), len(origins), horizon))
        for start in range(0, len(origins), per_batch):
            batch = slice(start, start + per_batch)
            result[:, batch] = self._predict_batch(
                members, model_space, origins[batch], horizon, grid_calendar, codes, self._threads(), last_target
            )
        return result

    def _predict_batch(
        self,
        members: list[tuple[FeatureLayout, lgb.Booster]],
        model_space: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        grid_calendar: np.ndarray,
        codes: np.ndarray,
        threads: int,
        last_target: int | None,
    ) -> np.ndarray:
        """(series, origins, horizon) forecasts of one batch of origins, every series at once: the mean of
        the members' recursions in model space (a geometric mean with the log target)."""
        layout = self.layout_
        history = layout.history
        n_series, n_origins = model_space.shape[0], len(origins)
        past = origins[:, None] + np.arange(1 - history, 1)
        batch = _Batch(
            offsets=np.tile(origins - history + 1, n_series),
            codes=np.repeat(codes, n_origins, axis=0),
            # Steps each row forecasts: all, or up to `last_target`.
            steps_wanted=np.tile(horizon if last_target is None else last_target - origins, n_series),
            grid_calendar=grid_calendar,
            threads=threads,
        )
        # One row per (series, origin): its history, then the first member's forecasts, to which the
        # others' are added; each further member recurses in a buffer of its own from the same history.
        z = np.full((n_series * n_origins, history + horizon), np.nan)
        z[:, :history] = model_space[:, past].reshape(-1, history)
        (first_layout, first_booster), *others = members
        self._recursion(first_layout, first_booster, z, batch)
        for member_layout, booster in others:
            member = np.full_like(z, np.nan)
            member[:, :history] = z[:, :history]
            self._recursion(member_layout, booster, member, batch)
            z[:, history:] += member[:, history:]
        z[:, history:] /= len(members)
        weights = getattr(self, "reference_weights_", None)  # None: no calibration, or saved before it existed
        if weights is not None:
            # Steps within one season are weighted (beyond the calibrated ones, by the furthest one's weight).
            steps = np.arange(1, min(horizon, layout.reference_lag) + 1)
            weight = weights[np.minimum(steps, len(weights)) - 1]
            reference = z[:, history - 1 + steps - layout.reference_lag]
            columns = history - 1 + steps
            z[:, columns] = reference + weight * (z[:, columns] - reference)
        return layout.inverse(z[:, history:]).reshape(n_series, n_origins, horizon)

    def _recursion(self, layout: FeatureLayout, booster: lgb.Booster, z: np.ndarray, batch: _Batch) -> None:
        """Fill one member's forecasts into `z` (rows, history + horizon) after its history, in place, each
        step read by the next; columns past a row's `steps_wanted` stay as they are (NaN)."""
        history = self.layout_.history
        statistics = TrailingWindows(z)
        for step, position in enumerate(range(history, z.shape[1]), start=1):
            rows = batch.steps_wanted >= step
            if not rows.any():
                break
            X, level = feature_rows(
                layout, z, statistics, np.array([position]), batch.grid_calendar, batch.offsets, batch.codes
            )
            rows = slice(None) if rows.all() else rows  # all rows: a view, not a copy of X
            z[rows, position] = layout.unscale(booster.predict(X[rows], num_threads=batch.threads), level[rows, 0])

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
        panel = Panel.from_sktime(y_history)
        origin_index = pd.Index(origins)
        positions = panel.position(origin_index)
        values = self.predict_panel(panel, positions, horizon)
        frame = panel.origin_frame(origin_index, values, y_history.index.names[-1] or "time")
        # Models saved before intervals existed have no calibration attribute.
        errors = getattr(self, "conformal_errors_", None)
        scale = self._interval_scale(panel, positions)[..., None]
        return frame.assign(**bound_columns(errors, values, np.arange(1, horizon + 1), coverage, panel.name, scale))

    @property
    def history_length(self) -> int:
        """Time points before the predicted one that a feature row reads."""
        return self._layout(()).history

    @property
    def forecast_reach(self) -> int:
        """Time points up to an origin that its forecasts and their intervals read: a feature row's
        history, or the interval scale's if longer."""
        lag, hours = self.interval_scale
        return max(self.history_length, lag + hours if hours else 0)

    def _layout(self, key_levels: tuple[str, ...]) -> FeatureLayout:
        return FeatureLayout(
            lags=tuple(self.lags),
            windows=tuple(self.windows),
            holiday_lags=tuple(self.holiday_lags),
            level_lags=tuple(self.level_lags),
            scale_window=self.scale_window,
            reference_lag=self.reference_lag,
            log_target=self.log_target,
            key_levels=key_levels,
        )

    def _threads(self) -> int:
        """LightGBM threads for the next fit or prediction batch."""
        return free_cores() if self.n_jobs == -1 else self.n_jobs

    def _key_codes(self, keys: pd.Index) -> np.ndarray:
        """(series, levels) integer category of each key level; -1 (missing) for unseen values."""
        codes = [
            pd.Categorical(keys.get_level_values(i), categories=categories).codes
            for i, categories in enumerate(self.categories_)
        ]
        return np.column_stack(codes).astype("float64") if codes else np.zeros((len(keys), 0))

    def _lgb_params(self) -> dict:
        return {
            "objective": self.objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "min_data_per_group": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.reg_lambda,
            "num_threads": self._threads(),
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            # Trees add corrections to the reference level, starting from none.
            "boost_from_average": False,
        }

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
                "interval_scale_lag": 2,
                "interval_scale_hours": 3,
            },
        ]


class _Batch(NamedTuple):
    """What each member's recursion over one batch of (series, origin) rows reads besides its values."""

    offsets: np.ndarray  # grid position of each row's first history point
    codes: np.ndarray  # (rows, key levels) category codes
    steps_wanted: np.ndarray  # steps each row forecasts
    grid_calendar: np.ndarray  # (grid points + horizon, 3)
    threads: int


class _RecentBoosters:
    """The last few fitted boosters, by the parameters and data that determine them (LightGBM here is
    deterministic), so a fit repeated on the same points in one process costs nothing."""

    def __init__(self, size: int = 8):
        self.size = size
        self._boosters: OrderedDict[str, lgb.Booster] = OrderedDict()

    @staticmethod
    def key(params: dict, panel: Panel) -> str:
        digest = hashlib.blake2b(repr(sorted(params.items())).encode(), digest_size=20)
        digest.update(repr((panel.name, panel.keys.tolist(), panel.grid.tolist())).encode())
        digest.update(np.ascontiguousarray(panel.values).tobytes())
        return digest.hexdigest()

    def get(self, key: str) -> lgb.Booster | None:
        if key in self._boosters:
            self._boosters.move_to_end(key)
        return self._boosters.get(key)

    def put(self, key: str, booster: lgb.Booster) -> None:
        self._boosters[key] = booster
        while len(self._boosters) > self.size:
            self._boosters.popitem(last=False)

    def clear(self) -> None:
        self._boosters.clear()


_RECENT_BOOSTERS = _RecentBoosters()


def _datetimes(grid: pd.Index) -> pd.Index | None:
    """The grid when its points are dates or periods (calendar features apply), else None."""
    return grid if isinstance(grid, (pd.DatetimeIndex, pd.PeriodIndex)) else None


def _least_squares_weights(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Per horizon (last axis), the weight w in [0, 1] minimising the squared error of w * forecast
    against actual, both as deviations from the reference; 1 where no pair is observed."""
    pairs = np.isfinite(actual) & np.isfinite(forecast)
    a, f = np.where(pairs, actual, 0.0), np.where(pairs, forecast, 0.0)
    axes = tuple(range(a.ndim - 1))
    cross, square = (a * f).sum(axis=axes), (f * f).sum(axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(square > 0, np.clip(cross / square, 0.0, 1.0), 1.0)


def _average_sizes(booster: lgb.Booster) -> None:
    """Make the booster predict the mean of its first 1, 2, ..., n trees: tree i weighs (n - i) / n."""
    # Leaf counts from the model text: a tenth of the time of dump_model's JSON of every tree.
    text = booster.model_to_string().splitlines()
    leaves = [int(line[len("num_leaves=") :]) for line in text if line.startswith("num_leaves=")]
    n = len(leaves)
    for i, count in enumerate(leaves):
        for leaf in range(count):
            booster.set_leaf_output(i, leaf, booster.get_leaf_output(i, leaf) * (n - i) / n)
