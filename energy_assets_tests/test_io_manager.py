"""PartitionedParquetIOManager on a local folder and on the GCS emulator, through real materializations."""

# No `from __future__ import annotations`: Dagster reads the asset functions' annotations at definition time.

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    AllPartitionMapping,
    Failure,
    AssetIn,
    BackfillPolicy,
    Config,
    DagsterInstance,
    HourlyPartitionsDefinition,
    PartitionKeyRange,
    TimeWindowPartitionMapping,
    asset,
    build_input_context,
    build_output_context,
    materialize,
)

from energy_assets.timeline import parse_hour_key
from energy_assets.storage.buckets import GCSBucket
from energy_assets.storage.objects import partition_object_key
from energy_assets_tests.gcs_emulator import as_resource
from energy_assets_tests.graph_helpers import partition_metadata
from energy_assets.resources.io_manager import (
    COLUMN_SCHEMA_METADATA,
    PartitionedParquetIOManager,
    column_schema_metadata,
)
from energy_assets.schema import (
    FORECAST_COLUMNS,
    FORECAST_SCHEMA,
    HISTORY_HOURS_MISSING,
    INTERVAL_COLUMNS,
    RAW_CONSUMPTION_SCHEMA,
)

HOURLY = HourlyPartitionsDefinition(start_date="2023-01-14-00:00")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2023-01-14-01:00",
    "dagster/asset_partition_range_end": "2023-01-14-03:00",
}
RANGE_KEYS = ["2023-01-14-01:00", "2023-01-14-02:00", "2023-01-14-03:00"]


def consumption_rows(start: str, end: str, scale: float = 1.0) -> pd.DataFrame:
    """Two series for every hour in [start, end), with int64 codes the IO manager must narrow;
    each row's value depends only on its hour and area, so any split of a range gives the same rows."""
    hours = pd.date_range(start, end, freq="h", inclusive="left", tz="UTC", unit="us").repeat(2)
    areas = [1, 2] * (len(hours) // 2)
    return pd.DataFrame(
        {
            "datetime_utc": hours,
            "area": areas,
            "consumer_type": 111,
            "energy_consumption": [scale * (10.0 * hour + area) for hour, area in zip(hours.hour, areas)],
        }
    )


class Scale(Config):
    scale: float = 1.0


# Declares its columns as consumption_raw does; `forecasts` as energy_forecasts does.
@asset(
    partitions_def=HOURLY,
    backfill_policy=BackfillPolicy.single_run(),
    metadata=column_schema_metadata(RAW_CONSUMPTION_SCHEMA),
)
def readings(context, config: Scale) -> pd.DataFrame:
    window = context.partition_time_window
    return consumption_rows(window.start, window.end, config.scale)


@asset(
    partitions_def=HOURLY,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_column": "issued_at", **column_schema_metadata(FORECAST_SCHEMA)},
)
def forecasts(context) -> pd.DataFrame:
    window = context.partition_time_window
    issued = pd.date_range(window.start, window.end, freq="h", inclusive="left", tz="UTC", unit="us")
    return pd.DataFrame(
        {
            "area": 1,
            "consumer_type": 111,
            "issued_at": issued,
            "datetime_utc": issued + pd.Timedelta(hours=1),
            "horizon": 1,
            "energy_consumption_forecast": 5.0,
            "model_version": 3,
            "model_training_sha256": "3" * 64,
            **{column: 5.0 for column in INTERVAL_COLUMNS},
            HISTORY_HOURS_MISSING: 0,
        }
    )[FORECAST_COLUMNS]


@asset(partitions_def=HOURLY, backfill_policy=BackfillPolicy.single_run())
def same_hour(readings: pd.DataFrame) -> pd.DataFrame:
    return readings


@asset(partitions_def=HOURLY, backfill_policy=BackfillPolicy.single_run())
def undeclared_readings(context) -> pd.DataFrame:
    """Canonical rows from an asset that does not declare its columns."""
    window = context.partition_time_window
    return consumption_rows(window.start, window.end)


@asset(partitions_def=HOURLY, ins={"readings": AssetIn(partition_mapping=TimeWindowPartitionMapping(start_offset=-2))})
def last_three_hours(context, readings: pd.DataFrame) -> pd.DataFrame:
    """Records, in its own hour, the hours of the rows it was given."""
    loaded = " ".join(str(hour) for hour in readings["datetime_utc"].dt.hour)
    return pd.DataFrame({"datetime_utc": [context.partition_time_window.start], "loaded_hours": [loaded]})


@asset(
    ins={"readings": AssetIn(partition_mapping=AllPartitionMapping(), metadata={"allow_missing_partitions": True})}
)
def every_hour(readings: pd.DataFrame) -> pd.DataFrame:
    return readings


ALL_ASSETS = [readings, forecasts, same_hour, undeclared_readings, last_three_hours, every_hour]


def io_manager(bucket, prefix: str = "energy_assets") -> dict:
    return {"io_manager": PartitionedParquetIOManager(bucket=as_resource(bucket, prefix))}


def run(bucket, selection, prefix: str = "energy_assets", **kwargs):
    return materialize(ALL_ASSETS, selection=selection, resources=io_manager(bucket, prefix), **kwargs)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def stored(bucket, key: str):
    return pq.read_table(io.BytesIO(bucket.read_bytes(key)))


def test_single_partition_round_trip_with_canonical_schema(any_bucket):
    result = run(any_bucket, [readings, same_hour], partition_key="2023-01-14-05:00")
    key = "energy_assets/readings/utc_date=2023-01-14/utc_hour=5/part-0.parquet"
    assert any_bucket.list_keys("energy_assets/readings/") == [key]
    assert stored(any_bucket, key).schema.equals(RAW_CONSUMPTION_SCHEMA)
    loaded = result.output_for_node("same_hour")
    expected = consumption_rows("2023-01-14-05:00", "2023-01-14-06:00").astype({"area": "int8", "consumer_type": "int32"})
    pd.testing.assert_frame_equal(loaded, expected)
    metadata = result.asset_materializations_for_node("readings")[0].metadata
    assert metadata["uri"].value == any_bucket.uri(key)
    assert metadata["rows"].value == 2
    # The columns are the definition's (dagster/column_schema), not repeated in the hour's event.
    assert set(metadata) == {"uri", "rows", "bytes"}


def test_range_output_is_split_into_the_objects_per_partition_runs_write(any_bucket, instance):
    result = run(any_bucket, [readings], prefix="range", tags=RANGE_TAGS, instance=instance)
    for key in RANGE_KEYS:
        run(any_bucket, [readings], prefix="single", partition_key=key)
    range_keys = any_bucket.list_keys("range/")
    assert range_keys == [partition_object_key("range", ["readings"], key) for key in RANGE_KEYS]
    for key in range_keys:
        assert any_bucket.read_bytes(key) == any_bucket.read_bytes(key.replace("range/", "single/", 1))
    # Each hour's materialization claims nothing of the range (before: objects 3, rows 6, the range's bytes and
    # first/last uri on every hour), nor repeats the columns the definition declares (before: the schema, about
    # 2.8 kB of each forecast hour's event); the range's summary is the run's, in its log.
    metadata = partition_metadata(instance, "readings")
    assert metadata == {key: {} for key in RANGE_KEYS}
    size = sum(len(any_bucket.read_bytes(key)) for key in range_keys)
    messages = [entry.user_message for entry in instance.all_logs(result.run_id) if entry.dagster_event is None]
    summary = (
        f"asset readings: wrote 3 objects, 6 rows, {size:,} bytes: "
        f"{any_bucket.uri(range_keys[0])} ... {any_bucket.uri(range_keys[-1])}"
    )
    assert summary in messages


def test_an_asset_without_declared_columns_gets_the_written_columns_on_each_hour(any_bucket, instance):
    run(any_bucket, [undeclared_readings], tags=RANGE_TAGS, instance=instance)
    metadata = partition_metadata(instance, "undeclared_readings")
    assert sorted(metadata) == RANGE_KEYS
    for hour in metadata.values():
        assert set(hour) == {"schema"}
        columns = hour["schema"].schema.columns
        assert [(column.name, column.type) for column in columns] == [
            (field.name, str(field.type)) for field in RAW_CONSUMPTION_SCHEMA
        ]
        # With each column's description and nullability, as a declaration gives them (before: names and types).
        assert columns[0].description == RAW_CONSUMPTION_SCHEMA.field("datetime_utc").metadata[b"description"].decode()
        assert all(column.constraints.nullable for column in columns)


def test_rows_of_other_columns_than_the_declared_are_refused_before_anything_is_written(any_bucket):
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    rows = consumption_rows("2023-01-14-01:00", "2023-01-14-03:00")
    declared_forecasts = output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[1]), column_schema_metadata(FORECAST_SCHEMA))
    with declared_forecasts, pytest.raises(Failure) as refused:
        manager.handle_output(declared_forecasts, rows)
    first = any_bucket.uri(partition_object_key("energy_assets", ["readings"], RANGE_KEYS[0]))
    assert refused.value.description == (
        f"asset readings: {first} would hold other columns than its definition declares (dagster/column_schema): "
        "undeclared ['energy_consumption double'], absent ['issued_at timestamp[us, tz=UTC]', 'horizon int16', "
        "'energy_consumption_forecast double', 'model_version int32', 'model_training_sha256 string', "
        + ", ".join(f"'{column} double'" for column in INTERVAL_COLUMNS)
        + ", 'history_hours_missing int16']"
    )
    assert refused.value.allow_retries is False
    wider_area = pa.schema([field.with_type(pa.int16()) if field.name == "area" else field for field in RAW_CONSUMPTION_SCHEMA])
    declared_int16 = output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[1]), column_schema_metadata(wider_area))
    with declared_int16, pytest.raises(Failure, match=r"undeclared \['area int8'\], absent \['area int16'\]"):
        manager.handle_output(declared_int16, rows)
    assert any_bucket.list_keys("") == []


def test_the_bucket_assets_declare_the_columns_of_their_arrow_schemas():
    from energy_assets.definitions import defs

    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    declared = {name: spec.metadata[COLUMN_SCHEMA_METADATA] for name, spec in specs.items() if COLUMN_SCHEMA_METADATA in spec.metadata}
    # Every asset whose columns schema.py owns; forecast_accuracy's are pandas dtypes (monitoring.accuracy), so the
    # IO manager gives each of its hours the written schema instead.
    owned = {"consumption_raw": RAW_CONSUMPTION_SCHEMA, "energy_forecasts": FORECAST_SCHEMA}
    assert set(declared) == set(owned)
    for name, schema in owned.items():
        columns = declared[name].columns
        assert [(c.name, c.type, c.description, c.constraints.nullable) for c in columns] == [
            (f.name, str(f.type), f.metadata[b"description"].decode(), f.nullable) for f in schema
        ]
    forecast_columns = {column.name: column for column in declared["energy_forecasts"].columns}
    assert forecast_columns["issued_at"].type == "timestamp[us, tz=UTC]" and not forecast_columns["issued_at"].constraints.nullable
    assert forecast_columns[HISTORY_HOURS_MISSING].constraints.nullable


def test_partition_column_comes_from_asset_metadata(any_bucket):
    run(any_bucket, [forecasts], tags=RANGE_TAGS)
    # datetime_utc is an hour later than issued_at: splitting by it would put the last row out of range.
    for key in RANGE_KEYS:
        table = stored(any_bucket, partition_object_key("energy_assets", ["forecasts"], key))
        assert table.schema.equals(FORECAST_SCHEMA)
        assert table.column("issued_at").to_pylist() == [parse_hour_key(key)]


def test_rewriting_a_partition_replaces_it(any_bucket):
    run(any_bucket, [readings], partition_key="2023-01-14-05:00")
    run(any_bucket, [readings], partition_key="2023-01-14-05:00", run_config={"ops": {"readings": {"config": {"scale": 10.0}}}})
    table = stored(any_bucket, "energy_assets/readings/utc_date=2023-01-14/utc_hour=5/part-0.parquet")
    assert table.column("energy_consumption").to_pylist() == [510.0, 520.0]
    assert len(any_bucket.list_keys("energy_assets/")) == 1


def test_loads_a_window_and_all_partitions_in_time_order(any_bucket):
    run(any_bucket, [readings], tags={**RANGE_TAGS, "dagster/asset_partition_range_start": "2023-01-14-00:00"})
    window = run(any_bucket, [last_three_hours], partition_key="2023-01-14-03:00").output_for_node("last_three_hours")
    assert window["loaded_hours"].tolist() == ["1 1 2 2 3 3"]
    every = materialize(
        [readings, every_hour],
        selection=[every_hour],
        resources=io_manager(any_bucket),
    ).output_for_node("every_hour")
    assert every["datetime_utc"].dt.hour.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert any_bucket.exists("energy_assets/every_hour.parquet")
    with build_input_context(asset_key="every_hour") as context:
        reloaded = PartitionedParquetIOManager(bucket=as_resource(any_bucket)).load_input(context)
    pd.testing.assert_frame_equal(reloaded, every)


def test_loading_an_unwritten_partition_names_the_missing_objects(any_bucket):
    run(any_bucket, [readings], partition_key="2023-01-14-02:00")
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    one = build_input_context(asset_key="readings", asset_partitions_def=HOURLY, partition_key="2023-01-14-03:00")
    missing = any_bucket.uri("energy_assets/readings/utc_date=2023-01-14/utc_hour=3/part-0.parquet")
    with one, pytest.raises(FileNotFoundError, match="no object at " + missing):
        manager.load_input(one)
    many = build_input_context(
        asset_key="readings",
        asset_partitions_def=HOURLY,
        asset_partition_key_range=PartitionKeyRange("2023-01-14-01:00", "2023-01-14-03:00"),
    )
    never_written = (
        r"2 of 3 partitions were never written, first .*utc_hour=1/part-0\.parquet, last .*utc_hour=3/part-0\.parquet"
    )
    with many, pytest.raises(FileNotFoundError, match=never_written):
        manager.load_input(many)


def output_context(key_range: PartitionKeyRange, metadata: dict | None = None):
    return build_output_context(
        asset_key="readings",
        asset_partitions_def=HOURLY,
        asset_partition_key_range=key_range,
        definition_metadata=metadata or {},
    )


def test_rows_outside_the_written_partitions_are_refused(any_bucket):
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    rows = consumption_rows("2023-01-14-00:00", "2023-01-14-05:00")
    context = output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[-1]))
    outside = r"4 rows have datetime_utc outside the partitions written .*2023-01-14-01:00 \.\. 2023-01-14-03:00"
    with context, pytest.raises(ValueError, match=outside):
        manager.handle_output(context, rows)
    assert any_bucket.list_keys("") == []


def test_missing_partition_column_says_how_to_name_it(any_bucket):
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    rows = consumption_rows("2023-01-14-01:00", "2023-01-14-02:00")
    context = output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[0]), {"partition_column": "issued_at"})
    with context, pytest.raises(ValueError, match="partition column 'issued_at' is not among the columns"):
        manager.handle_output(context, rows)


def test_an_hour_without_rows_gets_a_zero_row_object_with_the_schema(any_bucket):
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    rows = consumption_rows("2023-01-14-01:00", "2023-01-14-02:00")
    with output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[1])) as context:
        manager.handle_output(context, rows)
    empty = stored(any_bucket, partition_object_key("energy_assets", ["readings"], RANGE_KEYS[1]))
    assert empty.num_rows == 0 and empty.schema.equals(RAW_CONSUMPTION_SCHEMA)


def test_rows_that_break_the_canonical_schema_are_refused(any_bucket):
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    rows = consumption_rows("2023-01-14-01:00", "2023-01-14-03:00")
    rows = rows.astype({"area": "float64"})
    rows.loc[len(rows) - 1, "area"] = 1.5  # in the second hour: the first must not be written either
    context = output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[1]))
    with context, pytest.raises(Failure, match="asset readings: rows do not fit the canonical schema"):
        manager.handle_output(context, rows)
    assert any_bucket.list_keys("") == []


def test_missing_gcs_bucket_fails_the_run_with_its_name(gcs_emulator_env):
    manager = PartitionedParquetIOManager(bucket=as_resource(GCSBucket(bucket_name="never-created")))
    rows = consumption_rows("2023-01-14-01:00", "2023-01-14-02:00")
    context = output_context(PartitionKeyRange(RANGE_KEYS[0], RANGE_KEYS[0]))
    with context, pytest.raises(Failure, match="GCS bucket 'never-created' does not exist") as failure:
        manager.handle_output(context, rows)
    assert failure.value.allow_retries is False


def test_an_unreadable_object_is_named_when_loaded(any_bucket):
    run(any_bucket, [readings], partition_key="2023-01-14-05:00")
    key = partition_object_key("energy_assets", ["readings"], "2023-01-14-05:00")
    whole = any_bucket.read_bytes(key)
    any_bucket.write_bytes(key, whole[: len(whole) // 2])
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    context = build_input_context(asset_key="readings", asset_partitions_def=HOURLY, partition_key="2023-01-14-05:00")
    with context, pytest.raises(Failure) as raised:
        manager.load_input(context)
    assert f"{any_bucket.uri(key)} is not a readable parquet object ({len(whole) // 2} bytes): " in raised.value.description
    assert "<Buffer>" not in raised.value.description and raised.value.allow_retries is False


def test_an_object_holding_another_hour_s_rows_is_named_when_loaded(any_bucket):
    # A copy of 05:00 at 06:00 used to load as 06:00 and fail downstream with a misleading message.
    run(any_bucket, [readings], partition_key="2023-01-14-05:00")
    key = partition_object_key("energy_assets", ["readings"], "2023-01-14-05:00")
    other = any_bucket.write_bytes(partition_object_key("energy_assets", ["readings"], "2023-01-14-06:00"), any_bucket.read_bytes(key))
    manager = PartitionedParquetIOManager(bucket=as_resource(any_bucket))
    upstream = build_output_context(asset_key="readings", definition_metadata={"partition_column": "datetime_utc"})
    context = build_input_context(
        asset_key="readings", asset_partitions_def=HOURLY, partition_key="2023-01-14-06:00", upstream_output=upstream
    )

    with upstream, context, pytest.raises(Failure) as raised:
        manager.load_input(context)

    assert f"{other} is not partition 2023-01-14-06:00: its rows have datetime_utc 2023-01-14T05:00:00+00:00 ... " in raised.value.description
    assert "outside [2023-01-14T06:00:00+00:00, 2023-01-14T07:00:00+00:00)" in raised.value.description
