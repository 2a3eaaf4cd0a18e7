"""forecast_accuracy and its rolling summary materialized for real: waiting for actuals, automation, the check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    evaluate_automation_conditions,
    materialize,
)

from energy_assets.assets.monitoring import COVERAGE_CHECK, READABLE_CHECK, ROLLING_CHECK
from energy_assets.definitions import defs
from energy_assets.monitoring.accuracy import OVERALL, PER_HORIZON, PER_SERIES, SCOPE
from energy_assets.storage.objects import parquet_bytes, partition_object_key, read_frame
from energy_assets.definitions import deployment_resources
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.schema import AREA, FORECAST_SCHEMA, INTERVAL_COLUMNS, ISSUED_AT, MODEL_VERSION, conform
from energy_assets_tests.test_monitoring import with_bounds_covering
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, partition_key, partition_metadata, run_range

START, H0 = hour("2022-12-01 00:00"), hour("2022-12-12 00:00")
# Each module run trains a model and materializes the graph up to the forecasts before its first test.
pytestmark = pytest.mark.slow

ACCURACY = AssetKey("forecast_accuracy")
SUMMARY = AssetKey("forecast_accuracy_summary")
ACCURACY_FOLDER = "energy_assets/forecast_accuracy/"


def after(hours: int) -> pd.Timestamp:
    return H0 + pd.Timedelta(hours=hours)


def materialized(result: ExecuteInProcessResult, key: AssetKey) -> list[str]:
    return sorted(event.partition for event in result.get_asset_materialization_events() if event.asset_key == key)


def actuals_arrive(first: int, last: int, instance: DagsterInstance) -> None:
    """The hours after H0 from `first` to `last` go through consumption_raw and the feature group."""
    run_range(after(first), after(last), RAW_AND_FEATURES, instance=instance)


@pytest.fixture(scope="module")
def trained_state(tmp_path_factory) -> Path:
    """A feature group that ends at H0+1 and the model in effect at H0, trained once for the module."""
    home = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ENERGY_ASSETS_HOME", str(home))
        env.delenv("ENERGY_ASSETS_DEPLOYMENT", raising=False)
        deployment_resources()["feature_store"].insert(synthetic_consumption(START, after(2)))
        run_range(H0, H0, AssetSelection.assets("forecasting_model"), instance=DagsterInstance.ephemeral())
    return home


@pytest.fixture
def instance(trained_state, isolated_state) -> DagsterInstance:
    """Forecasts issued at H0 and H0+1, from a feature group that ends at H0+1: no actual yet."""
    shutil.copytree(trained_state, isolated_state)
    instance = DagsterInstance.ephemeral()
    run_range(H0, after(1), AssetSelection.assets("energy_forecasts"), instance=instance)
    return instance


def test_accuracy_waits_for_all_its_actuals_then_the_automation_requests_it(instance):
    accuracy = AssetSelection.assets(ACCURACY, SUMMARY)

    first = evaluate_automation_conditions(defs, instance, asset_selection=accuracy)
    actuals_arrive(1, 23, instance)
    almost = evaluate_automation_conditions(defs, instance, asset_selection=accuracy, cursor=first.cursor)
    actuals_arrive(24, 24, instance)
    complete = evaluate_automation_conditions(defs, instance, asset_selection=accuracy, cursor=almost.cursor)

    assert first.total_requested == 0
    assert almost.total_requested == 0
    assert complete.get_requested_partitions(ACCURACY) == {partition_key(H0)}

    result = run_range(H0, H0, AssetSelection.assets(ACCURACY), instance=instance)
    after_run = evaluate_automation_conditions(defs, instance, asset_selection=accuracy, cursor=complete.cursor)
    actuals_arrive(25, 25, instance)
    next_hour = evaluate_automation_conditions(defs, instance, asset_selection=accuracy, cursor=after_run.cursor)

    assert materialized(result, ACCURACY) == [partition_key(H0)]
    assert after_run.get_requested_partitions(SUMMARY) == {None}
    assert after_run.get_num_requested(ACCURACY) == 0
    assert next_hour.get_requested_partitions(ACCURACY) == {partition_key(after(1))}


def test_hours_already_scorable_when_automation_is_switched_on_are_requested_at_once(instance):
    actuals_arrive(1, 24, instance)

    first = evaluate_automation_conditions(defs, instance, asset_selection=AssetSelection.assets(ACCURACY))

    assert first.get_requested_partitions(ACCURACY) == {partition_key(H0)}


def test_an_hour_without_its_actuals_is_skipped_not_failed(instance):
    result = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)

    assert result.success
    assert materialized(result, ACCURACY) == []
    assert deployment_bucket().list_keys(ACCURACY_FOLDER) == []


def test_a_range_with_only_some_actuals_fails_naming_the_hours_and_writes_nothing(instance):
    actuals_arrive(1, 24, instance)

    result = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance, raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "2022-12-12T01:00:00+00:00" in failure.event_specific_data.error.message
    assert deployment_bucket().list_keys(ACCURACY_FOLDER) == []


def test_a_range_is_stored_as_one_tidy_object_per_issue_hour(instance):
    actuals_arrive(1, 25, instance)

    result = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)

    assert materialized(result, ACCURACY) == [partition_key(H0), partition_key(after(1))]
    bucket = deployment_bucket()
    keys = bucket.list_keys(ACCURACY_FOLDER)
    assert keys == [partition_object_key("energy_assets", ["forecast_accuracy"], partition_key(hour)) for hour in (H0, after(1))]
    stored = read_frame(bucket, keys[1:])
    assert set(stored[ISSUED_AT]) == {after(1)}
    sizes = stored.groupby(["model", SCOPE]).size().unstack(SCOPE)
    assert sizes.index.tolist() == ["model", "snaive168", "snaive24"]
    assert sizes[[OVERALL, PER_HORIZON, PER_SERIES]].values.tolist() == [[1, 24, 76]] * 3


def summary_check(result: ExecuteInProcessResult, name: str = ROLLING_CHECK):
    return next(
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == name
    )


def summarize(instance: DagsterInstance) -> ExecuteInProcessResult:
    return materialize(list(defs.assets), selection=[SUMMARY], resources=deployment_resources(), instance=instance)


def rewrite_stored_forecasts(change, issue_hours: tuple[pd.Timestamp, ...] = (H0, after(1))) -> None:
    """Replaces the forecast objects of `issue_hours` in the bucket with `change(frame)` (an arrow table)."""
    bucket = deployment_bucket()
    for issued in issue_hours:
        key = partition_object_key("energy_assets", ["energy_forecasts"], partition_key(issued))
        bucket.write_bytes(key, parquet_bytes(change(read_frame(bucket, [key]))))


def stored_with_coverage(covered: dict[float, float]):
    """A `rewrite_stored_forecasts` change: bounds whose empirical coverage is `covered[level]` of the actuals."""
    actuals = deployment_resources()["feature_store"].read(after(1), after(26))
    return lambda frame: conform(with_bounds_covering(frame, actuals, covered), FORECAST_SCHEMA, "forecasts")


def test_the_summary_shows_the_window_and_warns_above_the_threshold(instance):
    actuals_arrive(1, 25, instance)
    run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)

    calm = materialize(list(defs.assets), selection=[SUMMARY], resources=deployment_resources(), instance=instance)
    strict = materialize(
        list(defs.assets),
        selection=[SUMMARY],
        resources=deployment_resources(),
        instance=instance,
        run_config={"ops": {"forecast_accuracy_summary": {"config": {"wape_threshold": 0.001, "window_days": 1}}}},
    )

    metadata = calm.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["issue_hours"].value == 2
    assert metadata["window"].value == "2022-12-12T00:00:00+00:00 ... 2022-12-12T01:00:00+00:00"
    assert metadata["wape_over_time"].value.startswith("![WAPE per issue hour](data:image/png;base64,")
    assert metadata["worst_series"].value.count("\n") == 11  # header, rule and ten series
    assert metadata["model_wape"].value < 0.10 and metadata["snaive168_wape"].value < 0.10
    assert metadata["model_mape"].value < 0.10 and metadata["issue_hours_before_wape"].value == 0
    # Two issue hours of a model trained on 11 days are too few to say which is better (over a week of
    # synthetic data the model wins): the check passes exactly when the model does.
    assert summary_check(calm).passed == (metadata["model_wape"].value <= metadata["snaive168_wape"].value)
    assert summary_check(calm).metadata["judged_on"].value == "wape"
    # The model's own split-conformal bounds are stored and scored.
    assert 0 <= metadata["model_coverage_80"].value <= metadata["model_coverage_95"].value <= 1
    assert summary_check(calm, COVERAGE_CHECK).metadata["forecasts_with_bounds"].value == 2 * 24 * 76
    assert strict.success
    warning = summary_check(strict)
    assert not warning.passed and warning.severity == AssetCheckSeverity.WARN
    assert "model WAPE" in warning.description and "exceeds the threshold 0.10%" in warning.description


def test_a_zero_actual_is_scored_by_the_rule_and_stores_no_implausible_score(instance):
    actuals_arrive(1, 25, instance)
    feature_store = deployment_resources()["feature_store"]
    zero = feature_store.read(after(5), after(6))
    small = zero[(zero["area"] == 2) & (zero["consumer_type"] == 215)]  # the smallest synthetic series
    feature_store.insert(small.assign(energy_consumption=0.0))

    scored = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)
    result = summarize(instance)

    stored = read_frame(deployment_bucket(), deployment_bucket().list_keys(ACCURACY_FOLDER))
    scores = stored[["wape", "mape", "rmspe", "mae", "winkler_80", "winkler_95"]]
    # sktime's epsilon rule stored a MAPE of about 1e17 for each of these hours.
    assert stored[["wape", "mape", "rmspe", "mae"]].notna().all().all() and (scores.fillna(0) < 1e6).all().all()
    assert stored.loc[stored["model"] == "model", ["winkler_80", "winkler_95"]].notna().all().all()
    assert (stored.loc[stored[SCOPE] == OVERALL, "zero_actuals"] == 1).all()
    accuracy_metadata = scored.get_asset_materialization_events()[-1].materialization.metadata
    assert accuracy_metadata["model_mape"].value < 0.2 and accuracy_metadata["model_wape"].value < 0.2
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["model_mape"].value < 0.2 and summary_check(result).metadata["zero_actuals"].value == 2


def test_accuracy_objects_written_before_wape_still_summarize_beside_new_ones(instance):
    actuals_arrive(1, 25, instance)
    run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)
    bucket = deployment_bucket()
    old_key = partition_object_key("energy_assets", ["forecast_accuracy"], partition_key(H0))
    # As the code before WAPE wrote it: no wape, mae, mean_actual, zero_actuals.
    written_before = read_frame(bucket, [old_key]).drop(columns=["wape", "mae", "mean_actual", "zero_actuals"])
    bucket.write_bytes(old_key, parquet_bytes(pa.Table.from_pandas(written_before, preserve_index=False)))

    result = summarize(instance)

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["issue_hours"].value == 2 and metadata["issue_hours_before_wape"].value == 1
    assert 0 < metadata["model_wape"].value < 0.10 and 0 < metadata["model_mape"].value < 0.10
    assert summary_check(result).metadata["judged_on"].value == "wape"


def test_the_summary_without_any_accuracy_fails_saying_what_to_materialize(instance):
    result = materialize(
        list(defs.assets), selection=[SUMMARY], resources=deployment_resources(), instance=instance, raise_on_error=False
    )

    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize forecast_accuracy first" in failure.event_specific_data.error.message


def test_the_coverage_check_passes_on_calibrated_stored_intervals_and_warns_on_miscalibrated_ones(instance):
    actuals_arrive(1, 25, instance)
    rewrite_stored_forecasts(stored_with_coverage({0.8: 0.8, 0.95: 0.95}))
    scored = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)
    calibrated = summarize(instance)
    rewrite_stored_forecasts(stored_with_coverage({0.8: 0.6, 0.95: 0.85}))
    run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)
    miscalibrated = summarize(instance)

    accuracy_metadata = scored.get_asset_materialization_events()[-1].materialization.metadata
    assert accuracy_metadata["model_coverage_80"].value == pytest.approx(0.8, abs=0.002)
    assert accuracy_metadata["model_coverage_95"].value == pytest.approx(0.95, abs=0.002)
    assert "coverage_95" in accuracy_metadata["scores"].value
    summary_metadata = calibrated.get_asset_materialization_events()[0].materialization.metadata
    assert summary_metadata["model_coverage_80"].value == pytest.approx(0.8, abs=0.002)
    passed = summary_check(calibrated, COVERAGE_CHECK)
    assert passed.passed and passed.description is None
    assert passed.metadata["model_coverage_95"].value == pytest.approx(0.95, abs=0.002)
    warning = summary_check(miscalibrated, COVERAGE_CHECK)
    assert miscalibrated.success
    assert not warning.passed and warning.severity == AssetCheckSeverity.WARN
    assert "the 80% interval covered 60." in warning.description and "the 95% interval covered 85." in warning.description
    # Miscalibrated bounds leave the point-accuracy check as it was: the point forecasts did not change.
    assert summary_check(miscalibrated).passed == summary_check(calibrated).passed


def issued_by(version: int, covered: dict[float, float]):
    """A `rewrite_stored_forecasts` change: forecasts issued by registry version `version`, covered as `covered`."""
    with_coverage = stored_with_coverage(covered)
    return lambda frame: with_coverage(frame.assign(**{MODEL_VERSION: version}))


def stored_model_scores(issued: pd.Timestamp) -> pd.Series:
    """The model's overall scores at `issued`, as its accuracy object holds them."""
    bucket = deployment_bucket()
    stored = read_frame(bucket, [partition_object_key("energy_assets", ["forecast_accuracy"], partition_key(issued))])
    return stored[(stored["model"] == "model") & (stored[SCOPE] == OVERALL)].iloc[0]


# What an issue hour's partition says of that hour; a one-hour run shows these and the run's totals.
ACCURACY_HOUR_FACTS = {"registry_version", "scores", "model_wape", "model_coverage_80", "intervals_per_series"}
ACCURACY_RUN_TOTALS = {"issue_hours_in_this_run", "registry_versions_in_this_run", "model_coverage_80_in_this_run"}


def test_each_issue_hour_of_a_ranged_run_shows_its_own_scores_and_only_the_newest_the_run_totals(instance):
    actuals_arrive(1, 25, instance)
    # H0's forecasts issued by version 1 with an 80 % interval covering 60 %, H0+1's by version 2 covering 90 %.
    rewrite_stored_forecasts(issued_by(1, {0.8: 0.6, 0.95: 0.95}), (H0,))
    rewrite_stored_forecasts(issued_by(2, {0.8: 0.9, 0.95: 0.95}), (after(1),))

    run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)

    metadata = partition_metadata(instance, "forecast_accuracy")
    first, newest = metadata[partition_key(H0)], metadata[partition_key(after(1))]
    # Before, both hours said model_versions [1, 2], H0+1's WAPE and a coverage of 75 % pooled over the run.
    for hour_metadata, issued in ((first, H0), (newest, after(1))):
        stored = stored_model_scores(issued)
        assert hour_metadata["model_wape"].value == pytest.approx(stored["wape"])
        assert hour_metadata["model_mape"].value == pytest.approx(stored["mape"])
        assert f"{stored['wape']:.4f}" in hour_metadata["scores"].value
    assert first["model_wape"].value != newest["model_wape"].value
    assert (first["registry_version"].value, newest["registry_version"].value) == (1, 2)
    assert first["model_coverage_80"].value == pytest.approx(0.6, abs=0.002)
    assert first["model_series_median_coverage_80"].value == pytest.approx(0.6, abs=1 / 24)
    assert newest["model_coverage_80"].value == pytest.approx(0.9, abs=0.002)
    assert ACCURACY_HOUR_FACTS <= set(first) and not [name for name in first if name.endswith("_in_this_run")]
    assert newest["issue_hours_in_this_run"].value == 2 and newest["registry_versions_in_this_run"].value == [1, 2]
    assert newest["model_coverage_80_in_this_run"].value == pytest.approx(0.75, abs=0.002)
    assert newest["model_series_median_coverage_80_in_this_run"].value == pytest.approx(0.75, abs=1 / 24)
    assert "worst_series" in newest["intervals_per_series_in_this_run"].value


def test_a_one_hour_run_shows_that_hours_scores_and_the_runs_totals(instance):
    actuals_arrive(1, 24, instance)

    run_range(H0, H0, AssetSelection.assets(ACCURACY), instance=instance)

    only = partition_metadata(instance, "forecast_accuracy")[partition_key(H0)]
    assert ACCURACY_HOUR_FACTS | ACCURACY_RUN_TOTALS <= set(only)
    assert only["model_wape"].value == pytest.approx(stored_model_scores(H0)["wape"])
    assert only["issue_hours_in_this_run"].value == 1
    assert only["registry_versions_in_this_run"].value == [only["registry_version"].value]
    assert only["model_coverage_80_in_this_run"].value == only["model_coverage_80"].value


def dk2_by_version_2(forecasts: pd.DataFrame) -> pd.DataFrame:
    return forecasts.assign(**{MODEL_VERSION: forecasts[MODEL_VERSION].where(forecasts[AREA] == 1, 2)})


def test_an_issue_hour_whose_forecasts_name_two_model_versions_names_both(instance):
    actuals_arrive(1, 24, instance)
    # Not what energy_forecasts writes (one model per issue hour): DK2's rows of H0 edited to say version 2.
    rewrite_stored_forecasts(lambda frame: conform(dk2_by_version_2(frame), FORECAST_SCHEMA, "forecasts"), (H0,))

    run_range(H0, H0, AssetSelection.assets(ACCURACY), instance=instance)

    only = partition_metadata(instance, "forecast_accuracy")[partition_key(H0)]
    assert only["registry_version"].value == [1, 2] and only["registry_versions_in_this_run"].value == [1, 2]


def stored_with_series_coverage(covered_by_area: dict[int, dict[float, float]]):
    """A `rewrite_stored_forecasts` change: each area's series' bounds cover `covered_by_area[area][level]`."""
    actuals = deployment_resources()["feature_store"].read(after(1), after(26))

    def change(frame: pd.DataFrame):
        parts = [with_bounds_covering(frame[frame[AREA] == area], actuals, covered) for area, covered in covered_by_area.items()]
        return conform(pd.concat(parts).sort_index(), FORECAST_SCHEMA, "forecasts")

    return change


def test_the_coverage_check_warns_when_many_series_are_far_off_though_the_pool_is_calibrated(instance):
    actuals_arrive(1, 25, instance)
    # DK1's series too narrow at 80 %, DK2's too wide: pooled, 80 % of the actuals are inside.
    rewrite_stored_forecasts(stored_with_series_coverage({1: {0.8: 0.6, 0.95: 0.95}, 2: {0.8: 1.0, 0.95: 0.95}}))
    scored = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)
    result = summarize(instance)
    lenient = materialize(
        list(defs.assets),
        selection=[SUMMARY],
        resources=deployment_resources(),
        instance=instance,
        run_config={"ops": {"forecast_accuracy_summary": {"config": {"series_coverage_tolerance": 0.25}}}},
    )

    accuracy_metadata = scored.get_asset_materialization_events()[-1].materialization.metadata
    assert accuracy_metadata["model_coverage_80"].value == pytest.approx(0.8, abs=0.01)
    assert accuracy_metadata["model_series_p10_coverage_80"].value == pytest.approx(0.6, abs=0.03)
    assert accuracy_metadata["model_series_median_coverage_95"].value == pytest.approx(0.95, abs=0.03)
    assert "worst_series" in accuracy_metadata["intervals_per_series"].value
    summary_metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert "far_off_share" in summary_metadata["intervals"].value and "| DK1 " in summary_metadata["intervals"].value
    assert summary_metadata["worst_covered_series"].value.count("\n") == 11  # header, rule and ten series
    warning = summary_check(result, COVERAGE_CHECK)
    assert result.success and not warning.passed and warning.severity == AssetCheckSeverity.WARN
    assert warning.description.startswith("the 80% interval covered 76 of 76 series (100%, more than 10%) more than 15 points")
    assert "covered 80." not in warning.description  # the pool is within its tolerance
    assert warning.metadata["far_off_series_80"].value == 1.0 and warning.metadata["far_off_series_95"].value == 0.0
    assert warning.metadata["worst_series_80"].value.startswith("DK1 ")
    # With a 25-point tolerance no series is far off.
    assert summary_check(lenient, COVERAGE_CHECK).passed


def test_the_coverage_check_passes_saying_so_when_no_bounds_are_stored(instance):
    actuals_arrive(1, 25, instance)
    before_intervals = pa.schema([field for field in FORECAST_SCHEMA if field.name not in INTERVAL_COLUMNS])
    rewrite_stored_forecasts(lambda frame: conform(frame, before_intervals, "forecasts written before intervals"))
    scored = run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)

    result = summarize(instance)

    stored = read_frame(deployment_bucket(), deployment_bucket().list_keys(ACCURACY_FOLDER))
    assert stored[["coverage_80", "winkler_80", "coverage_95", "winkler_95"]].isna().all().all()
    assert scored.get_asset_materialization_events()[-1].materialization.metadata["model_coverage_80"].value is None
    check = summary_check(result, COVERAGE_CHECK)
    assert check.passed and "no forecast in the window has interval bounds" in check.description
    assert check.metadata["forecasts_with_bounds"].value == 0


def test_an_unreadable_accuracy_object_is_left_out_named_and_flagged_not_a_failed_summary(instance):
    # A truncated object used to fail the summary for the 7 days it stayed in the window.
    actuals_arrive(1, 25, instance)
    run_range(H0, after(1), AssetSelection.assets(ACCURACY), instance=instance)
    bucket = deployment_bucket()
    key = partition_object_key("energy_assets", ["forecast_accuracy"], partition_key(H0))
    whole = bucket.read_bytes(key)
    uri = bucket.write_bytes(key, whole[: len(whole) // 2])

    result = summarize(instance)

    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["issue_hours"].value == 1 and metadata["window"].value.startswith("2022-12-12T01:00:00")
    assert metadata["unreadable_objects"].value == 1 and uri in metadata["unreadable"].value
    check = summary_check(result, READABLE_CHECK)
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert f"{uri}: not a readable parquet object ({len(whole) // 2} bytes)" in check.description
    assert summary_check(summarize_with_all_objects_readable(instance, bucket, key, whole), READABLE_CHECK).passed


def summarize_with_all_objects_readable(instance, bucket, key: str, whole: bytes) -> ExecuteInProcessResult:
    bucket.write_bytes(key, whole)
    return summarize(instance)


def test_a_window_of_unreadable_accuracy_objects_fails_naming_them(instance):
    actuals_arrive(1, 24, instance)
    run_range(H0, H0, AssetSelection.assets(ACCURACY), instance=instance)
    bucket = deployment_bucket()
    key = partition_object_key("energy_assets", ["forecast_accuracy"], partition_key(H0))
    uri = bucket.write_bytes(key, b"")

    result = materialize(
        list(defs.assets), selection=[SUMMARY], resources=deployment_resources(), instance=instance, raise_on_error=False
    )

    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"no readable accuracy object in the window: {uri}: not a readable parquet object (0 bytes)" in failure.event_specific_data.error.message


def test_a_forecast_object_holding_another_hour_s_forecasts_is_named_with_the_hours(instance):
    # It used to fail with "seasonal naive needs 168 hours of history; only 166 available".
    actuals_arrive(1, 25, instance)
    bucket = deployment_bucket()
    copied = partition_object_key("energy_assets", ["energy_forecasts"], partition_key(H0))
    uri = bucket.write_bytes(partition_object_key("energy_assets", ["energy_forecasts"], partition_key(after(1))), bucket.read_bytes(copied))

    result = run_range(after(1), after(1), AssetSelection.assets(ACCURACY), instance=instance, raise_on_error=False)

    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").event_specific_data.error.message
    assert f"cannot load asset energy_forecasts partition 2022-12-12-01:00: {uri} is not partition 2022-12-12-01:00" in failure
    assert "its rows have issued_at 2022-12-12T00:00:00+00:00 ... 2022-12-12T00:00:00+00:00" in failure
    assert "seasonal naive" not in failure
    assert deployment_bucket().list_keys(ACCURACY_FOLDER) == []
