"""Forecasts name their model unambiguously: the registry's version and the hash of the model's training, which a
registry that reuses version numbers (a reset local one, a deleted Hopsworks version) cannot make ambiguous."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
from dagster import DagsterInstance

from energy_assets.definitions import deployment_resources
from energy_assets.forecasting.retraining import training_sha256
from energy_assets.schema import FORECAST_SCHEMA, MODEL_NAME, MODEL_TRAINING_SHA256, MODEL_VERSION, conform
from energy_assets.storage.buckets import MemoryBucket, deployment_bucket
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.storage.objects import parquet_bytes, partition_object_key
from energy_assets.timeline import HOUR
from energy_assets_tests.hopsworks_fake import hopsworks_model_registry
from energy_assets_tests.test_forecast_store import ISSUED, forecast_rows, publish
from energy_assets_tests.test_graph_forecasting import FIRST_ISSUE, fill_history
from energy_assets_tests.test_hopsworks import NAME, START, register
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, run_range


def test_after_the_local_registry_is_reset_the_forecasts_of_two_version_1s_name_different_models(isolated_state):
    instance = DagsterInstance.ephemeral()
    fill_history(instance)
    run_range(FIRST_ISSUE, FIRST_ISSUE + 24 * HOUR, RAW_AND_FEATURES, instance=instance)  # a day later, a day more
    run_range(FIRST_ISSUE, FIRST_ISSUE, instance=instance)
    first = deployment_resources()["model_registry"].versions(MODEL_NAME)
    shutil.rmtree(isolated_state / "model_registry")  # the registry is reset; the bucket keeps its forecasts

    run_range(FIRST_ISSUE + 24 * HOUR, FIRST_ISSUE + 24 * HOUR, instance=instance)

    second = deployment_resources()["model_registry"].versions(MODEL_NAME)
    assert [(m.version, m.data_cutoff) for m in first + second] == [(1, FIRST_ISSUE), (1, FIRST_ISSUE + 24 * HOUR)]
    forecasts = gather_forecasts(deployment_bucket(), FIRST_ISSUE, FIRST_ISSUE + 24 * HOUR)
    by_issue = forecasts.groupby("issued_at")[[MODEL_VERSION, MODEL_TRAINING_SHA256]].agg(set)
    assert by_issue[MODEL_VERSION].tolist() == [{1}, {1}]
    assert by_issue[MODEL_TRAINING_SHA256].tolist() == [{training_sha256(first[0])}, {training_sha256(second[0])}]
    assert training_sha256(first[0]) != training_sha256(second[0])


def test_a_hopsworks_version_deleted_and_registered_again_gets_another_hash(tmp_path):
    registry = hopsworks_model_registry(tmp_path)
    deleted = register(registry, tmp_path, "first")
    registry._model(NAME, 1).delete()

    again = register(registry, tmp_path, "second", cutoff=START + pd.Timedelta(days=1))

    assert deleted.version == again.version == 1
    assert training_sha256(deleted) != training_sha256(again)
    assert training_sha256(registry.get(NAME, 1)) == training_sha256(again)  # read back, the same facts


def test_objects_written_before_the_hash_read_with_it_null():
    bucket = MemoryBucket("model_identity")
    publish(bucket, ISSUED[1:])
    before = pa.schema([field for field in FORECAST_SCHEMA if field.name != MODEL_TRAINING_SHA256])
    bucket.write_bytes(
        partition_object_key("energy_assets", ["energy_forecasts"], ISSUED[0]),
        parquet_bytes(conform(forecast_rows(ISSUED[0]), before, "forecasts written before the hash")),
    )
    skipped = []

    gathered = gather_forecasts(bucket, "2023-01-14 20:00", "2023-01-14 23:00", skipped=skipped)

    assert skipped == [] and len(gathered) == 3 * 48
    hashes = gathered.groupby("issued_at")[MODEL_TRAINING_SHA256].first()
    assert hashes.isna().tolist() == [True, False, False]
    bucket.filesystem.rm(bucket.root, recursive=True)
