"""The course's serving files at the bucket root, read on the GCS emulator exactly as the course's FastAPI views do
(iusztinpaul/energy-forecasting, app-api/api/views.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import gcsfs
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetMaterialization, AssetSelection, DagsterInstance, evaluate_automation_conditions, materialize

from energy_assets.assets.serving import serving_files
from energy_assets.definitions import defs
from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.schema import INTERVAL_COLUMNS
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.storage.buckets import GCSBucket
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.storage.serving import SERVING_OBJECTS, mape_per_hour
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.gcs_emulator import as_resource
from energy_assets_tests.test_forecast_store import publish

NEWEST = pd.Timestamp("2023-01-14 23:00", tz="UTC")
HOURS_SINCE_EPOCH = pd.Timedelta(hours=1)


@pytest.fixture
def served(gcs_bucket: GCSBucket, tmp_path) -> tuple[GCSBucket, LocalFeatureStore]:
    """Forecasts issued at 20:00, 21:00 and 23:00 on 2023-01-14, actuals up to two days later, serving files published."""
    publish(gcs_bucket)
    feature_store = LocalFeatureStore(root_dir=str(tmp_path / "feature_store"))
    feature_store.insert(synthetic_consumption("2023-01-07", "2023-01-16"))
    result = materialize([serving_files], resources={"bucket": as_resource(gcs_bucket), "feature_store": feature_store})
    assert result.success
    return gcs_bucket, feature_store


def read(bucket: GCSBucket, name: str) -> pd.DataFrame:
    """As the views do: `pd.read_parquet(f"{GCP_BUCKET}/<name>", filesystem=fs)` with a gcsfs file system."""
    fs = gcsfs.GCSFileSystem(project=bucket.project, token="anon")
    return pd.read_parquet(f"{bucket.bucket_name}/{name}", filesystem=fs)


def hours(index: pd.Index) -> list[int]:
    """Hourly periods as the hours since 1970 that the course's dashboards turn back with `unit="h"`."""
    return [period.ordinal for period in index]


def test_the_serving_files_are_at_the_bucket_root(served):
    bucket, _ = served
    assert sorted(key for key in bucket.list_keys("") if "/" not in key) == sorted(SERVING_OBJECTS)


def test_area_and_consumer_type_views(served):
    bucket, _ = served
    X = read(bucket, "X.parquet")
    assert list(X.index.names) == ["area", "consumer_type", "datetime_utc"] and X.columns.empty
    assert list(X.index.unique(level="area")) == [1, 2]
    assert 111 in list(X.index.unique(level="consumer_type")) and len(X.index.unique(level="consumer_type")) == 38


def test_predictions_view(served):
    bucket, feature_store = served
    train_df = read(bucket, "y.parquet").xs((1, 111), level=["area", "consumer_type"])
    preds_df = read(bucket, "predictions.parquet").xs((1, 111), level=["area", "consumer_type"])
    train_df = train_df.sort_index().tail(24 * 7)

    newest = gather_forecasts(bucket, NEWEST, NEWEST, area=1, consumer_type=111)
    assert preds_df["energy_consumption"].to_list() == newest["energy_consumption_forecast"].to_list()
    assert hours(preds_df.index) == [int((t - pd.Timestamp(0, tz="UTC")) / HOURS_SINCE_EPOCH) for t in newest["datetime_utc"]]
    actual = feature_store.read(NEWEST - pd.Timedelta(hours=167), NEWEST + pd.Timedelta(hours=1))
    actual = actual[(actual["area"] == 1) & (actual["consumer_type"] == 111)]
    assert train_df["energy_consumption"].to_list() == actual["energy_consumption"].to_list()
    assert train_df.index[-1] == pd.Period("2023-01-14 23:00", freq="h")


def test_monitoring_views(served):
    bucket, feature_store = served
    y_monitoring = read(bucket, "y_monitoring.parquet").xs((2, 111), level=["area", "consumer_type"])
    predictions_monitoring = read(bucket, "predictions_monitoring.parquet").xs((2, 111), level=["area", "consumer_type"])
    metrics = read(bucket, "metrics_monitoring.parquet")

    # Each target hour keeps the newest issue's forecast: 2023-01-15 00:00 is horizon 1 of the 23:00 issue.
    by_hour = dict(zip(predictions_monitoring.index, predictions_monitoring["energy_consumption"]))
    assert by_hour[pd.Period("2023-01-15 00:00", freq="h")] == 100.0 * 23 + 1
    assert by_hour[pd.Period("2023-01-14 22:00", freq="h")] == 100.0 * 21 + 1
    assert min(by_hour) == pd.Period("2023-01-14 21:00", freq="h") and max(by_hour) == pd.Period("2023-01-15 23:00", freq="h")
    assert y_monitoring.index.is_monotonic_increasing and len(y_monitoring) == len(by_hour)

    assert list(metrics.columns) == ["MAPE"] and metrics.index.name == "datetime_utc"
    hour = pd.Period("2023-01-15 00:00", freq="h")
    observed = feature_store.read(hour.to_timestamp().tz_localize("UTC"), hour.to_timestamp().tz_localize("UTC") + pd.Timedelta(hours=1))
    observed = observed[observed["consumer_type"] == 111]["energy_consumption"].to_numpy()
    expected = float(abs(observed - 2301.0).__truediv__(observed).mean())
    assert metrics.loc[hour, "MAPE"] == pytest.approx(expected)
    assert len(metrics) == len(by_hour)


def test_the_monitoring_mape_leaves_zero_observations_out_and_is_null_for_an_hour_of_zeros():
    index = pd.MultiIndex.from_tuples(
        [(1, 111, pd.Period(f"2023-01-15 0{h}:00", freq="h")) for h in (0, 1)]
        + [(2, 212, pd.Period(f"2023-01-15 0{h}:00", freq="h")) for h in (0, 1)],
        names=["area", "consumer_type", "datetime_utc"],
    )
    observed = pd.DataFrame({"energy_consumption": [100.0, 0.0, 0.0, 0.0]}, index=index)
    predicted = pd.DataFrame({"energy_consumption": [110.0, 5.0, 3.0, 0.0]}, index=index)

    metrics = mape_per_hour(predicted, observed)

    assert metrics["MAPE"].tolist()[0] == pytest.approx(0.1)  # the zero of 2 / 212 is left out
    assert pd.isna(metrics["MAPE"].tolist()[1]) and len(metrics) == 2


def test_encoded_as_the_course_wrote_them(served):
    bucket, _ = served
    schema = pq.read_schema(gcsfs.GCSFileSystem(token="anon").open(f"{bucket.bucket_name}/predictions.parquet"))
    assert schema.names == ["energy_consumption", "area", "consumer_type", "datetime_utc"]
    # The forecasts behind them have interval bounds; the course's objects keep their one column.
    assert gather_forecasts(bucket, NEWEST, NEWEST)[INTERVAL_COLUMNS].notna().all().all()
    for name in ("predictions.parquet", "predictions_monitoring.parquet"):
        assert list(read(bucket, name).columns) == ["energy_consumption"]
    period = schema.field("datetime_utc").type
    # pandas' hourly Period: int64 hours since 1970, which the course's readers turn into times with unit="h".
    assert period.extension_name == "pandas.period" and str(period.storage_type) == "int64"
    assert str(schema.field("area").type) == "int8" and str(schema.field("consumer_type").type) == "int32"


def test_the_automation_requests_a_refresh_after_a_forecast_run():
    instance = DagsterInstance.ephemeral()
    selection = AssetSelection.assets("serving_files")
    quiet = evaluate_automation_conditions(defs, instance, asset_selection=selection)
    instance.report_runless_asset_event(AssetMaterialization(AssetKey("energy_forecasts"), partition="2023-01-14-23:00"))
    after_forecast = evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=quiet.cursor)
    assert quiet.total_requested == 0
    assert after_forecast.get_requested_partitions(AssetKey("serving_files")) == {None}


@pytest.mark.slow
def test_a_setting_turns_them_off(isolated_state):
    script = "from energy_assets.definitions import defs; print(sorted(key.to_user_string() for key in defs.resolve_all_asset_keys()), sorted(s.name for s in defs.sensors))"
    environment = {**os.environ, "ENERGY_ASSETS_HOME": str(isolated_state), "ENERGY_ASSETS_SERVING_FILES": "off"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "serving_files" not in done.stdout and "serving_automation_sensor" not in done.stdout
    assert "forecast_accuracy" in done.stdout
