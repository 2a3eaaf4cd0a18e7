"""The whole graph materialized for real: model in effect per hour, forecasts in the bucket."""

import numpy as np
import pandas as pd
import pytest
from dagster import AssetSelection, DagsterInstance

from energy_assets.assets.model import beats_reference_check
from energy_assets.forecasting.model import forecast_reach
from energy_assets.forecasting.training import ForecasterConfig
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.storage.objects import partition_object_key
from energy_assets.definitions import deployment_resources
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    FORECAST_COLUMNS,
    HORIZON,
    ISSUED_AT,
    MODEL_NAME,
    MODEL_VERSION,
    TARGET,
    interval_column,
)
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import HOUR
from energy_assets_tests.graph_helpers import (
    FIRST_ISSUE,
    HISTORY_HOURS,
    RAW_AND_FEATURES,
    partition_key,
    partition_metadata,
    run_range,
)
# Hours up to an issue hour that its forecasts and their intervals read.
FORECAST_REACH = forecast_reach(ForecasterConfig().params())
# What each issue hour's partition of energy_forecasts says of that hour alone.
HOUR_FACTS = {"rows", "series", "registry_version", "data_cutoff", "forecasts_refused", "forecasts_flagged"}
WITHOUT_HISTORY = AssetSelection.assets("forecasting_model", "energy_forecasts") | RAW_AND_FEATURES


def fill_history(instance: DagsterInstance, before: pd.Timestamp = FIRST_ISSUE) -> None:
    run_range(before - HISTORY_HOURS * HOUR, before - HOUR, RAW_AND_FEATURES, instance=instance)


def registered_versions() -> list:
    return deployment_resources()["model_registry"].versions(MODEL_NAME)


@pytest.mark.slow
def test_the_whole_graph_publishes_24_hours_of_forecasts_per_issue_hour():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)

    result = run_range(FIRST_ISSUE, FIRST_ISSUE + 2 * HOUR, instance=instance)

    assert result.success
    forecasts = gather_forecasts(deployment_bucket(), FIRST_ISSUE, FIRST_ISSUE + 2 * HOUR)
    assert list(forecasts.columns) == FORECAST_COLUMNS
    assert len(forecasts) == 3 * 76 * 24
    assert sorted(forecasts[HORIZON].unique()) == list(range(1, 25))
    assert ((forecasts["datetime_utc"] - forecasts[ISSUED_AT]) == forecasts[HORIZON] * HOUR).all()
    assert (forecasts["energy_consumption_forecast"] > 0).all()
    # Every forecast carries its 80 % and 95 % intervals, nested around it.
    point = forecasts["energy_consumption_forecast"]
    lower80, upper80 = forecasts[interval_column("lower", 0.8)], forecasts[interval_column("upper", 0.8)]
    lower95, upper95 = forecasts[interval_column("lower", 0.95)], forecasts[interval_column("upper", 0.95)]
    assert (lower95 <= lower80).all() and (lower80 <= point).all() and (point <= upper80).all() and (upper80 <= upper95).all()
    assert (lower95 < upper95).all()
    assert forecasts[MODEL_VERSION].unique().tolist() == [1]
    keys = deployment_bucket().list_keys("energy_assets/energy_forecasts/")
    assert keys == [
        partition_object_key("energy_assets", ["energy_forecasts"], partition_key(FIRST_ISSUE + n * HOUR)) for n in range(3)
    ]
    metadata = partition_metadata(instance, "energy_forecasts")
    newest = metadata.pop(partition_key(FIRST_ISSUE + 2 * HOUR))
    assert newest["series"].value == 76 and newest["rows"].value == 76 * 24
    assert newest["issue_hours_in_this_run"].value == 3 and newest["rows_in_this_run"].value == 3 * 76 * 24
    assert newest["horizon_range_in_this_run"].value == "1..24"
    assert "data:image/png;base64," in newest["forecast_plot"].value
    # The range's other partitions carry their own hour's facts, and no copy of the run's totals or plot.
    assert len(metadata) == 2
    # Nor the columns, which the definition declares once (before: the written schema on every hour).
    for hour in metadata.values():
        assert set(hour) == HOUR_FACTS
        assert hour["series"].value == 76 and hour["rows"].value == 76 * 24 and hour["registry_version"].value == 1


@pytest.mark.slow
def test_the_model_is_retrained_on_its_cadence_not_every_hour():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)

    result = run_range(FIRST_ISSUE, FIRST_ISSUE + 25 * HOUR, instance=instance)

    models = registered_versions()
    assert [(m.version, m.data_cutoff) for m in models] == [
        (1, FIRST_ISSUE),
        (2, FIRST_ISSUE + 24 * HOUR),
    ]
    # Each is scored by its calibration fit, on 24 hours that fit never saw.
    assert [m.extra["validation_cutoff"] for m in models] == [
        (FIRST_ISSUE - 48 * HOUR).isoformat(),
        (FIRST_ISSUE - 24 * HOUR).isoformat(),
    ]
    with_plot = [m.partition for m in result.asset_materializations_for_node("forecasting_model") if "validation_plot" in m.metadata]
    assert with_plot == [partition_key(FIRST_ISSUE + 25 * HOUR)]  # one copy for the range, on its newest hour
    forecasts = gather_forecasts(deployment_bucket(), FIRST_ISSUE, FIRST_ISSUE + 25 * HOUR)
    versions = forecasts.groupby(ISSUED_AT)[MODEL_VERSION].unique().map(list)
    assert versions[FIRST_ISSUE + 23 * HOUR] == [1]
    assert versions[FIRST_ISSUE + 24 * HOUR] == [2]


@pytest.mark.slow
def test_a_changed_training_configuration_retrains_at_once():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)
    run_range(FIRST_ISSUE, FIRST_ISSUE, instance=instance)
    # A one-hour run (the hourly schedule's) shows its hour's object, its facts and the run's, and the plot.
    hour = partition_metadata(instance, "energy_forecasts")[partition_key(FIRST_ISSUE)]
    assert {"uri", "bytes", *HOUR_FACTS, "issue_hours_in_this_run", "forecast_plot"} <= set(hour)
    assert "schema" not in hour  # the definition declares the columns (dagster/column_schema)
    assert hour["rows"].value == hour["rows_in_this_run"].value == 76 * 24 and hour["registry_version"].value == 1

    shorter_window = {"ops": {"forecasting_model": {"config": {"training_window_days": 20}}}}
    run_range(FIRST_ISSUE + HOUR, FIRST_ISSUE + HOUR, instance=instance, run_config=shorter_window)

    assert [m.data_cutoff for m in registered_versions()] == [FIRST_ISSUE, FIRST_ISSUE + HOUR]


@pytest.mark.slow
def test_the_model_metadata_compares_against_both_baselines():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)

    result = run_range(FIRST_ISSUE, FIRST_ISSUE, AssetSelection.assets("forecasting_model"), instance=instance)

    metadata = result.asset_materializations_for_node("forecasting_model")[0].metadata
    assert metadata["registry_version"].value == 1
    assert metadata["data_cutoff"].value == FIRST_ISSUE.isoformat()
    assert metadata["training_rows"].value > 0
    for name in (
        "model_wape", "model_mape", "model_rmspe", "seasonal_naive_day_mape", "seasonal_naive_week_wape", "seasonal_naive_week_rmspe"
    ):
        assert metadata[name].value > 0
    assert "seasonal naive 168 h" in metadata["validation_scores"].value and "WAPE" in metadata["validation_scores"].value
    assert "data:image/png;base64," in metadata["validation_plot"].value
    assert "learning_rate" in metadata["hyperparameters"].value
    check = next(
        e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    )
    assert check.check_name == "beats_seasonal_naive_168"
    assert check.passed == (metadata["model_wape"].value < metadata["seasonal_naive_week_wape"].value)
    assert check.metadata["judged_on"].value == "wape"


@pytest.mark.slow
def test_each_hour_of_a_ranged_run_names_its_own_model_and_only_the_newest_carries_the_run_figures():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)
    hourly = {"ops": {"forecasting_model": {"config": {"retrain_every_hours": 1}}}}

    result = run_range(FIRST_ISSUE, FIRST_ISSUE + HOUR, AssetSelection.assets("forecasting_model"), instance=instance,
                       run_config=hourly)

    first, newest = sorted(result.asset_materializations_for_node("forecasting_model"), key=lambda m: m.partition)
    # Before, every hour's partition carried the newest model's version and the run's whole metadata.
    assert (first.partition, first.metadata["registry_version"].value) == (partition_key(FIRST_ISSUE), 1)
    assert first.metadata["data_cutoff"].value == FIRST_ISSUE.isoformat()
    assert set(first.metadata) == {"registry_version", "data_cutoff"}
    assert newest.metadata["registry_version"].value == 2
    assert newest.metadata["retrained_in_this_run"].value == [1, 2]
    assert {"hyperparameters", "validation_scores", "validation_plot", "model_wape"} <= set(newest.metadata)


@pytest.mark.slow
def test_each_issue_hour_of_a_ranged_run_names_the_model_that_issued_it_and_only_the_newest_the_run_totals():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)
    hourly = {"ops": {"forecasting_model": {"config": {"retrain_every_hours": 1}}}}

    run_range(FIRST_ISSUE, FIRST_ISSUE + HOUR, instance=instance, run_config=hourly)

    metadata = partition_metadata(instance, "energy_forecasts")
    first, newest = metadata[partition_key(FIRST_ISSUE)], metadata[partition_key(FIRST_ISSUE + HOUR)]
    # Before, both hours said model_versions [1, 2], rows 2 x 76 x 24 and issue_hours 2.
    assert (first["registry_version"].value, newest["registry_version"].value) == (1, 2)
    assert first["data_cutoff"].value == FIRST_ISSUE.isoformat()
    assert newest["data_cutoff"].value == (FIRST_ISSUE + HOUR).isoformat()
    assert first["rows"].value == newest["rows"].value == 76 * 24
    assert set(first) == HOUR_FACTS
    assert newest["registry_versions_in_this_run"].value == [1, 2]
    assert newest["issue_hours_in_this_run"].value == 2 and newest["rows_in_this_run"].value == 2 * 76 * 24
    assert newest["forecasts_refused_in_this_run"].value == newest["forecasts_flagged_in_this_run"].value == 0


def test_a_series_zero_throughout_leaves_the_model_check_judging_the_other_series():
    zero_series = (2, 215)  # the smallest series; a series that consumes nothing passes the input checks
    history = synthetic_consumption(FIRST_ISSUE - HISTORY_HOURS * HOUR, FIRST_ISSUE + HOUR)
    zero = (history[AREA] == zero_series[0]) & (history[CONSUMER_TYPE] == zero_series[1])
    deployment_resources()["feature_store"].insert(history.assign(**{TARGET: history[TARGET].where(~zero, 0.0)}))

    result = run_range(FIRST_ISSUE, FIRST_ISSUE, AssetSelection.assets("forecasting_model"), instance=DagsterInstance.ephemeral())

    # sktime's epsilon rule made the model's MAPE about 1e10 here, and the check failed at every retraining.
    check = next(
        e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    )
    assert check.passed, check.description
    assert check.metadata["model_wape"].value < check.metadata["seasonal_naive_week_wape"].value
    metrics = registered_versions()[0].metrics
    assert all(np.isfinite(value) and value < 1e6 for value in metrics.values()), metrics


def test_too_little_history_fails_with_hours_needed_and_available():
    instance = DagsterInstance.ephemeral()
    run_range(FIRST_ISSUE - 48 * HOUR, FIRST_ISSUE - HOUR, RAW_AND_FEATURES, instance=instance)

    result = run_range(FIRST_ISSUE, FIRST_ISSUE, instance=instance, raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "forecasting_model"
    message = failure.event_specific_data.error.message
    assert str(HISTORY_HOURS) in message and "49" in message
    assert registered_versions() == []


def model_without_newest_features(instance: DagsterInstance) -> pd.Timestamp:
    """Features and a model up to the hour before FIRST_ISSUE, whose features are never materialized."""
    cutoff = FIRST_ISSUE - HOUR
    run_range(cutoff - (HISTORY_HOURS - 1) * HOUR, cutoff, RAW_AND_FEATURES, instance=instance)
    run_range(cutoff, cutoff, AssetSelection.assets("forecasting_model"), instance=instance)
    return cutoff


def step_failure(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    return failures[0].event_specific_data.error.message


def test_forecasting_and_training_on_an_empty_feature_group_both_say_too_little_history(monkeypatch):
    instance = DagsterInstance.ephemeral()
    cutoff = model_without_newest_features(instance)

    monkeypatch.setenv("ENERGY_ASSETS_FEATURE_GROUP_VERSION", "2")  # a version nothing was written to
    forecasts, model = (
        run_range(cutoff, cutoff, AssetSelection.assets(asset), instance=instance, raise_on_error=False)
        for asset in ("energy_forecasts", "forecasting_model")
    )

    first_read = cutoff - (FORECAST_REACH - 1) * HOUR
    assert (
        f"a forecast issued at 2023-01-11 23:00 needs {FORECAST_REACH} hours of history; only 0 available: "
        f"energy_consumption_features has no rows for {first_read:%Y-%m-%d %H:%M} .. 2023-01-11 23:00 ({FORECAST_REACH} h); "
        f"materialize energy_consumption_features for {first_read:%Y-%m-%d-%H:%M}...2023-01-11-23:00 first"
    ) in step_failure(forecasts)
    assert (
        f"needs {HISTORY_HOURS} hours of history; only 0 available; "
        "materialize energy_consumption_features for 2023-01-01-00:00...2023-01-11-23:00 first"
    ) in step_failure(model)


def test_forecasting_an_hour_whose_features_are_missing_names_the_asset_and_hour():
    instance = DagsterInstance.ephemeral()
    model_without_newest_features(instance)

    # The newest hour (its partition grey in the UI): a model is in effect, its features were never materialized.
    forecasts = AssetSelection.assets("energy_forecasts")
    result = run_range(FIRST_ISSUE, FIRST_ISSUE, forecasts, instance=instance, raise_on_error=False)

    read_and_present = min(HISTORY_HOURS, FORECAST_REACH - 1)  # every hour it reads but the issue hour itself
    assert (
        f"a forecast issued at 2023-01-12 00:00 needs {FORECAST_REACH} hours of history; only {read_and_present} available: "
        "energy_consumption_features has no rows for 2023-01-12 00:00; "
        "materialize energy_consumption_features for 2023-01-12-00:00 first"
    ) in step_failure(result)


@pytest.mark.slow
def test_forecasts_without_a_model_in_effect_fail_clearly():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)

    result = run_range(
        FIRST_ISSUE, FIRST_ISSUE, AssetSelection.assets("energy_forecasts"), instance=instance, raise_on_error=False
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize forecasting_model" in failure.event_specific_data.error.message


@pytest.mark.slow
def test_a_single_run_backfill_writes_what_per_partition_runs_write(tmp_path, monkeypatch):
    def publish(home: str, single_run: bool) -> dict[str, bytes]:
        monkeypatch.setenv("ENERGY_ASSETS_HOME", str(tmp_path / home))
        instance = DagsterInstance.ephemeral()
        fill_history(instance)
        if single_run:
            run_range(FIRST_ISSUE, FIRST_ISSUE + 2 * HOUR, instance=instance)
        else:
            for n in range(3):
                run_range(FIRST_ISSUE + n * HOUR, FIRST_ISSUE + n * HOUR, instance=instance)
        bucket = deployment_bucket()
        assert len(bucket.list_keys("energy_assets/energy_forecasts/")) == 3
        keys = [
            partition_object_key("energy_assets", [asset], partition_key(FIRST_ISSUE + n * HOUR))
            for asset in ("consumption_raw", "energy_forecasts")
            for n in range(3)
        ]
        return {key: bucket.read_bytes(key) for key in keys}

    single = publish("single", single_run=True)
    per_partition = publish("per_partition", single_run=False)

    # Raw rows and forecasts of the three issue hours, byte for byte.
    assert len(single) == 6
    assert single == per_partition


@pytest.mark.slow
def test_rerunning_a_partition_replaces_its_object():
    instance = DagsterInstance.ephemeral()
    fill_history(instance)
    run_range(FIRST_ISSUE, FIRST_ISSUE + HOUR, instance=instance)
    bucket = deployment_bucket()
    key = partition_object_key("energy_assets", ["energy_forecasts"], partition_key(FIRST_ISSUE))
    first = pd.read_parquet(bucket.uri(key).removeprefix("file://"))

    run_range(FIRST_ISSUE, FIRST_ISSUE, instance=instance)

    again = pd.read_parquet(bucket.uri(key).removeprefix("file://"))
    assert len(bucket.list_keys("energy_assets/energy_forecasts/")) == 2
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize("hours_late", [0, 360])
def test_the_schedule_targets_the_newest_published_hour(monkeypatch, hours_late):
    from dagster import build_schedule_context

    from energy_assets.definitions import hourly_forecast_job
    from energy_assets.partitions import published_partitions
    from energy_assets.schedules import build_hourly_schedule

    monkeypatch.setenv("ENERGY_ASSETS_PUBLICATION_DELAY_HOURS", str(hours_late))
    now = pd.Timestamp("2023-06-20 10:05", tz="UTC")
    schedule = build_hourly_schedule(hourly_forecast_job, published_partitions(now))

    request = schedule(build_schedule_context(scheduled_execution_time=now.to_pydatetime()))

    expected = now.floor("h") - (hours_late + 1) * HOUR
    assert request.partition_key == partition_key(expected)
    assert schedule.default_status.value == "STOPPED"


def test_a_model_registered_before_wape_is_judged_on_its_mape():
    # As such a version's registry metrics read back: MAPE and RMSPE only.
    before_wape = {"model_mape": 0.05, "model_rmspe": 0.07, "seasonal_naive_week_mape": 0.06, "seasonal_naive_week_rmspe": 0.08}

    passed = beats_reference_check(3, before_wape)
    failed = beats_reference_check(3, {**before_wape, "model_mape": 0.07})

    assert passed.passed and passed.metadata["judged_on"].value == "mape"
    assert not failed.passed and failed.description == "validation MAPE 0.0700 is not below the 168-hour seasonal naive's 0.0600"
    judged_on_wape = beats_reference_check(4, {**before_wape, "model_wape": 0.09, "seasonal_naive_week_wape": 0.08})
    assert not judged_on_wape.passed and judged_on_wape.metadata["judged_on"].value == "wape"
