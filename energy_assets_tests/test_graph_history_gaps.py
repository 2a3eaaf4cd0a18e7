"""Holes in the feature group through real runs: forecasts refused or flagged by the `history_gaps` rule, the
`complete_history` check listing them, training rows left out and recorded, and history that is not there at all."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetCheckSeverity, AssetSelection, DagsterInstance, ExecuteInProcessResult

from energy_assets.forecasting.history_gaps import MAX_FILLED_HOURS
from energy_assets.forecasting.model import fit
from energy_assets.forecasting.panel import Panel
from energy_assets.forecasting.retraining import MODEL_FORMAT_KEY, json_normal
from energy_assets.forecasting.training import MODEL_FORMAT, ForecasterConfig, save_forecaster
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    DATETIME,
    FEATURE_GROUP_NAME,
    HISTORY_HOURS_MISSING,
    INTERVAL_COLUMNS,
    ISSUED_AT,
    MODEL_NAME,
    SERIES_KEY,
)
from energy_assets.definitions import deployment_resources
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.timeline import HOUR
from energy_assets_tests.conftest import REAL_DATA_FIRST_HOUR, REAL_DATA_LAST_HOUR
from energy_assets_tests.graph_helpers import (
    FIRST_ISSUE,
    HISTORY_HOURS,
    RAW_AND_FEATURES,
    hour,
    partition_key,
    partition_metadata,
    run_range,
)

HOLE_DAY = hour("2023-01-11 00:00")  # the UTC day before the first issue hour
HOLED = (1, 999)
FORECASTS = AssetSelection.assets("energy_forecasts")
MODEL_AND_FORECASTS = AssetSelection.assets("forecasting_model", "energy_forecasts")


def remove_series_day(home: Path, series: tuple[int, int], day: pd.Timestamp) -> None:
    """Take one series' rows of one UTC day out of the local feature group (one file per day)."""
    path = home / "feature_store" / FEATURE_GROUP_NAME / "v1" / f"{day:%Y-%m-%d}.parquet"
    table = pq.read_table(path)
    rows = table.to_pandas()
    keep = ~((rows[AREA] == series[0]) & (rows[CONSUMER_TYPE] == series[1]))
    pq.write_table(table.filter(keep.to_numpy()), path)


def check_evaluation(result: ExecuteInProcessResult, name: str):
    return next(
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == name
    )


def failure_message(result: ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    return failures[0].event_specific_data.error.message


def is_holed(frame: pd.DataFrame) -> pd.Series:
    return (frame[AREA] == HOLED[0]) & (frame[CONSUMER_TYPE] == HOLED[1])


def test_a_day_missing_from_one_series_refuses_or_flags_only_that_series_and_the_check_lists_it(isolated_state):
    instance = DagsterInstance.ephemeral()
    last = FIRST_ISSUE + 23 * HOUR
    run_range(FIRST_ISSUE - HISTORY_HOURS * HOUR, last + 24 * HOUR, RAW_AND_FEATURES, instance=instance)
    clean_run = run_range(FIRST_ISSUE, last, MODEL_AND_FORECASTS, instance=instance)
    assert check_evaluation(clean_run, "complete_history").passed
    clean = gather_forecasts(deployment_bucket(), FIRST_ISSUE, last)
    assert (clean[HISTORY_HOURS_MISSING] == 0).all()

    remove_series_day(isolated_state, HOLED, HOLE_DAY)
    result = run_range(FIRST_ISSUE, last, FORECASTS, instance=instance)

    forecasts = gather_forecasts(deployment_bucket(), FIRST_ISSUE, last)
    # Every other series: what it was, byte for byte.
    pd.testing.assert_frame_equal(
        forecasts[~is_holed(forecasts)].reset_index(drop=True), clean[~is_holed(clean)].reset_index(drop=True)
    )
    # Issued at 2023-01-12 H, the series misses the 23 - H hours after H of the day before (its last day read):
    # refused while that is more than MAX_FILLED_HOURS, flagged with the count, then as before.
    holed = forecasts[is_holed(forecasts)]
    missing = pd.Series([23 - h for h in range(24)], index=pd.date_range(FIRST_ISSUE, last, freq="h"))
    issued = holed.groupby(ISSUED_AT)[HISTORY_HOURS_MISSING].agg(["min", "max", "size"])
    assert issued.index.tolist() == missing.index[missing <= MAX_FILLED_HOURS].tolist()
    assert issued["min"].tolist() == issued["max"].tolist() == missing[missing <= MAX_FILLED_HOURS].tolist()
    assert (issued["size"] == 24).all()
    # Where its forecast reads no missing hour, the point forecast is as before; the interval scale averages
    # the errors of the week before, and leaves out the missing ones (no fill).
    was = clean[is_holed(clean) & clean[ISSUED_AT].isin(missing.index[missing == 0])].reset_index(drop=True)
    now = holed[holed[HISTORY_HOURS_MISSING] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(now.drop(columns=INTERVAL_COLUMNS), was.drop(columns=INTERVAL_COLUMNS))
    assert now[INTERVAL_COLUMNS].notna().all().all()
    # The check warns (not blocking) and names the series, the hours it lacks and the issue hours refused.
    check = check_evaluation(result, "complete_history")
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["series_refused"].value == 1
    assert check.metadata["forecasts_refused"].value == (missing > MAX_FILLED_HOURS).sum()
    table = check.metadata["series"].value
    row = next(line for line in table.splitlines() if " 999 |" in line)
    assert "2023-01-11 01:00 .. 2023-01-11 23:00 (23 h)" in row and "2023-01-12 00:00 .. " in row
    # Each issue hour's partition counts the forecasts refused and flagged at that hour only (before, every hour
    # said the run's 19 refused and 4 flagged); the run's totals are on the newest.
    refused = (missing > MAX_FILLED_HOURS).astype(int)
    flagged = ((missing > 0) & (missing <= MAX_FILLED_HOURS)).astype(int)
    metadata = partition_metadata(instance, "energy_forecasts")
    for issued_at in missing.index:
        facts = metadata[partition_key(issued_at)]
        assert facts["forecasts_refused"].value == refused[issued_at]
        assert facts["forecasts_flagged"].value == flagged[issued_at]
        assert facts["series"].value == 76 - refused[issued_at] and facts["rows"].value == 24 * facts["series"].value
    newest = metadata[partition_key(last)]
    assert newest["forecasts_refused_in_this_run"].value == refused.sum()
    assert newest["forecasts_flagged_in_this_run"].value == flagged.sum()

    # The next training reads the hole too: the rows it would fill are left out, and the model says which.
    retrained = run_range(last + HOUR, last + HOUR, AssetSelection.assets("forecasting_model"), instance=instance)
    model = deployment_resources()["model_registry"].versions(MODEL_NAME)[-1]
    assert model.data_cutoff == last + HOUR
    gaps = model.extra["training_gaps"]
    assert [(row["area"], row["consumer_type"]) for row in gaps] == [HOLED]
    # The targets of 2023-01-12 read the day before through their lags and 24-hour window; none is a week later yet.
    assert gaps[0]["rows_left_out"] == 24 and gaps[0]["missing_hours"] == "2023-01-11 00:00 .. 2023-01-11 23:00 (24 h)"
    metadata = retrained.asset_materializations_for_node("forecasting_model")[-1].metadata
    assert metadata["training_rows_left_out"].value == gaps[0]["rows_left_out"]
    assert "2023-01-11 00:00 .. 2023-01-11 23:00" in metadata["training_gaps"].value


def test_a_day_no_series_has_fails_the_forecasts_naming_the_partitions_to_materialize():
    instance = DagsterInstance.ephemeral()
    week_before = FIRST_ISSUE - 7 * 24 * HOUR  # read by the first issue hour's forecasts as their reference
    run_range(FIRST_ISSUE - (HISTORY_HOURS + 72) * HOUR, week_before - HOUR, RAW_AND_FEATURES, instance=instance)
    run_range(week_before + 24 * HOUR, FIRST_ISSUE, RAW_AND_FEATURES, instance=instance)  # a day never materialized

    result = run_range(FIRST_ISSUE, FIRST_ISSUE, MODEL_AND_FORECASTS, instance=instance, raise_on_error=False)

    message = failure_message(result)
    assert "no series can be forecast from 2023-01-12 00:00" in message
    assert "energy_consumption_features has no rows for 2023-01-05 00:00 .. 2023-01-05 23:00 (24 h)" in message
    assert "materialize energy_consumption_features for 2023-01-05-00:00...2023-01-05-23:00 first" in message
    # The model trained without the rows that read the missing day, for every series, and says so: the targets of
    # the day after through their lags, and the cutoff hour through its reference week (192 hours back).
    model = deployment_resources()["model_registry"].versions(MODEL_NAME)[-1]
    gaps = pd.DataFrame(model.extra["training_gaps"])
    assert len(gaps) == 76 and (gaps["rows_left_out"] == 25).all() and model.extra["training_rows_left_out"] == 76 * 25
    assert (gaps["missing_hours"] == "2023-01-05 00:00 .. 2023-01-05 23:00 (24 h)").all()


def remove_series_hours(home: Path, series: tuple[int, int], first: pd.Timestamp, hours: int) -> None:
    """Take one series' rows of `hours` hours from `first` out of the local feature group (one file per UTC day)."""
    for day in pd.date_range(first.floor("D"), (first + (hours - 1) * HOUR).floor("D"), freq="D"):
        path = home / "feature_store" / FEATURE_GROUP_NAME / "v1" / f"{day:%Y-%m-%d}.parquet"
        table = pq.read_table(path)
        rows = table.to_pandas()
        times = rows[DATETIME]
        drop = (
            (rows[AREA] == series[0])
            & (rows[CONSUMER_TYPE] == series[1])
            & (times >= first)
            & (times < first + hours * HOUR)
        )
        pq.write_table(table.filter((~drop).to_numpy()), path)


# The vendored real slice holds 72 hours (2023-01-02 .. 2023-01-04), too few for the model asset (its validation
# compares against a week-old baseline): a model with a day-long season is fitted on the slice and registered
# as the asset registers one, and the forecasts asset runs on the slice's feature group with it.
REAL_MODEL = ForecasterConfig(
    lags=(1, 2, 3, 24),
    windows=(3,),
    holiday_lags=(),
    level_lags=(),
    combine_without_level_lags=False,
    scale_window=24,
    reference_lag=24,
    n_estimators=30,
    calibration_hours=12,
    interval_scale_lags=(24,),
    interval_scale_hours=24,
    training_window=None,
)
REAL_HOLED = (1, 111)  # a DK1 series: loses 2023-01-03 entirely
REAL_SHORT_HOLE = (2, 215)  # DK2, the smallest series: loses two hours of the issue day


def register_real_model(cutoff: pd.Timestamp) -> None:
    """`REAL_MODEL` fitted on the feature group up to `cutoff`, registered with the facts the model asset records."""
    rows = deployment_resources()["feature_store"].read(hour(REAL_DATA_FIRST_HOUR), cutoff + HOUR)
    model, _ = fit(Panel.from_long(rows), REAL_MODEL.params(n_jobs=1))
    with tempfile.TemporaryDirectory() as directory:
        save_forecaster(model, directory)
        deployment_resources()["model_registry"].register(
            MODEL_NAME,
            directory,
            data_cutoff=cutoff,
            training_start=rows[DATETIME].min(),
            feature_group_version=1,
            config=json_normal(REAL_MODEL.to_dict()),
            metrics={},
            extra={MODEL_FORMAT_KEY: MODEL_FORMAT},
        )


def test_on_the_real_slice_a_day_missing_from_one_series_refuses_it_and_leaves_every_other_series_as_it_was(
    isolated_state, real_data_csv, monkeypatch
):
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(real_data_csv))
    instance = DagsterInstance.ephemeral()
    first_issue, last = hour("2023-01-04 17:00"), hour("2023-01-04 23:00")
    run_range(hour(REAL_DATA_FIRST_HOUR), hour(REAL_DATA_LAST_HOUR), RAW_AND_FEATURES, instance=instance)
    register_real_model(first_issue - HOUR)
    clean_run = run_range(first_issue, last, FORECASTS, instance=instance)
    assert check_evaluation(clean_run, "complete_history").passed
    clean = gather_forecasts(deployment_bucket(), first_issue, last)
    assert clean[SERIES_KEY].drop_duplicates().shape[0] == 76 and (clean[HISTORY_HOURS_MISSING] == 0).all()

    remove_series_hours(isolated_state, REAL_HOLED, hour("2023-01-03 00:00"), 24)
    remove_series_hours(isolated_state, REAL_SHORT_HOLE, hour("2023-01-04 10:00"), 2)
    result = run_range(first_issue, last, FORECASTS, instance=instance)

    forecasts = gather_forecasts(deployment_bucket(), first_issue, last)
    holed, short = (
        (frame[AREA] == series[0]) & (frame[CONSUMER_TYPE] == series[1])
        for frame in (forecasts,)
        for series in (REAL_HOLED, REAL_SHORT_HOLE)
    )
    touched = holed | short
    was_touched = clean[SERIES_KEY].apply(tuple, axis=1).isin([REAL_HOLED, REAL_SHORT_HOLE])
    # The other 74 series: byte for byte the forecasts of the complete history.
    pd.testing.assert_frame_equal(
        forecasts[~touched].reset_index(drop=True), clean[~was_touched].reset_index(drop=True)
    )
    # The day-long hole: every forecast of that series reads more than MAX_FILLED_HOURS of it, none is issued.
    assert not holed.any()
    # The two-hour hole: read by every forecast (its last 24 hours), issued and flagged with the count.
    assert short.sum() == 7 * 24 and (forecasts.loc[short, HISTORY_HOURS_MISSING] == 2).all()
    # The check warns, and lists both series, the hours they lack and the issue hours refused or flagged.
    check = check_evaluation(result, "complete_history")
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["series_refused"].value == 1 and check.metadata["series_flagged"].value == 1
    assert check.metadata["forecasts_refused"].value == 7 and check.metadata["forecasts_flagged"].value == 7
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in check.metadata["series"].value.splitlines()}
    refused_row, flagged_row = rows[("1", "111")], rows[("2", "215")]
    assert "2023-01-03 00:00 .. 2023-01-03 23:00 (24 h)" in refused_row
    assert "2023-01-04 17:00 .. 2023-01-04 23:00 (7 h)" in refused_row
    assert "2023-01-04 10:00 .. 2023-01-04 11:00 (2 h)" in flagged_row
    assert "1 111 lacks 2023-01-03 00:00 .. 2023-01-03 23:00 (24 h)" in check.description
