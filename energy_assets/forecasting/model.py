"""The fitted global model on `Panel`s: members, key categories and calibration; fit, forecast and intervals.

Hyperparameters come in as a mapping, the sktime estimator's `get_params()` (`forecaster.py` declares
them and their defaults once); the model keeps the mapping it was fitted with, and saves it with itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from energy_assets.forecasting import history_gaps
from energy_assets.forecasting.calibration import Calibration, IntervalMethod, calibrate, shrink
from energy_assets.forecasting.features import FeatureLayout, grid_calendar
from energy_assets.forecasting.intervals import bound_columns
from energy_assets.forecasting.members import Member, feature_layout, fit_members, member_layouts, members_digest
from energy_assets.forecasting.panel import InsufficientHistoryError, Panel, extend_grid
from energy_assets.forecasting.recursion import PREDICTION_BATCH_ROWS, recursive_forecasts
from energy_assets.forecasting.threads import free_cores
from energy_assets.schema import HISTORY_HOURS_MISSING


@dataclass(frozen=True)
class KeptForecasts:
    """Model-space forecasts a model made from some origins (its members' mean, before any shrinkage), with
    the model-space history each read (`read_history`: NaN where a value was missing): another model with the
    same members (`maker`, a `members_digest`) forecasting from one of these origins out of the same history,
    gaps included, makes these very forecasts (those the `history_gaps` rule issues)."""

    maker: str
    keys: pd.Index
    origins: pd.Index  # grid times
    values: np.ndarray  # (series, origins, horizon)
    inputs: np.ndarray  # (series, history - 1 + origins): the history of the first origin, then one point per origin

    @property
    def history(self) -> int:
        return self.inputs.shape[1] - len(self.origins) + 1


@dataclass(frozen=True)
class CalibrationForecasts:
    """The calibration fit's forecasts of the held-out points, as the calibrated model issues them."""

    panel: Panel
    origins: np.ndarray  # grid positions
    forecast: np.ndarray  # (series, origins, horizon), target units, NaN past the panel's end
    scale: np.ndarray  # (series, origins, 1) interval scale, with the calibrated model's series factors
    kept: KeptForecasts | None  # the origins all of whose steps were forecast, for reuse


@dataclass(frozen=True)
class GlobalModel:
    """A fitted global model: the hyperparameters it was fitted with, its members, the categories of each key
    level it learned, its calibration (None: none), and the digest of what its members learned from."""

    params: Mapping[str, Any]
    key_names: tuple[str, ...]
    categories: tuple[pd.Index, ...]
    members: tuple[Member, ...]
    calibration: Calibration | None
    digest: str

    @property
    def layout(self) -> FeatureLayout:
        """The features of the first member (all of them): its history is every member's."""
        return self.members[0].layout

    @property
    def forecast_reach(self) -> int:
        """Time points up to an origin that its forecasts and their intervals read."""
        return forecast_reach(self.params)

    def forecast_reads(self, horizon: int) -> np.ndarray:
        """Steps back from an origin (0: the origin) whose values a forecast of `horizon` steps reads through
        its features, gaps filled: the hours the `history_gaps` rule counts (a subset of `forecast_reach`)."""
        return history_gaps.forecast_reads(self.layout.reads, horizon)

    def forecast(
        self,
        panel: Panel,
        origins: np.ndarray,
        horizon: int,
        last_target: int | None = None,
        max_rows: int = PREDICTION_BATCH_ROWS,
        kept: KeptForecasts | None = None,
    ) -> np.ndarray:
        """(series, origins, horizon) forecasts issued after grid positions `origins`, in target units.

        With `last_target`, steps past that grid position are not forecast (NaN). Origins that `kept`
        forecasts cover (same members, same series, the same history) take them instead of a recursion.
        """
        model_space = self.layout.transform(panel.gaps_filled())
        forecast = self._model_space_forecasts(panel, model_space, origins, horizon, last_target, max_rows, kept)
        if self.calibration is not None and self.calibration.weights is not None:
            shrink(forecast, model_space, origins, self.layout, self.calibration.weights)
        return self.layout.inverse(forecast)

    def _model_space_forecasts(
        self,
        panel: Panel,
        model_space: np.ndarray,
        origins: np.ndarray,
        horizon: int,
        last_target: int | None,
        max_rows: int,
        kept: KeptForecasts | None,
    ) -> np.ndarray:
        history = self.layout.history
        if origins.min() < history - 1:
            raise InsufficientHistoryError(history, int(origins.min()) + 1, "a forecast")
        forecast = np.full((len(panel.keys), len(origins), horizon), np.nan)
        found = self._kept(kept, panel, model_space, origins, horizon) if last_target is None else {}
        for i, values in found.items():
            forecast[:, i] = values
        todo = np.setdiff1d(np.arange(len(origins)), list(found))
        if len(todo):
            calendar = grid_calendar(extend_grid(panel.grid, horizon), len(panel.grid) + horizon)
            forecast[:, todo] = recursive_forecasts(
                list(self.members), history, model_space, origins[todo], horizon, calendar,
                self.key_codes(panel.keys), self.threads(), last_target, max_rows,
            )
        return forecast

    def _kept(
        self, kept: KeptForecasts | None, panel: Panel, model_space: np.ndarray, origins: np.ndarray, horizon: int
    ) -> dict[int, np.ndarray]:
        """For each origin `kept` forecasts cover, exactly as a recursion would: (series, horizon) values."""
        if kept is None or kept.maker != self.digest or kept.history != self.layout.history:
            return {}
        if not kept.keys.equals(panel.keys) or kept.values.shape[-1] < horizon:
            return {}
        history = self.layout.history
        at = kept.origins.get_indexer(panel.grid[origins])
        found = {}
        for i, (position, j) in enumerate(zip(origins, at)):
            if j >= 0 and np.array_equal(
                kept.inputs[:, j : j + history], read_history(panel, model_space, position - history + 1, position + 1),
                equal_nan=True,
            ):
                found[i] = kept.values[:, j, :horizon]
        return found

    def scale(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        """(series, origins) units of the calibration errors and interval widths at each origin: the interval
        scale, times each series' width factor where the calibration has them."""
        scale = IntervalMethod.of(self.params).scale(panel.values, origins, self.layout.log_target)
        if self.calibration is not None and self.calibration.series is not None:
            scale = scale * self.calibration.series.of(panel.keys)[:, None]
        return scale

    def key_codes(self, keys: pd.Index) -> np.ndarray:
        """(series, levels) integer category of each key level; -1 (missing) for unseen values."""
        codes = [
            pd.Categorical(keys.get_level_values(i), categories=categories).codes
            for i, categories in enumerate(self.categories)
        ]
        return np.column_stack(codes).astype("float64") if codes else np.zeros((len(keys), 0))

    def threads(self) -> int:
        """LightGBM threads for the next fit or prediction batch."""
        return free_cores() if self.params["n_jobs"] == -1 else self.params["n_jobs"]


def history_length(params: Mapping[str, Any]) -> int:
    """Time points before the predicted one that a feature row reads."""
    return feature_layout(params, ()).history


def forecast_reach(params: Mapping[str, Any]) -> int:
    """Time points up to an origin that its forecasts and their intervals read: a feature row's history, or
    the interval scale's if longer."""
    lags, hours = params["interval_scale_lags"], params["interval_scale_hours"]
    return max(history_length(params), max(lags) + hours if hours and lags else 0)


def fit(
    panel: Panel, params: Mapping[str, Any], earlier: Iterable[GlobalModel] = ()
) -> tuple[GlobalModel, CalibrationForecasts | None]:
    """The model of `params` fitted on the panel, calibrated, and its calibration forecasts (None without).

    Split-conformal calibration: the members are first fitted on the points before the last
    `calibration_hours` (as many as the final model learns from, with `training_window`), forecast every
    origin inside them and the errors are kept per horizon; then the members are fitted on the newest
    points. Any fit whose members an `earlier` model already has (equal `members_digest`: the same
    hyperparameters and points) is taken from it instead: in a backfill retraining every day with 48
    calibration hours, the calibration fit is the model trained two days before.
    """
    params = dict(params)
    earlier = list(earlier)
    layout = feature_layout(params, panel.key_names)
    window = params["training_window"]
    if window is not None and window <= layout.history:
        raise ValueError(f"training_window {window} leaves no target: a training row reads {layout.history} points before it")
    model_space = layout.transform(panel.gaps_filled())
    held_out = params["calibration_hours"]
    first = len(panel.grid) - held_out  # first held-out position
    calibration = forecasts = None
    if held_out > 0 and first > layout.history:
        calibrating = _fitted_members(panel, first, params, layout, earlier)
        horizon = min(params["calibration_horizon"], held_out)
        origins = np.arange(first - 1, len(panel.grid) - 1)
        mean = calibrating._model_space_forecasts(
            panel, model_space, origins, horizon, len(panel.grid) - 1, PREDICTION_BATCH_ROWS, None
        )
        scale = calibrating.scale(panel, origins)[..., None]
        _, refused = history_gaps.issue_rule(panel.values, origins, calibrating.forecast_reads(horizon))
        calibration, issued = calibrate(
            panel.values, model_space, origins, layout.inverse(mean), layout, params["shrink_to_reference"], scale,
            panel.keys, params["interval_series_prior_hours"], mask=~refused[..., None],
        )
        if calibration.series is not None:
            scale = scale * calibration.series.factors[:, None, None]  # as the calibrated model scales them
        whole = origins[origins + horizon <= len(panel.grid) - 1]  # every step forecast
        kept = None
        if len(whole):
            kept = KeptForecasts(
                maker=calibrating.digest,
                keys=panel.keys,
                origins=panel.grid[whole],
                values=mean[:, : len(whole)],
                inputs=read_history(panel, model_space, whole[0] - layout.history + 1, whole[-1] + 1),
            )
        forecasts = CalibrationForecasts(panel, origins, issued, scale, kept)
    model = _fitted_members(panel, len(panel.grid), params, layout, earlier)
    return replace(model, calibration=calibration), forecasts


def _fitted_members(
    panel: Panel,
    end: int,
    params: dict,
    layout: FeatureLayout,
    earlier: list[GlobalModel],
) -> GlobalModel:
    """An uncalibrated model of the newest `training_window` points before position `end`: an earlier
    model's members when it learned from the same, else a fit."""
    points = _training_points(panel, end, params["training_window"])
    digest = members_digest(params, points)
    for model in earlier:
        if model.digest == digest:
            return replace(model, params=params, calibration=None)  # the same trees; its interval settings are ours
    width = len(points.grid)
    if width <= layout.history:
        raise InsufficientHistoryError(layout.history + 1, width, "fitting")
    categories = tuple(panel.keys.unique(level=i) for i in range(panel.keys.nlevels))
    model = GlobalModel(params, panel.key_names, categories, (), None, digest)
    # Features read the window's own gap-filled history; only observed targets are learned.
    members = fit_members(
        member_layouts(layout, params["combine_without_level_lags"]),
        points,
        layout.transform(points.gaps_filled()),
        grid_calendar(points.grid, width),
        model.key_codes(points.keys),
        params,
        model.threads(),
    )
    return replace(model, members=tuple(members))


def _training_points(panel: Panel, end: int, window: int | None) -> Panel:
    """The newest `window` points before grid position `end` (None: all of them): what a fit learns from."""
    start = 0 if window is None else max(0, end - window)
    return Panel(keys=panel.keys, grid=panel.grid[start:end], values=panel.values[:, start:end], name=panel.name)


def training_gaps(panel: Panel, params: Mapping[str, Any]) -> pd.DataFrame:
    """Per series, the rows the final fit of `params` on the panel leaves out because their features read a
    missing value, and the missing hours they read (`history_gaps.training_gaps`)."""
    layout = feature_layout(params, panel.key_names)
    points = _training_points(panel, len(panel.grid), params["training_window"])
    return history_gaps.training_gaps(points, layout.history, layout.reads)


def read_history(panel: Panel, model_space: np.ndarray, start: int, end: int) -> np.ndarray:
    """The model-space history of grid positions [start, end), NaN where the panel lacks a value: what a
    forecast from those points read, gaps included (their fills are read as values)."""
    return np.where(np.isnan(panel.values[:, start:end]), np.nan, model_space[:, start:end])


def forecast_frame(
    model: GlobalModel,
    panel: Panel,
    origins: pd.Index,
    horizon: int,
    coverage: tuple[float, ...],
    time_name: str,
    kept: KeptForecasts | None = None,
    refuse_gaps: bool = False,
) -> pd.DataFrame:
    """The model's forecasts from `origins` (grid times) as one row per series, origin and step: key columns,
    issued_at, `time_name`, horizon, the forecast under the panel's name, the lower and upper bound of each
    `coverage` interval (NaN where there is no calibration or the interval is unbounded) and
    `history_hours_missing` (the hours its forecast read that the panel lacks, `history_gaps`). With
    `refuse_gaps`, the forecasts the `history_gaps` rule refuses are left out."""
    positions = panel.position(origins)
    values = model.forecast(panel, positions, horizon, kept=kept)
    frame = panel.origin_frame(origins, values, time_name)
    errors = None if model.calibration is None else model.calibration.errors
    scale = model.scale(panel, positions)[..., None]
    frame = frame.assign(**bound_columns(errors, values, np.arange(1, horizon + 1), coverage, panel.name, scale))
    counts, refused = history_gaps.issue_rule(panel.values, positions, model.forecast_reads(horizon))
    frame[HISTORY_HOURS_MISSING] = np.repeat(counts.ravel(), horizon).astype("int16")
    return frame[~np.repeat(refused.ravel(), horizon)].reset_index(drop=True) if refuse_gaps else frame
