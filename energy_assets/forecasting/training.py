"""Train, validate, search, save and apply the global forecaster on canonical consumption rows."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sktime.split import ExpandingWindowSplitter

from energy_assets import schema
from energy_assets.forecasting import model as engine
from energy_assets.forecasting.evaluation import (
    backtest,
    beside_baselines,
    interval_calibration,
    overall_scores,
    score_models,
    without_refused,
)
from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
from energy_assets.forecasting.history_gaps import HistoryGaps
from energy_assets.forecasting.intervals import bound_columns, interval_metric_names
from energy_assets.forecasting.metrics import HEADLINE
from energy_assets.forecasting.model import CalibrationForecasts, GlobalModel, KeptForecasts
from energy_assets.forecasting.panel import InsufficientHistoryError, Panel
from energy_assets.forecasting.saved_model import MODEL_FORMAT, SavedModelFormatError, load_model, save_model
from energy_assets.timeline import HOUR, to_utc_hour

__all__ = [
    "ForecasterConfig",
    "InsufficientHistoryError",
    "MODEL_FORMAT",
    "SavedModelFormatError",
    "TrainingResult",
    "forecast_origins",
    "forecasts_and_gaps",
    "load_forecaster",
    "min_training_hours",
    "required_history_hours",
    "save_forecaster",
    "search_intervals",
    "search_hyperparameters",
    "search_series_intervals",
    "train_forecaster",
]

# Newest hours of features a model learns from (its calibration fit learns from as many hours ending
# calibration_hours earlier: `ForecasterConfig.read_hours`).
TRAINING_WINDOW_HOURS = 30 * 24
# Where this project's defaults differ from the estimator's: it learns from a window, not all history.
PROJECT_DEFAULTS = {"training_window": TRAINING_WINDOW_HOURS}
# Threads change no model (deterministic LightGBM): not part of a configuration.
NOT_CONFIGURED = ("n_jobs",)

# The scores a validation records for each forecaster, the headline first.
VALIDATION_METRICS = (HEADLINE, "mape", "rmspe")


class _ConfigMethods:
    """What a `ForecasterConfig` does besides holding values."""

    def __post_init__(self):
        # Lists from JSON become tuples, so configs compare and hash by value.
        for item in fields(self):
            if isinstance(item.default, tuple):
                object.__setattr__(self, item.name, tuple(int(v) for v in getattr(self, item.name)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ForecasterConfig:
        """The config of `to_dict`; ValueError naming unknown keys."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown forecaster config keys {sorted(unknown)}")
        return cls(**values)

    @property
    def read_hours(self) -> int | None:
        """Newest hours a training reads: the model's window and its calibration fit's (None: all)."""
        return None if self.training_window is None else self.training_window + self.calibration_hours

    def params(self, n_jobs: int = -1) -> dict[str, Any]:
        """The estimator's hyperparameters (`GlobalLGBMForecaster.get_params()`), on the cores free at each fit
        and prediction by default."""
        values = {name: value for name, value in asdict(self).items() if name in _ESTIMATOR_PARAMS}
        return {**values, "n_jobs": n_jobs}

    def forecaster(self, n_jobs: int = -1) -> GlobalLGBMForecaster:
        """An unfitted estimator with these hyperparameters."""
        return GlobalLGBMForecaster(**self.params(n_jobs))


_ESTIMATOR_PARAMS = [name for name in GlobalLGBMForecaster.get_param_names() if name not in NOT_CONFIGURED]


def _config_fields() -> list[tuple]:
    """The estimator's hyperparameters as it declares them (this project's defaults where it has its own),
    then the training's own settings."""
    signature = inspect.signature(GlobalLGBMForecaster.__init__).parameters
    declared = [
        (name, signature[name].annotation, field(default=PROJECT_DEFAULTS.get(name, signature[name].default)))
        for name in _ESTIMATOR_PARAMS
    ]
    # Hours of training targets a series needs beyond its feature history.
    return [*declared, ("min_target_hours", "int", field(default=48))]


# Hyperparameters and feature settings; equal configs train equal models. The fields are the estimator's
# `__init__` parameters (its `get_params`, declared and documented there once) and `min_target_hours`.
ForecasterConfig = make_dataclass("ForecasterConfig", _config_fields(), bases=(_ConfigMethods,), frozen=True)
ForecasterConfig.__module__ = __name__  # where pickle finds it
ForecasterConfig.__doc__ = (
    "Hyperparameters (the fields of `GlobalLGBMForecaster.get_params()`, but n_jobs, with this project's "
    "training window) and min_target_hours; equal configs train equal models."
)

# What a training with the default configuration reads: the window the model asset declares on its features.
TRAINING_READ_HOURS = ForecasterConfig().read_hours


@dataclass(frozen=True)
class TrainingResult:
    """A fitted model and the facts of its training and validation."""

    model: GlobalModel
    config: ForecasterConfig
    training_rows: int
    training_start: pd.Timestamp
    data_cutoff: pd.Timestamp
    excluded_series: pd.DataFrame  # area, consumer_type, hours_available
    training_gaps: pd.DataFrame  # area, consumer_type, rows_left_out, missing_hours: rows not learned (`history_gaps`)
    validation_metrics: dict[str, float]  # {model,snaive24,snaive168}_{wape,mape,rmspe}
    validation_forecasts: pd.DataFrame  # keys, issued_at, datetime_utc, horizon, model, forecast, actual
    validation_cutoff: pd.Timestamp  # newest row the model that forecast the validation window was fitted on
    calibration: CalibrationForecasts | None  # the calibration fit's forecasts (None: no calibration)

    @property
    def kept_forecasts(self) -> KeptForecasts | None:
        """The calibration fit's forecasts from the origins all of whose steps it forecast, kept with the model
        so that forecasts issued from those origins by the same members reuse them."""
        return None if self.calibration is None else self.calibration.kept


def required_history_hours(config: ForecasterConfig) -> int:
    """Past hours, the issue hour included, that one forecast with its intervals reads."""
    return engine.forecast_reach(config.params())


def min_training_hours(config: ForecasterConfig) -> int:
    """Hours a series needs up to the cutoff to take part in a fit: a feature row's history and the targets.
    (Its intervals are unbounded while it is younger than `required_history_hours`.)"""
    return engine.history_length(config.params()) + config.min_target_hours


def train_forecaster(
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    config: ForecasterConfig,
    validation_hours: int = 24,
    earlier: Iterable[GlobalModel] = (),
) -> TrainingResult:
    """Fit on every row <= `cutoff`; validate out of sample on the last `validation_hours` before it.

    Series with fewer than `min_training_hours + validation_hours` hours are left out and listed.
    Validation forecasts the window from every hour in it (targets up to the cutoff), beside
    seasonal naive 24 h and 168 h issued at the same hours, with a model that saw no row of the
    window: the fit's own calibration fit when its held-out hours span the window (its forecasts are
    already made: no extra work), else a second fit on the rows before the window; only forecasts the
    `history_gaps` rule issues are scored, and a forecaster with none to score has no metrics.
    `InsufficientHistoryError` when no hour of the window has a row. A fit whose members one of the
    `earlier` models has (the same hyperparameters and points) is taken from it.
    """
    cutoff = to_utc_hour(cutoff)
    rows = _training_rows(history, cutoff, config)
    needed = min_training_hours(config) + validation_hours
    hours = rows.groupby(schema.SERIES_KEY).size().rename("hours_available").reset_index()
    excluded = hours[hours["hours_available"] < needed].reset_index(drop=True)
    if len(excluded) == len(hours):
        best = int(hours["hours_available"].max()) if len(hours) else 0
        raise InsufficientHistoryError(needed, best, f"training up to {cutoff}")
    rows = rows.merge(hours.loc[hours["hours_available"] >= needed, schema.SERIES_KEY])
    validation_start = cutoff - validation_hours * HOUR
    validated = pd.date_range(validation_start + HOUR, cutoff, freq=HOUR)
    if not validated.isin(rows[schema.DATETIME]).any():
        raise InsufficientHistoryError(
            validation_hours, 0, f"validating a model trained up to {cutoff:%Y-%m-%d %H:%M}", missing_hours=validated
        )
    panel = Panel.from_long(rows)
    model, calibration = engine.fit(panel, config.params(), earlier)
    learned = rows
    if config.training_window is not None:
        learned = rows[rows[schema.DATETIME] > cutoff - config.training_window * HOUR]

    if calibration is not None and panel.grid[calibration.origins[0]] <= validation_start:
        # The calibration fit's first origin is the newest hour it was fitted on.
        validation_cutoff = panel.grid[calibration.origins[0]]
        forecasts = _calibration_frame(model, calibration)
        # Bands as the model issues them (calibrated on these same forecasts): for the plot, not scored.
        issued = forecasts[forecasts[schema.ISSUED_AT] >= validation_start]
        validation = beside_baselines(issued, rows, validation_cutoff, panel=panel)
        horizon = calibration.forecast.shape[-1]
        origins = panel.grid[calibration.origins]
        refused = HistoryGaps.of(panel, origins[origins >= validation_start], model.forecast_reads(horizon)).refused
        validation = without_refused(validation, refused)  # scored as issued: the model's and baselines' alike
    else:
        validation_cutoff = validation_start
        origins = pd.date_range(validation_start, cutoff - HOUR, freq=HOUR)
        validation = backtest(rows, origins, config.forecaster(), retrain_every=validation_hours)
    metrics = _validation_metrics(validation)
    return TrainingResult(
        model=model,
        config=config,
        training_rows=len(learned),
        training_start=learned[schema.DATETIME].min(),
        data_cutoff=cutoff,
        excluded_series=excluded.astype({**schema.SERIES_DTYPES, "hours_available": "int64"}),
        training_gaps=engine.training_gaps(panel, config.params()).astype(schema.SERIES_DTYPES),
        validation_metrics=metrics,
        validation_forecasts=validation,
        validation_cutoff=validation_cutoff,
        calibration=calibration,
    )


def _validation_metrics(validation: pd.DataFrame) -> dict[str, float]:
    """`VALIDATION_METRICS` of each forecaster of the validation frame that has a forecast to score."""
    if validation.dropna(subset=[schema.FORECAST, schema.TARGET]).empty:
        return {}
    scores = score_models(validation)
    return {f"{model}_{metric}": float(scores.loc[model, metric]) for model in scores.index for metric in VALIDATION_METRICS}


def _calibration_frame(model: GlobalModel, calibration: CalibrationForecasts) -> pd.DataFrame:
    """The calibration forecasts as `forecast_frame` rows, with the bounds this calibration gives them."""
    panel, forecast = calibration.panel, calibration.forecast
    steps = np.arange(1, forecast.shape[-1] + 1)
    bounds = bound_columns(model.calibration.errors, forecast, steps, schema.INTERVAL_COVERAGES, panel.name, calibration.scale)
    return panel.origin_frame(panel.grid[calibration.origins], forecast, schema.DATETIME).assign(**bounds)


def _training_rows(history: pd.DataFrame, cutoff: pd.Timestamp, config: ForecasterConfig) -> pd.DataFrame:
    """Rows with an observed target at or before `cutoff` that a training reads (`config.read_hours`)."""
    missing = [c for c in schema.CONSUMPTION_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks columns {missing}")
    keep = (history[schema.DATETIME] <= cutoff) & history[schema.TARGET].notna()
    if config.read_hours is not None:
        keep &= history[schema.DATETIME] > cutoff - config.read_hours * HOUR
    return history.loc[keep, schema.CONSUMPTION_COLUMNS]


def forecast_origins(
    model: GlobalModel,
    history_long: pd.DataFrame,
    origins: pd.DatetimeIndex | list,
    horizon: int = 24,
    kept: KeptForecasts | None = None,
) -> pd.DataFrame:
    """Forecasts issued at each origin hour for the next `horizon` hours, every series of the history.

    Columns and dtypes are schema.FORECAST_COLUMNS without the model's (schema.MODEL_COLUMNS). A series whose
    history lacks hours its forecast reads follows the `history_gaps` rule: refused (no rows for that origin)
    or issued with the count in `history_hours_missing`; `forecasts_and_gaps` also says which. Origins whose
    forecasts `kept` holds (made by the same members from the same history) take them.
    """
    return forecasts_and_gaps(model, history_long, origins, horizon, kept)[0]


def forecasts_and_gaps(
    model: GlobalModel,
    history_long: pd.DataFrame,
    origins: pd.DatetimeIndex | list,
    horizon: int = 24,
    kept: KeptForecasts | None = None,
) -> tuple[pd.DataFrame, HistoryGaps]:
    """`forecast_origins`, and the gaps its forecasts read: every (series, origin) refused or flagged.

    `InsufficientHistoryError` when the history has no row in the hours the first origin reads, or none at an
    origin itself (a forecast issued at H is made with the data of H): its `missing_hours` says which.
    """
    issued = pd.DatetimeIndex([to_utc_hour(o) for o in origins]).as_unit("us")
    reach = model.forecast_reach
    # Only the hours these origins read (the window `issuing.history_window` reads for one origin),
    # so the cost follows the origins, not the history passed in.
    first_read = issued.min() - reach * HOUR
    times = history_long[schema.DATETIME]
    window = history_long[(times >= first_read) & (times <= issued.max())]
    _check_issue_hours(window, issued, reach)
    panel = Panel.from_long(window)
    frame = engine.forecast_frame(
        model, panel, issued, horizon, schema.INTERVAL_COVERAGES, schema.DATETIME, kept, refuse_gaps=True
    )
    gaps = HistoryGaps.of(panel, issued, model.forecast_reads(horizon))
    frame = frame.rename(columns={schema.TARGET: schema.FORECAST}).dropna(subset=[schema.FORECAST])
    columns = [c for c in schema.FORECAST_COLUMNS if c not in schema.MODEL_COLUMNS]
    return frame[columns].astype({column: schema.FORECAST_DTYPES[column] for column in columns}), gaps


def _check_issue_hours(window: pd.DataFrame, issued: pd.DatetimeIndex, reach: int) -> None:
    """`InsufficientHistoryError` (with the hours no series has) when an issue hour has no row, or the hours
    the first one reads have none."""
    present = pd.DatetimeIndex(window[schema.DATETIME].unique())
    absent = issued[~issued.isin(present)]
    origin = absent[0] if len(absent) else issued.min()
    reads = pd.date_range(origin - (reach - 1) * HOUR, origin, freq=HOUR)
    available = int(reads.isin(present).sum())
    if len(absent) or not available:
        raise InsufficientHistoryError(
            reach, available, f"a forecast issued at {origin:%Y-%m-%d %H:%M}", missing_hours=absent if available else reads
        )


def save_forecaster(result: TrainingResult | GlobalModel, directory: str | Path) -> Path:
    """Write the fitted model (and, of a training, the forecasts it keeps for reuse) into `directory`."""
    if isinstance(result, TrainingResult):
        return save_model(result.model, directory, result.kept_forecasts)
    return save_model(result, directory)


def load_forecaster(directory: str | Path) -> GlobalModel:
    """The model `save_forecaster` wrote; FileNotFoundError naming the missing file, `SavedModelFormatError`
    (saying to retrain) for a model saved in an earlier format."""
    return load_model(directory)


def search_hyperparameters(
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    candidates: list[ForecasterConfig] | dict[str, list] | list[dict[str, list]],
    n_splits: int = 3,
    fold_hours: int = 24,
    n_iter: int | None = None,
    base: ForecasterConfig | None = None,
    random_state: int = 0,
) -> tuple[ForecasterConfig, pd.DataFrame]:
    """Time-series cross-validated search; returns the config with the lowest headline score (`metrics.HEADLINE`,
    WAPE) and all results, best first.

    `candidates` is a list of configs, or a grid {field: values} (or a list of grids, as sklearn's
    ParameterGrid takes them) over `base`: all combinations, or `n_iter` random ones. Folds come from
    sktime's ExpandingWindowSplitter: each of the last `n_splits` blocks of `fold_hours` hours before
    `cutoff` is forecast from every hour in it by a fit on the rows before the block.
    """
    configs = _candidate_configs(candidates, base or ForecasterConfig(), n_iter, random_state)
    cutoff = to_utc_hour(cutoff)
    hours = pd.date_range(history[schema.DATETIME].min(), cutoff, freq=HOUR)
    initial = len(hours) - n_splits * fold_hours
    needed = max(min_training_hours(config) for config in configs)
    if initial < needed:
        raise InsufficientHistoryError(needed + n_splits * fold_hours, len(hours), "the search")
    splitter = ExpandingWindowSplitter(
        fh=np.arange(1, fold_hours + 1), initial_window=initial, step_length=fold_hours
    )
    # A fold's origins are the hours from its training cutoff to the hour before its last target.
    folds = [hours[test] - HOUR for _, test in splitter.split(pd.Series(0, index=hours))]
    rows = history[history[schema.DATETIME] <= cutoff]
    results = []
    for config in configs:
        started = time.perf_counter()
        fitted: list[GlobalModel] = []  # a fold's calibration fit is the fold two days before's model
        forecasts = pd.concat(
            [
                backtest(
                    _training_rows(rows, fold_origins[-1] + HOUR, config),
                    fold_origins,
                    config.forecaster(),
                    retrain_every=fold_hours,
                    seasonal_periods=(),
                    fitted=fitted,
                )
                for fold_origins in folds
            ]
        )
        scores = overall_scores(forecasts)
        results.append(
            {
                **config.to_dict(),
                **scores.drop(["n", "zero_actuals"]).to_dict(),  # point scores, coverage / winkler of each interval
                "seconds": time.perf_counter() - started,
            }
        )
    table = pd.DataFrame(results).sort_values(HEADLINE, kind="stable").reset_index(drop=True)
    best = configs[int(pd.Series([r[HEADLINE] for r in results]).sort_values(kind="stable").index[0])]
    return best, table


def search_intervals(
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    config: ForecasterConfig,
    calibration_hours: list[int],
    scales: list[tuple[tuple[int, ...], int]],
    n_splits: int = 3,
) -> tuple[ForecasterConfig, pd.DataFrame]:
    """`config` with the interval scale and calibration hours the search's folds choose, and every candidate's
    scores (each of `calibration_hours` with each (interval_scale_lags, interval_scale_hours) of `scales`).

    Two questions, each judged by what it decides. The scale spreads the width over series and origins:
    the scale with the lowest interval score (mean over `schema.INTERVAL_COVERAGES`, a proper scoring
    rule: narrow and rarely missed), averaged over every calibration length, so the choice does not rest
    on one length. The calibration length sets the level: of that scale's candidates, the one covering
    closest to nominal (mean absolute miss; the interval score breaks ties).
    """
    candidates = [
        replace(config, calibration_hours=hours, interval_scale_lags=lags, interval_scale_hours=scale_hours)
        for lags, scale_hours in scales
        for hours in calibration_hours
    ]
    _, table = search_hyperparameters(history, cutoff, candidates, n_splits=n_splits)
    table["interval_scale_lags"] = table["interval_scale_lags"].map(tuple)  # hashable, for grouping
    misses = [(table[interval_metric_names(c)[0]] - c).abs() for c in schema.INTERVAL_COVERAGES]
    table["coverage_miss"] = sum(misses) / len(misses)
    winkler = [table[interval_metric_names(c)[1]] for c in schema.INTERVAL_COVERAGES]
    table["winkler"] = sum(winkler) / len(winkler)
    if table["coverage_miss"].isna().all():
        raise ValueError(f"no candidate of calibration_hours {calibration_hours} calibrated intervals before {cutoff}")
    scale = ["interval_scale_lags", "interval_scale_hours"]
    table["scale_winkler"] = table.groupby(scale)["winkler"].transform("mean")
    table = table.sort_values(["scale_winkler", *scale, "coverage_miss", "winkler"], kind="stable").reset_index(drop=True)
    best = table.iloc[0]
    return replace(config, **{name: _python(best[name]) for name in ["calibration_hours", *scale]}), table


# Issue 27's goals, as the per-series search holds its candidates to them on the days before the window it
# chooses for: pooled coverage within 3 points of nominal at each level, within 5 at every horizon.
POOLED_COVERAGE_TOLERANCE = 0.03
HORIZON_COVERAGE_TOLERANCE = 0.05


def search_series_intervals(
    history: pd.DataFrame,
    origins: pd.DatetimeIndex,
    reference: ForecasterConfig,
    candidates: list[ForecasterConfig],
    retrain_every: int = 24,
) -> tuple[ForecasterConfig, pd.DataFrame]:
    """Of `reference` (the intervals as they are) and `candidates` (other interval settings of the same
    model), the one whose intervals are right for the most series without giving up what is right pooled,
    and every candidate's scores (`evaluation.interval_calibration`), chosen first.

    Each is backtested from every hour of `origins` (refitted every `retrain_every` hours on the rows up to
    then, the fits shared: interval settings change no tree) for 24 hours, scored on the actuals in
    `history` (pass only the rows before a window the choice must not see).
    Eligible: pooled coverage within `POOLED_COVERAGE_TOLERANCE` of nominal at each level, within
    `HORIZON_COVERAGE_TOLERANCE` at every horizon, and a mean relative Winkler score no worse than the
    reference's. Of those, the lowest mean absolute miss of nominal over the series (`series_miss`, averaged
    over the levels; candidate order breaks ties); the reference when none is eligible.
    """
    configs = list(dict.fromkeys([reference, *candidates]))
    fitted: list[GlobalModel] = []
    records = []
    for config in configs:
        forecasts = backtest(history, origins, config.forecaster(), retrain_every=retrain_every, seasonal_periods=(), fitted=fitted)
        records.append({**config.to_dict(), **interval_calibration(forecasts)})
    table = pd.DataFrame(records)
    pooled = np.logical_and.reduce(
        [(table[interval_metric_names(c)[0]] - c).abs() <= POOLED_COVERAGE_TOLERANCE for c in schema.INTERVAL_COVERAGES]
    )
    table["eligible"] = pooled & (table["horizon_miss"] <= HORIZON_COVERAGE_TOLERANCE) & (table["winkler"] <= table["winkler"].iloc[0])
    order = table.assign(rank=np.where(table["eligible"], table["series_miss"], np.inf), position=np.arange(len(table)))
    chosen = int(order.sort_values(["rank", "position"], kind="stable")["position"].iloc[0]) if table["eligible"].any() else 0
    table["chosen"] = np.arange(len(table)) == chosen
    return configs[chosen], table.sort_values(["chosen", "eligible", "series_miss"], ascending=[False, False, True], kind="stable").reset_index(drop=True)


def _python(value):
    """A table cell as the config field holds it (numpy scalars as Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def _candidate_configs(
    candidates: list[ForecasterConfig] | dict[str, list] | list[dict[str, list]],
    base: ForecasterConfig,
    n_iter: int | None,
    random_state: int,
) -> list[ForecasterConfig]:
    """Configs to try: the list as given, or the grid's combinations (a random `n_iter` of them)."""
    is_grid = isinstance(candidates, dict) or (bool(candidates) and all(isinstance(c, dict) for c in candidates))
    if not is_grid:
        configs = list(candidates)
    else:
        combos = (
            ParameterSampler(candidates, n_iter=n_iter, random_state=random_state)
            if n_iter is not None
            else ParameterGrid(candidates)
        )
        configs = [replace(base, **combo) for combo in combos]
    if not configs:
        raise ValueError("no candidate configs to search")
    return configs
