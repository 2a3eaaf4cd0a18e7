"""The retraining policy: which registered model is in effect at an hour, when to train a new one,
and what a registration records. Plain Python: the registry and feature store come in as protocols."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from energy_assets.forecasting.history_gaps import partition_ranges
from energy_assets.forecasting.provenance import registry_metrics, training_provenance
from energy_assets.forecasting.model import GlobalModel
from energy_assets.forecasting.training import (
    MODEL_FORMAT,
    ForecasterConfig,
    InsufficientHistoryError,
    TrainingResult,
    load_forecaster,
    save_forecaster,
    search_hyperparameters,
    train_forecaster,
)
from energy_assets.schema import DATETIME, MODEL_NAME
from energy_assets.timeline import HOUR

SEARCH_RESULTS_KEY = "hyperparameter_search"
# The saved-model format of a registered version (extra facts); versions without it were saved in format 1.
MODEL_FORMAT_KEY = "model_format"
# The registered version whose members were this version's calibration fit (its kept forecasts are that
# version's forecasts, which issuing reuses).
CALIBRATED_BY_KEY = "calibration_fit_version"
# Random search space around the defaults; sampled `search_candidates` times.
# Tree counts matter most (the model averages over its sizes); Christmas-like periods favour other weights.
SEARCH_GRID: dict[str, list] = {
    "n_estimators": [100, 200, 400],
    "holiday_weight": [0.0, 1.0],
    "num_leaves": [15, 31],
    "min_child_samples": [20, 50],
}


@dataclass(frozen=True)
class RegisteredModel:
    """One registered model version and what it was trained on."""

    name: str
    version: int
    data_cutoff: pd.Timestamp  # newest feature event time used in training (UTC)
    training_start: pd.Timestamp  # oldest feature event time used in training (UTC)
    feature_group_version: int
    config: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # bulky entries may load on first access


def model_in_effect(models: list[RegisteredModel], at: pd.Timestamp | None) -> RegisteredModel | None:
    """The model with the newest data cutoff <= `at` (ties: highest version); None when there is none."""
    candidates = [model for model in models if at is None or model.data_cutoff <= at]
    return max(candidates, key=lambda model: (model.data_cutoff, model.version), default=None)


def model_format(model: RegisteredModel) -> int:
    """The format its files were saved in (1: before formats were recorded)."""
    return int(model.extra.get(MODEL_FORMAT_KEY, 1))


def same_training(model: RegisteredModel, data_cutoff, training_start, feature_group_version: int, config) -> bool:
    """Whether `model` was trained on the same window, feature group and configuration: registering it again adds
    nothing. (The configuration's keys changed with saved-model format 2, so no format-1 version matches one.)"""
    return (
        model.data_cutoff == data_cutoff
        and model.training_start == training_start
        and model.feature_group_version == int(feature_group_version)
        and model.config == json_normal(config)
    )


def training_sha256(model: RegisteredModel) -> str:
    """A content hash of what defines a registered model: the facts `same_training` compares and the hash of the
    rows it was trained on (when its registration recorded them). Registries number versions; this names the
    model, the same in every registry and unchanged by a reset."""
    facts = {
        "data_cutoff": model.data_cutoff.isoformat(),
        "training_start": model.training_start.isoformat(),
        "feature_group_version": int(model.feature_group_version),
        "config": json_normal(model.config),
        "training_rows_sha256": (model.extra.get("training_data") or {}).get("sha256"),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def first_registration(models: list[RegisteredModel], **training) -> RegisteredModel | None:
    """The lowest version among `models` registered for the same training (see `same_training`), if any."""
    matching = [model for model in models if same_training(model, **training)]
    return min(matching, key=lambda model: model.version, default=None)


class Registry(Protocol):
    """What the policy needs of a model registry."""

    def register(self, name: str, model_dir: str | Path, **facts: Any) -> RegisteredModel: ...

    def versions(self, name: str) -> list[RegisteredModel]: ...

    def download(self, model: RegisteredModel) -> Path: ...


@dataclass(frozen=True)
class RetrainingPolicy:
    """How often and on what the model is retrained."""

    training_window_hours: int
    retrain_every_hours: int
    validation_hours: int
    feature_group_version: int
    hyperparameter_search: bool = False
    search_candidates: int = 6
    # Hyperparameters set by the run (by `GlobalLGBMForecaster.get_params()` name): they win over the defaults
    # and over a search's choice.
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if "training_window" in self.hyperparameters:
            raise ValueError("the training window is set in days (training_window_days), not as a hyperparameter")
        ForecasterConfig.from_dict(dict(self.hyperparameters))  # ValueError naming unknown names

    @property
    def training_window_days(self) -> int:
        return self.training_window_hours // 24

    def configured(self, config: ForecasterConfig) -> ForecasterConfig:
        """`config` learning from this policy's window with the run's hyperparameters, whatever it came with."""
        return replace(config, **self.hyperparameters, training_window=self.training_window_hours)

    def read_window(
        self, hours: pd.DatetimeIndex, config: ForecasterConfig = ForecasterConfig()
    ) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) of the feature rows that every training of `hours` with `config` reads."""
        return hours[0] - pd.Timedelta(hours=self.configured(config).read_hours) + HOUR, hours[-1] + HOUR

    def needs_retraining(self, current: RegisteredModel | None, hour: pd.Timestamp, config: ForecasterConfig) -> bool:
        """Whether the model in effect is missing, too old, saved in an older format, or trained with another
        configuration or data."""
        return (
            current is None
            or model_format(current) != MODEL_FORMAT
            or hour - current.data_cutoff >= pd.Timedelta(hours=self.retrain_every_hours)
            or current.config != json_normal(config.to_dict())
            or current.feature_group_version != self.feature_group_version
            or current.extra.get("training_window_days") != self.training_window_days
        )


class CannotTrain(ValueError):
    """No model can be trained for an hour: too little history before it."""


@dataclass
class Retraining:
    """A model this run trained and registered, with its training result."""

    model: RegisteredModel
    result: TrainingResult


@dataclass
class ModelsInEffect:
    """The model in effect at each hour of a range, and the retrainings that made them."""

    by_hour: dict[pd.Timestamp, RegisteredModel]
    retrainings: list[Retraining]

    @property
    def latest(self) -> RegisteredModel:
        return self.by_hour[max(self.by_hour)]


def best_known_config(registered: list[RegisteredModel]) -> ForecasterConfig:
    """The configuration of the newest model of this format that came out of a search, else the defaults."""
    searched = [model for model in registered if SEARCH_RESULTS_KEY in model.extra and model_format(model) == MODEL_FORMAT]
    if not searched:
        return ForecasterConfig()
    return ForecasterConfig.from_dict(max(searched, key=lambda model: model.version).config)


def keep_models_in_effect(
    hours: pd.DatetimeIndex,
    history: pd.DataFrame,
    registry: Registry,
    policy: RetrainingPolicy,
    data_source: Callable[[pd.Timestamp, pd.Timestamp], Mapping[str, Any]],
    log: Callable[[str], None] = lambda message: None,
) -> ModelsInEffect:
    """For each hour, the model in effect, training and registering one where the policy says so.

    `history` holds the feature rows of `policy.read_window(hours)`; `data_source(start, end)` names where
    a read of that window comes from, for the model's provenance.
    """
    registered = registry.versions(MODEL_NAME)
    config = policy.configured(best_known_config(registered))
    by_hour: dict[pd.Timestamp, RegisteredModel] = {}
    retrainings: list[Retraining] = []
    fitted: dict[str, tuple[RegisteredModel, GlobalModel]] = {}  # by members digest: this run's models
    for hour in hours:
        current = model_in_effect(registered, hour)
        if policy.needs_retraining(current, hour, config):
            window = pd.Timedelta(hours=config.read_hours)
            rows = history[(history[DATETIME] > hour - window) & (history[DATETIME] <= hour)]
            read_start, read_end = hour - window + HOUR, hour + HOUR
            provenance = training_provenance(rows, data_source(read_start, read_end), read_start, read_end)
            search_results = None
            if policy.hyperparameter_search:
                config, search_results = search_hyperparameters(
                    rows, hour, SEARCH_GRID, n_iter=policy.search_candidates, base=config
                )
            known = {model.version for model, _ in fitted.values()}
            earlier = {**_calibration_candidates(registry, registered, hour, config, policy, known), **fitted}
            try:
                result = train_forecaster(rows, hour, config, policy.validation_hours, [m for _, m in earlier.values()])
            except InsufficientHistoryError as too_short:
                reason = _too_short(too_short, hour, rows)
                raise CannotTrain(f"cannot train the model for {hour.isoformat()}: {reason}") from too_short
            kept = result.kept_forecasts
            calibrated_by = earlier[kept.maker][0] if kept is not None and kept.maker in earlier else None
            current = register(registry, result, policy, search_results, provenance, calibrated_by)
            fitted[result.model.digest] = (current, result.model)
            registered.append(current)
            retrainings.append(Retraining(current, result))
            log(f"registered {MODEL_NAME} v{current.version} trained up to {hour.isoformat()}")
        by_hour[hour] = current
    return ModelsInEffect(by_hour, retrainings)


def _too_short(error: InsufficientHistoryError, hour: pd.Timestamp, rows: pd.DataFrame) -> str:
    """The error, and the feature partitions to materialize when some hours it needs have no row at all."""
    needed = pd.date_range(hour - (error.needed - 1) * HOUR, hour, freq=HOUR)
    absent = needed.difference(pd.DatetimeIndex(rows[DATETIME].unique()))
    if not len(absent):
        return str(error)
    return f"{error}; materialize energy_consumption_features for {partition_ranges(absent)} first"


def _calibration_candidates(
    registry: Registry,
    registered: list[RegisteredModel],
    hour: pd.Timestamp,
    config: ForecasterConfig,
    policy: RetrainingPolicy,
    loaded: set[int],
) -> dict[str, tuple[RegisteredModel, GlobalModel]]:
    """The registered models (by members digest) that may be the calibration fit of a training up to `hour`:
    trained `calibration_hours` before it with this configuration, feature group and format, loaded unless
    their version is in `loaded`. The fit takes one only if it learned from the very points (`members_digest`)."""
    cutoff = hour - pd.Timedelta(hours=config.calibration_hours)
    candidates = {}
    for model in registered:
        if (
            model.version not in loaded
            and model.data_cutoff == cutoff
            and model_format(model) == MODEL_FORMAT
            and model.config == json_normal(config.to_dict())
            and model.feature_group_version == policy.feature_group_version
        ):
            candidate = load_forecaster(registry.download(model))
            candidates[candidate.digest] = (model, candidate)
    return candidates


def register(
    registry: Registry,
    result: TrainingResult,
    policy: RetrainingPolicy,
    search_results: pd.DataFrame | None,
    provenance: dict,
    calibrated_by: RegisteredModel | None = None,
) -> RegisteredModel:
    """Save the trained model (with the calibration forecasts it keeps) and register it with what it was
    trained on and validated by, and the version whose members were its calibration fit."""
    extra = {
        MODEL_FORMAT_KEY: MODEL_FORMAT,
        "training_data": provenance,
        # Newest row of the fit that forecast the validation window (the model's calibration fit, or one
        # before the window): it never saw a validated hour.
        "validation_cutoff": result.validation_cutoff.isoformat(),
        "training_rows": result.training_rows,
        "training_window_days": policy.training_window_days,
        "excluded_series": result.excluded_series.to_dict(orient="records"),
        # Rows left out of the fit because their features read a missing hour, per series (`history_gaps`).
        "training_rows_left_out": int(result.training_gaps["rows_left_out"].sum()),
        "training_gaps": result.training_gaps.to_dict(orient="records"),
    }
    if calibrated_by is not None:
        extra[CALIBRATED_BY_KEY] = calibrated_by.version
    if search_results is not None:
        extra[SEARCH_RESULTS_KEY] = search_results.to_dict(orient="records")
    with tempfile.TemporaryDirectory() as model_dir:
        save_forecaster(result, model_dir)
        return registry.register(
            MODEL_NAME,
            model_dir,
            data_cutoff=result.data_cutoff,
            training_start=result.training_start,
            feature_group_version=policy.feature_group_version,
            config=json_normal(result.config.to_dict()),
            metrics=registry_metrics(result.validation_metrics),
            extra=json_normal(extra),
        )


def json_normal(value):
    """The value as it reads back from JSON, so stored and fresh configurations compare equal."""
    return json.loads(json.dumps(value, default=str))
