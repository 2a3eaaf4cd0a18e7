"""Train, validate, search, save and apply the global forecaster on canonical consumption rows."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sktime.base import load
from sktime.split import ExpandingWindowSplitter

from energy_assets import schema
from energy_assets.forecasting.evaluation import backtest, beside_baselines, overall_scores, score_models
from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
from energy_assets.forecasting.intervals import interval_metric_names
from energy_assets.forecasting.metrics import HEADLINE
from energy_assets.forecasting.panel import InsufficientHistoryError, to_sktime
from energy_assets.timeline import to_utc_hour

__all__ = [
    "ForecasterConfig",
    "InsufficientHistoryError",
    "TrainingResult",
    "forecast_origins",
    "load_forecaster",
    "min_training_hours",
    "required_history_hours",
    "save_forecaster",
    "search_intervals",
    "search_hyperparameters",
    "train_forecaster",
]

HOUR = pd.Timedelta(hours=1)
MODEL_FILE = "forecaster"  # sktime's save adds ".zip"
_MODEL_DEFAULTS = GlobalLGBMForecaster.get_param_defaults()
# Newest hours of features a model learns from (its calibration fit learns from as many hours ending
# calibration_hours earlier: `ForecasterConfig.read_hours`).
TRAINING_WINDOW_HOURS = 30 * 24

# The scores a validation records for each forecaster, the headline first.
VALIDATION_METRICS = (HEADLINE, "mape", "rmspe")


@dataclass(frozen=True)
class ForecasterConfig:
    """Hyperparameters and feature settings; equal configs train equal models."""

    lags: tuple[int, ...] = _MODEL_DEFAULTS["lags"]
    windows: tuple[int, ...] = _MODEL_DEFAULTS["windows"]
    holiday_lags: tuple[int, ...] = _MODEL_DEFAULTS["holiday_lags"]
    level_lags: tuple[int, ...] = _MODEL_DEFAULTS["level_lags"]
    scale_window: int = _MODEL_DEFAULTS["scale_window"]
    reference_lag: int = _MODEL_DEFAULTS["reference_lag"]
    log_target: bool = _MODEL_DEFAULTS["log_target"]
    n_estimators: int = _MODEL_DEFAULTS["n_estimators"]
    learning_rate: float = _MODEL_DEFAULTS["learning_rate"]
    num_leaves: int = _MODEL_DEFAULTS["num_leaves"]
    min_child_samples: int = _MODEL_DEFAULTS["min_child_samples"]
    feature_fraction: float = _MODEL_DEFAULTS["feature_fraction"]
    reg_lambda: float = _MODEL_DEFAULTS["reg_lambda"]
    objective: str = _MODEL_DEFAULTS["objective"]
    holiday_weight: float = _MODEL_DEFAULTS["holiday_weight"]
    average_sizes: bool = _MODEL_DEFAULTS["average_sizes"]
    random_state: int = _MODEL_DEFAULTS["random_state"]
    calibration_hours: int = _MODEL_DEFAULTS["calibration_hours"]
    shrink_to_reference: bool = _MODEL_DEFAULTS["shrink_to_reference"]
    combine_without_level_lags: bool = _MODEL_DEFAULTS["combine_without_level_lags"]
    interval_scale_lag: int = _MODEL_DEFAULTS["interval_scale_lag"]
    interval_scale_hours: int = _MODEL_DEFAULTS["interval_scale_hours"]
    calibration_horizon: int = schema.FORECAST_HORIZON_HOURS
    training_window_hours: int | None = TRAINING_WINDOW_HOURS  # newest hours a fit uses; None = all
    min_target_hours: int = 48  # hours of training targets a series needs beyond its feature history

    def __post_init__(self):
        # Lists from JSON become tuples, so configs compare and hash by value.
        for name in ("lags", "windows", "holiday_lags", "level_lags"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

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
        return None if self.training_window_hours is None else self.training_window_hours + self.calibration_hours

    def forecaster(self, n_jobs: int = -1) -> GlobalLGBMForecaster:
        """An unfitted forecaster with these hyperparameters, on the cores free at each fit and prediction."""
        params = {k: v for k, v in asdict(self).items() if k in _MODEL_DEFAULTS}
        return GlobalLGBMForecaster(**params, training_window=self.training_window_hours, n_jobs=n_jobs)


# What a training with the default configuration reads: the window the model asset declares on its features.
TRAINING_READ_HOURS = ForecasterConfig().read_hours


@dataclass(frozen=True)
class TrainingResult:
    """A fitted forecaster and the facts of its training and validation."""

    forecaster: GlobalLGBMForecaster
    config: ForecasterConfig
    training_rows: int
    training_start: pd.Timestamp
    data_cutoff: pd.Timestamp
    excluded_series: pd.DataFrame  # area, consumer_type, hours_available
    validation_metrics: dict[str, float]  # {model,snaive24,snaive168}_{wape,mape,rmspe}
    validation_forecasts: pd.DataFrame  # keys, issued_at, datetime_utc, horizon, model, forecast, actual
    validation_cutoff: pd.Timestamp  # newest row the model that forecast the validation window was fitted on


def required_history_hours(config: ForecasterConfig) -> int:
    """Past hours, the issue hour included, that one forecast with its intervals reads."""
    return config.forecaster().forecast_reach


def min_training_hours(config: ForecasterConfig) -> int:
    """Hours a series needs up to the cutoff to take part in a fit: a feature row's history and the targets.
    (Its intervals are unbounded while it is younger than `required_history_hours`.)"""
    return config.forecaster().history_length + config.min_target_hours


def train_forecaster(
    history: pd.DataFrame,
    cutoff: pd.Timestamp,
    config: ForecasterConfig,
    validation_hours: int = 24,
) -> TrainingResult:
    """Fit on every row <= `cutoff`; validate out of sample on the last `validation_hours` before it.

    Series with fewer than `min_training_hours + validation_hours` hours are left out and listed.
    Validation forecasts the window from every hour in it (targets up to the cutoff), beside
    seasonal naive 24 h and 168 h issued at the same hours, with a model that saw no row of the
    window: the fit's own calibration fit when its held-out hours span the window (its forecasts are
    already made: no extra work), else a second fit on the rows before the window.
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
    template = config.forecaster()
    forecaster = template.clone().fit(to_sktime(rows))
    learned = rows
    if config.training_window_hours is not None:
        learned = rows[rows[schema.DATETIME] > cutoff - config.training_window_hours * HOUR]

    validation_start = cutoff - validation_hours * HOUR
    calibration = forecaster.calibration_forecasts()
    if calibration is not None and calibration[schema.ISSUED_AT].min() <= validation_start:
        # The calibration fit's first origin is the newest hour it was fitted on.
        validation_cutoff = calibration[schema.ISSUED_AT].min()
        # Bands as the model issues them (calibrated on these same forecasts): for the plot, not scored.
        issued = calibration[calibration[schema.ISSUED_AT] >= validation_start]
        validation = beside_baselines(issued, rows, validation_cutoff)
    else:
        validation_cutoff = validation_start
        origins = pd.date_range(validation_start, cutoff - HOUR, freq=HOUR)
        validation = backtest(rows, origins, template, retrain_every=validation_hours)
    scores = score_models(validation)
    metrics = {
        f"{model}_{metric}": float(scores.loc[model, metric]) for model in scores.index for metric in VALIDATION_METRICS
    }
    return TrainingResult(
        forecaster=forecaster,
        config=config,
        training_rows=len(learned),
        training_start=learned[schema.DATETIME].min(),
        data_cutoff=cutoff,
        excluded_series=excluded.astype({**schema.SERIES_DTYPES, "hours_available": "int64"}),
        validation_metrics=metrics,
        validation_forecasts=validation,
        validation_cutoff=validation_cutoff,
    )


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
    forecaster: GlobalLGBMForecaster,
    history_long: pd.DataFrame,
    origins: pd.DatetimeIndex | list,
    horizon: int = 24,
) -> pd.DataFrame:
    """Forecasts issued at each origin hour for the next `horizon` hours, every series of the history.

    Columns and dtypes are schema.FORECAST_COLUMNS without the model's (schema.MODEL_COLUMNS). A series whose history
    starts too late for an origin (no value one reference season back) gets no rows for it.
    """
    issued = pd.DatetimeIndex([to_utc_hour(o) for o in origins]).as_unit("us")
    # Only the hours these origins read (the window `issuing.history_window` reads for one origin),
    # so the cost follows the origins, not the history passed in.
    first_read = issued.min() - forecaster.forecast_reach * HOUR
    times = history_long[schema.DATETIME]
    y = to_sktime(history_long[(times >= first_read) & (times <= issued.max())])
    frame = forecaster.predict_origins(y, issued, horizon)
    frame = frame.rename(columns={schema.TARGET: schema.FORECAST}).dropna(subset=[schema.FORECAST])
    columns = [c for c in schema.FORECAST_COLUMNS if c not in schema.MODEL_COLUMNS]
    return frame[columns].astype({column: schema.FORECAST_DTYPES[column] for column in columns})


def save_forecaster(forecaster: GlobalLGBMForecaster, directory: str | Path) -> Path:
    """Write the fitted forecaster into `directory` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    forecaster.save(directory / MODEL_FILE)
    return directory


def load_forecaster(directory: str | Path) -> GlobalLGBMForecaster:
    """The forecaster `save_forecaster` wrote; FileNotFoundError naming the missing file."""
    path = Path(directory) / f"{MODEL_FILE}.zip"
    if not path.exists():
        raise FileNotFoundError(f"no saved forecaster at {path}")
    return load(path)


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
        forecasts = pd.concat(
            [
                backtest(
                    _training_rows(rows, fold_origins[-1] + HOUR, config),
                    fold_origins,
                    config.forecaster(),
                    retrain_every=fold_hours,
                    seasonal_periods=(),
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
    scales: list[tuple[int, int]],
    n_splits: int = 3,
) -> tuple[ForecasterConfig, pd.DataFrame]:
    """`config` with the interval scale and calibration hours the search's folds choose, and every candidate's
    scores (each of `calibration_hours` with each (interval_scale_lag, interval_scale_hours) of `scales`).

    Two questions, each judged by what it decides. The scale spreads the width over series and origins:
    the scale with the lowest interval score (mean over `schema.INTERVAL_COVERAGES`, a proper scoring
    rule: narrow and rarely missed), averaged over every calibration length, so the choice does not rest
    on one length. The calibration length sets the level: of that scale's candidates, the one covering
    closest to nominal (mean absolute miss; the interval score breaks ties).
    """
    candidates = [
        replace(config, calibration_hours=hours, interval_scale_lag=lag, interval_scale_hours=scale_hours)
        for lag, scale_hours in scales
        for hours in calibration_hours
    ]
    _, table = search_hyperparameters(history, cutoff, candidates, n_splits=n_splits)
    misses = [(table[interval_metric_names(c)[0]] - c).abs() for c in schema.INTERVAL_COVERAGES]
    table["coverage_miss"] = sum(misses) / len(misses)
    winkler = [table[interval_metric_names(c)[1]] for c in schema.INTERVAL_COVERAGES]
    table["winkler"] = sum(winkler) / len(winkler)
    if table["coverage_miss"].isna().all():
        raise ValueError(f"no candidate of calibration_hours {calibration_hours} calibrated intervals before {cutoff}")
    scale = ["interval_scale_lag", "interval_scale_hours"]
    table["scale_winkler"] = table.groupby(scale)["winkler"].transform("mean")
    table = table.sort_values(["scale_winkler", *scale, "coverage_miss", "winkler"], kind="stable").reset_index(drop=True)
    best = table.iloc[0]
    return replace(config, **{name: best[name].item() for name in ["calibration_hours", *scale]}), table


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
