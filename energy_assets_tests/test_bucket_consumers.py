"""The bucket as a contract: consumers read the IO manager's forecasts as one hive-partitioned dataset with
pyarrow, DuckDB and pandas, locally and on the GCS emulator, and get what the IO manager loads."""

from __future__ import annotations

import datetime as dt

import duckdb
import gcsfs
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from dagster import HourlyPartitionsDefinition, PartitionKeyRange, build_input_context, build_output_context

from energy_assets.resources.io_manager import PartitionedParquetIOManager
from energy_assets.schema import (
    FORECAST_COLUMNS,
    FORECAST_SCHEMA,
    HISTORY_HOURS_MISSING,
    INTERVAL_COLUMNS,
    PARTITION_SCHEMA,
    conform,
)
from energy_assets.storage.buckets import Bucket, LocalBucket
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.storage.objects import hive_partitioning, parquet_bytes, partition_object_key
from energy_assets_tests.gcs_emulator import as_resource
from energy_assets_tests.test_forecast_store import forecast_rows

HOURLY = HourlyPartitionsDefinition(start_date="2023-01-14-00:00")
# Across midnight, so the range spans two date folders.
KEYS = PartitionKeyRange("2023-01-14-22:00", "2023-01-15-01:00")
ISSUED = ["2023-01-14-22:00", "2023-01-14-23:00", "2023-01-15-00:00", "2023-01-15-01:00"]
ORDER = ["issued_at", "area", "consumer_type", "horizon"]
# Columns an object written before intervals lacks (the columns added since; the model hash is kept here).
BEFORE_INTERVALS = [*INTERVAL_COLUMNS, HISTORY_HOURS_MISSING]


@pytest.fixture
def written(any_bucket: Bucket) -> tuple[Bucket, pd.DataFrame]:
    """Forecasts of four issue hours written as one range by the IO manager, and the IO manager's load of them."""
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    rows = pd.concat([forecast_rows(key) for key in ISSUED], ignore_index=True)
    manager.handle_output(
        build_output_context(
            asset_key="energy_forecasts",
            asset_partitions_def=HOURLY,
            asset_partition_key_range=KEYS,
            definition_metadata={"partition_column": "issued_at"},
        ),
        rows,
    )
    loaded = manager.load_input(
        build_input_context(asset_key="energy_forecasts", asset_partitions_def=HOURLY, asset_partition_key_range=KEYS)
    )
    return any_bucket, loaded


def dataset_path(bucket: Bucket) -> str:
    _, root = bucket.arrow_filesystem()
    return f"{root}/energy_assets/energy_forecasts"


def fsspec_of(bucket: Bucket):
    """What a consumer would use: gcsfs for GCS (anonymous on the emulator), nothing for a folder."""
    return None if isinstance(bucket, LocalBucket) else gcsfs.GCSFileSystem(token="anon")


def forecast_part(frame: pd.DataFrame) -> pd.DataFrame:
    """The forecast columns in the IO manager's dtypes (the count as float: pandas reads its nulls in old objects
    as NaN) and row order."""
    dtypes = {**FORECAST_SCHEMA.empty_table().to_pandas().dtypes.to_dict(), HISTORY_HOURS_MISSING: "float64"}
    return frame[FORECAST_COLUMNS].astype(dtypes).sort_values(ORDER).reset_index(drop=True)


def test_pyarrow_reads_one_dataset_and_prunes_on_the_issue_hour(written):
    bucket, loaded = written
    filesystem, _ = bucket.arrow_filesystem()
    # As a consumer writes it: hive partitioning with inferred types.
    dataset = ds.dataset(dataset_path(bucket), filesystem=filesystem, partitioning="hive")
    pd.testing.assert_frame_equal(forecast_part(dataset.to_table().to_pandas()), forecast_part(loaded))
    one_hour = (ds.field("utc_date") == "2023-01-15") & (ds.field("utc_hour") == 0)
    # Pruned on the names: only one object is a candidate, so only one is opened.
    assert [fragment.path.rsplit("/", 3)[1:] for fragment in dataset.get_fragments(filter=one_hour)] == [
        ["utc_date=2023-01-15", "utc_hour=0", "part-0.parquet"]
    ]
    # With the project's partitioning the partition columns come back as a date and an integer.
    typed = ds.dataset(dataset_path(bucket), filesystem=filesystem, partitioning=hive_partitioning())
    assert typed.schema.field("utc_date").type == pa.date32() and typed.schema.field("utc_hour").type == pa.int32()
    late = typed.to_table(filter=ds.field("utc_date") == dt.date(2023, 1, 14)).to_pandas()
    assert sorted(late["utc_hour"].unique()) == [22, 23]
    assert (late["issued_at"].dt.hour == late["utc_hour"]).all()


def duckdb_on(bucket) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A DuckDB connection in UTC that reaches the bucket, and the forecast dataset's path through it."""
    connection = duckdb.connect()
    connection.sql("SET TimeZone = 'UTC'")
    if isinstance(bucket, LocalBucket):
        return connection, dataset_path(bucket)
    connection.register_filesystem(fsspec_of(bucket))
    return connection, f"gcs://{dataset_path(bucket)}"


def test_duckdb_reads_the_dataset_with_typed_partition_columns(written):
    bucket, loaded = written
    connection, path = duckdb_on(bucket)
    query = f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
    relation = connection.sql(query)
    types = dict(zip(relation.columns, map(str, relation.types)))
    assert types["utc_date"] == "DATE" and types["utc_hour"] == "BIGINT"
    pd.testing.assert_frame_equal(forecast_part(relation.df()), forecast_part(loaded))
    one_hour = connection.sql(f"{query} WHERE utc_date = DATE '2023-01-15' AND utc_hour = 1").df()
    assert set(one_hour["issued_at"]) == {pd.Timestamp("2023-01-15 01:00", tz="UTC")} and len(one_hour) == 48


def test_pandas_reads_the_folder(written):
    bucket, loaded = written
    frame = pd.read_parquet(dataset_path(bucket), filesystem=fsspec_of(bucket))
    pd.testing.assert_frame_equal(forecast_part(frame), forecast_part(loaded))
    # pandas makes inferred partition columns categorical; the project's partitioning keeps them typed.
    typed = pd.read_parquet(dataset_path(bucket), filesystem=fsspec_of(bucket), partitioning=hive_partitioning())
    assert typed["utc_date"].iloc[0] in (dt.date(2023, 1, 14), dt.date(2023, 1, 15))
    assert str(typed["utc_hour"].dtype) == "int32"


def test_the_readers_agree_with_the_io_manager(written):
    bucket, loaded = written
    gathered = gather_forecasts(bucket, "2023-01-14 22:00", "2023-01-15 01:00")
    pd.testing.assert_frame_equal(forecast_part(gathered), forecast_part(loaded))



@pytest.fixture
def mixed(written) -> tuple[Bucket, pd.DataFrame]:
    """The first issue hour rewritten as an object from before intervals (no bound columns, no missing-hours count),
    and what the readers should give: the IO manager's load with that hour's bounds and count missing."""
    bucket, loaded = written
    before_intervals = pa.schema([field for field in FORECAST_SCHEMA if field.name not in BEFORE_INTERVALS])
    old = loaded[loaded["issued_at"] == pd.Timestamp("2023-01-14 22:00", tz="UTC")]
    key = partition_object_key("energy_assets", ["energy_forecasts"], ISSUED[0])
    bucket.write_bytes(key, parquet_bytes(conform(old, before_intervals, "forecasts written before intervals")))
    expected = loaded.copy()
    expected[HISTORY_HOURS_MISSING] = expected[HISTORY_HOURS_MISSING].astype("float64")
    expected.loc[expected["issued_at"] == old["issued_at"].iloc[0], BEFORE_INTERVALS] = float("nan")
    return bucket, expected


def test_old_and_new_objects_read_as_one_dataset_when_the_reader_passes_the_schema(mixed):
    bucket, expected = mixed
    filesystem, _ = bucket.arrow_filesystem()
    assert expected[BEFORE_INTERVALS].isna().all(axis=1).sum() == 48  # the old hour's rows only

    # pyarrow: the forecast schema with the partition columns after it.
    schema = pa.unify_schemas([FORECAST_SCHEMA, PARTITION_SCHEMA])
    dataset = ds.dataset(dataset_path(bucket), filesystem=filesystem, schema=schema, partitioning=hive_partitioning())
    pd.testing.assert_frame_equal(forecast_part(dataset.to_table().to_pandas()), forecast_part(expected))
    # pandas, through pyarrow.
    frame = pd.read_parquet(dataset_path(bucket), filesystem=fsspec_of(bucket), schema=FORECAST_SCHEMA)
    pd.testing.assert_frame_equal(forecast_part(frame), forecast_part(expected))
    # The project's readers.
    gathered = gather_forecasts(bucket, "2023-01-14 22:00", "2023-01-15 01:00")
    pd.testing.assert_frame_equal(forecast_part(gathered), forecast_part(expected))


def test_duckdb_reads_old_and_new_objects_by_name(mixed):
    bucket, expected = mixed
    connection, path = duckdb_on(bucket)

    frame = connection.sql(
        f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
    ).df()

    pd.testing.assert_frame_equal(forecast_part(frame), forecast_part(expected))


def test_without_the_schema_readers_take_the_first_object_s_columns_and_drop_the_bounds(mixed):
    # Why the bucket page's recipes (docs/bucket.md) pass the schema (or union_by_name): inference reads one object, here an old one.
    bucket, _ = mixed
    filesystem, _ = bucket.arrow_filesystem()
    inferred = ds.dataset(dataset_path(bucket), filesystem=filesystem, partitioning="hive")
    assert not set(BEFORE_INTERVALS) & set(inferred.schema.names)
