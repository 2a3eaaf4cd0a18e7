"""The retraining policy without Dagster: which model is in effect, when a new one is trained."""

from __future__ import annotations

from dataclasses import replace

import lightgbm as lgb
import pandas as pd
import pytest

from energy_assets.forecasting import members as members_module
from energy_assets.forecasting.issuing import CannotForecast, issue_forecasts, models_for
from energy_assets.forecasting.retraining import (
    CALIBRATED_BY_KEY,
    MODEL_FORMAT_KEY,
    CannotTrain,
    RegisteredModel,
    RetrainingPolicy,
    keep_models_in_effect,
    model_in_effect,
)
from energy_assets.forecasting.training import (
    MODEL_FORMAT,
    TRAINING_READ_HOURS,
    ForecasterConfig,
    SavedModelFormatError,
    load_forecaster,
    save_forecaster,
    train_forecaster,
)
from energy_assets.schema import MODEL_NAME
from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import HOUR
from energy_assets_tests.test_forecast_training import as_format_2, format_2_config

POLICY = RetrainingPolicy(training_window_hours=720, retrain_every_hours=24, validation_hours=24, feature_group_version=1)
SMALL = ForecasterConfig(n_estimators=20)


def model(version: int, cutoff: str, config=None) -> RegisteredModel:
    return RegisteredModel(
        name="m", version=version, data_cutoff=pd.Timestamp(cutoff, tz="UTC"), training_start=pd.Timestamp(cutoff, tz="UTC"),
        feature_group_version=1, config=config or ForecasterConfig().to_dict(),
        extra={"training_window_days": 30, MODEL_FORMAT_KEY: MODEL_FORMAT},
    )


def test_model_in_effect_is_the_newest_cutoff_at_or_before_the_hour_ties_to_the_highest_version():
    models = [model(1, "2023-01-01 00:00"), model(2, "2023-01-02 00:00"), model(3, "2023-01-02 00:00")]
    assert model_in_effect(models, pd.Timestamp("2023-01-01 23:00", tz="UTC")).version == 1
    assert model_in_effect(models, pd.Timestamp("2023-01-02 00:00", tz="UTC")).version == 3
    assert model_in_effect(models, pd.Timestamp("2022-12-31 23:00", tz="UTC")) is None


@pytest.mark.parametrize(
    ("current", "hours_later", "config", "expected"),
    [
        (None, 0, ForecasterConfig(), True),
        (model(1, "2023-01-01 00:00"), 23, ForecasterConfig(), False),
        (model(1, "2023-01-01 00:00"), 24, ForecasterConfig(), True),
        (model(1, "2023-01-01 00:00"), 1, SMALL, True),
    ],
)
def test_retraining_is_due_when_missing_old_or_configured_otherwise(current, hours_later, config, expected):
    hour = pd.Timestamp("2023-01-01 00:00", tz="UTC") + hours_later * HOUR
    assert POLICY.needs_retraining(current, hour, config) is expected


@pytest.mark.slow
def test_a_range_trains_once_per_day_and_reuses_in_between(tmp_path):
    registry = LocalModelRegistry(root_dir=str(tmp_path))
    first = pd.Timestamp("2023-01-20 00:00", tz="UTC")
    hours = pd.date_range(first, periods=30, freq="h")
    history = synthetic_consumption(*POLICY.read_window(hours))
    sources = []

    models = keep_models_in_effect(hours, history, registry, POLICY, lambda start, end: sources.append((start, end)) or {})

    assert [retraining.model.version for retraining in models.retrainings] == [1, 2]
    assert {hour: m.version for hour, m in models.by_hour.items()} == {h: 1 if h < first + 24 * HOUR else 2 for h in hours}
    # Each reads its 720-hour window and the 48 hours before it that its calibration fit learns from.
    assert TRAINING_READ_HOURS == 768
    assert sources == [(h - 767 * HOUR, h + HOUR) for h in (first, first + 24 * HOUR)]
    assert models.latest.extra["training_data"]["rows"] == 768 * 76  # that read, not all the history passed in
    assert models.latest.extra["training_rows"] == 720 * 76  # the model learned from its window
    # Validated by its calibration fit, on rows up to 48 hours before its cutoff.
    assert models.latest.extra["validation_cutoff"] == (first + (24 - 48) * HOUR).isoformat()


def test_too_little_history_names_the_hour(tmp_path):
    hour = pd.Timestamp("2023-01-20 00:00", tz="UTC")
    history = synthetic_consumption(hour - 10 * HOUR, hour + HOUR)
    with pytest.raises(CannotTrain, match="cannot train the model for 2023-01-20T00:00:00\\+00:00"):
        keep_models_in_effect(pd.DatetimeIndex([hour]), history, LocalModelRegistry(root_dir=str(tmp_path)), POLICY, lambda s, e: {})




FAST_POLICY = replace(POLICY, hyperparameters={"n_estimators": 20})


def counting(monkeypatch, module, name: str) -> list:
    calls, original = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    return calls


def test_a_retraining_takes_its_calibration_fit_from_the_model_registered_48_hours_before(tmp_path, monkeypatch):
    registry = LocalModelRegistry(root_dir=str(tmp_path))
    first = pd.Timestamp("2023-01-20 00:00", tz="UTC")
    later = first + 48 * HOUR
    history = synthetic_consumption(*FAST_POLICY.read_window(pd.DatetimeIndex([first, later])))
    # Versions 1 and 2, trained 48 and 24 hours before.
    keep_models_in_effect(pd.DatetimeIndex([first, first + 24 * HOUR]), history, registry, FAST_POLICY, lambda s, e: {})
    fits = counting(monkeypatch, members_module.lgb, "train")

    # Another run, as the hourly schedule starts one: the model of 48 hours before is in the registry only.
    models = keep_models_in_effect(pd.DatetimeIndex([later]), history, registry, FAST_POLICY, lambda s, e: {})

    assert len(fits) == 2  # the new model's two members; the calibration fit is version 1's
    assert models.latest.extra[CALIBRATED_BY_KEY] == 1
    refitted = train_forecaster(history, later, FAST_POLICY.configured(ForecasterConfig()))
    assert len(fits) == 2 + 4
    assert models.retrainings[0].result.validation_metrics == refitted.validation_metrics


def test_issued_forecasts_reuse_the_calibration_forecasts_a_later_version_kept(tmp_path, monkeypatch):
    registry = LocalModelRegistry(root_dir=str(tmp_path))
    hours = pd.date_range("2023-01-20 00:00", periods=49, freq="h", tz="UTC")
    history = synthetic_consumption(hours[0] - 800 * HOUR, hours[-1] + HOUR)
    keep_models_in_effect(hours, history, registry, FAST_POLICY, lambda s, e: {})
    registered = registry.versions(MODEL_NAME)
    assert [m.extra.get(CALIBRATED_BY_KEY) for m in registered] == [None, None, 1]  # the third calibrated by the first
    origins = hours[:24]  # version 1 in effect
    models = models_for(origins, registered)
    expected, _ = issue_forecasts(models, history, registry.download)
    predictions = counting(monkeypatch, lgb.Booster, "predict")

    reused, _ = issue_forecasts(models, history, registry.download, registered)

    pd.testing.assert_frame_equal(reused, expected)  # byte-identical
    assert predictions == []  # every origin's forecasts were kept with version 3


@pytest.mark.parametrize("old_format", [1, 2])
def test_a_model_in_effect_saved_in_an_older_format_is_retrained_and_refused_for_forecasts(tmp_path, old_format):
    registry = LocalModelRegistry(root_dir=str(tmp_path))
    hour = pd.Timestamp("2023-01-20 00:00", tz="UTC")
    old_files = tmp_path / f"format_{old_format}"
    config, extra = {**ForecasterConfig().to_dict(), "training_window_hours": 720}, {"training_window_days": 30}
    if old_format == 1:  # sktime's zip of the pickled estimator, registered without a format
        old_files.mkdir()
        (old_files / "forecaster.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    else:  # the folder, configuration and format key main at d5305c3 registered
        history = synthetic_consumption(hour - 400 * HOUR, hour)
        pooled = replace(SMALL, interval_series_prior_hours=None)  # format 2 had no per-series widths
        save_forecaster(train_forecaster(history, hour - HOUR, pooled), old_files)
        as_format_2(old_files)
        config = {**format_2_config(ForecasterConfig()), "training_window_hours": 720}
        extra[MODEL_FORMAT_KEY] = 2
    old = registry.register(
        MODEL_NAME, old_files, data_cutoff=hour - HOUR, training_start=hour - 720 * HOUR, feature_group_version=1,
        config=config, metrics={}, extra=extra,
    )
    with pytest.raises(CannotForecast, match=r"versions \[1\] in effect .* older format.*: retrain them"):
        models_for(pd.DatetimeIndex([hour]), [old])
    with pytest.raises(SavedModelFormatError, match=f"format {old_format}.*retrain it"):
        load_forecaster(registry.download(old))

    history = synthetic_consumption(*FAST_POLICY.read_window(pd.DatetimeIndex([hour])))
    models = keep_models_in_effect(pd.DatetimeIndex([hour]), history, registry, FAST_POLICY, lambda s, e: {})

    assert models.latest.version == 2 and models.latest.extra[MODEL_FORMAT_KEY] == MODEL_FORMAT
    assert models_for(pd.DatetimeIndex([hour]), registry.versions(MODEL_NAME))[hour].version == 2
    assert [model.version for model in registry.versions(MODEL_NAME)] == [1, 2]  # the old version is kept
