"""Model options in real runs: hyperparameter search kept and reused, one booster or two, short series left out and named."""

import pandas as pd
import pytest
from dagster import AssetSelection, DagsterInstance

from energy_assets.forecasting.training import ForecasterConfig, load_forecaster, min_training_hours
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.definitions import deployment_resources
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.schema import DATETIME, MODEL_NAME, SERIES_KEY
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import HOUR
from energy_assets_tests.graph_helpers import FIRST_ISSUE as ISSUE
from energy_assets_tests.graph_helpers import HISTORY_HOURS, RAW_AND_FEATURES, run_range

MODEL_AND_FORECASTS = AssetSelection.assets("forecasting_model", "energy_forecasts")


@pytest.mark.slow
def test_a_hyperparameter_search_is_kept_and_later_retrains_use_its_best_configuration():
    instance = DagsterInstance.ephemeral()
    search_history = min_training_hours(ForecasterConfig()) + 4 * 24
    run_range(ISSUE - search_history * HOUR, ISSUE + HOUR, RAW_AND_FEATURES, instance=instance)
    search = {"ops": {"forecasting_model": {"config": {"hyperparameter_search": True, "search_candidates": 2}}}}

    result = run_range(ISSUE, ISSUE, AssetSelection.assets("forecasting_model"), instance=instance, run_config=search)
    run_range(ISSUE + HOUR, ISSUE + HOUR, AssetSelection.assets("forecasting_model"), instance=instance)

    models = deployment_resources()["model_registry"].versions(MODEL_NAME)
    assert len(models) == 1, "the next hour reuses the searched model instead of retraining with defaults"
    trials = pd.DataFrame(models[0].extra["hyperparameter_search"])
    assert len(trials) == 2 and trials["wape"].is_monotonic_increasing
    best = trials.iloc[0]
    assert models[0].config != ForecasterConfig().to_dict()
    assert models[0].config["num_leaves"] == best["num_leaves"]
    assert models[0].config["n_estimators"] == best["n_estimators"]
    metadata = result.asset_materializations_for_node("forecasting_model")[0].metadata
    assert "wape" in metadata["hyperparameter_search"].value


@pytest.mark.slow
def test_the_run_config_chooses_one_booster_and_a_change_of_mind_retrains():
    instance = DagsterInstance.ephemeral()
    run_range(ISSUE - HISTORY_HOURS * HOUR, ISSUE + HOUR, RAW_AND_FEATURES, instance=instance)
    one_booster = {"ops": {"forecasting_model": {"config": {"hyperparameters": {"combine_without_level_lags": False}}}}}

    run_range(ISSUE, ISSUE, AssetSelection.assets("forecasting_model"), instance=instance, run_config=one_booster)
    run_range(ISSUE + HOUR, ISSUE + HOUR, AssetSelection.assets("forecasting_model"), instance=instance)

    registry = deployment_resources()["model_registry"]
    first, second = registry.versions(MODEL_NAME)
    assert first.config["combine_without_level_lags"] is False
    assert len(load_forecaster(registry.download(first)).members) == 1
    # The default run config asks for both members: the model in effect no longer matches, so it retrains.
    assert second.config == ForecasterConfig().to_dict()
    assert len(load_forecaster(registry.download(second)).members) == 2


@pytest.mark.slow
def test_series_with_too_little_history_are_left_out_and_named():
    rows = synthetic_consumption(ISSUE - (HISTORY_HOURS - 1) * HOUR, ISSUE + HOUR)
    young = (rows["area"] == 2) & (rows["consumer_type"] == 999)
    rows = rows[~young | (rows[DATETIME] > ISSUE - 100 * HOUR)]
    deployment_resources()["feature_store"].process_config_and_initialize().insert(rows)

    result = run_range(ISSUE, ISSUE, MODEL_AND_FORECASTS)

    metadata = result.asset_materializations_for_node("forecasting_model")[0].metadata
    assert "999" in metadata["excluded_series"].value
    forecasts = gather_forecasts(deployment_bucket(), ISSUE, ISSUE)
    series = set(map(tuple, forecasts[SERIES_KEY].drop_duplicates().to_numpy()))
    assert len(series) == 75 and (2, 999) not in series
