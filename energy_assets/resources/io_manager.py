"""IO manager keeping each partition of an asset as one parquet object in a bucket.

Layout (owned by `storage.objects`): a hive-partitioned dataset per partitioned asset, for example
`energy_assets/energy_forecasts/utc_date=2023-01-14/utc_hour=23/part-0.parquet`, and
`<prefix>/<asset key path>.parquet` for an unpartitioned one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    ConfigurableIOManager,
    Failure,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    TableSchemaMetadataValue,
    TimeWindowPartitionsDefinition,
)

from energy_assets.resources.bucket import BucketResource
from energy_assets.resources.retries import retry_transient
from energy_assets.storage.buckets import cannot_heal
from energy_assets.storage.objects import (
    asset_folder,
    is_canonical,
    parquet_bytes,
    partition_keys_in,
    partition_object_key,
    read_frame,
    to_arrow,
    unpartitioned_object_key,
)
from energy_assets.schema import DATETIME

# Dagster's definition metadata declaring an asset's columns (its TableMetadataSet.column_schema), shown in the UI's
# Columns; a bucket asset whose columns are owned by an arrow schema declares them with `column_schema_metadata`.
COLUMN_SCHEMA_METADATA = "dagster/column_schema"
# Output metadata naming the column whose time decides a row's partition, e.g. {"partition_column": "issued_at"}.
PARTITION_COLUMN_METADATA = "partition_column"
# Input metadata, as in Dagster's UPathIOManager: skip upstream partitions never written instead of failing.
ALLOW_MISSING_PARTITIONS_METADATA = "allow_missing_partitions"


class PartitionedParquetIOManager(ConfigurableIOManager):
    """Stores pandas DataFrames as parquet, one object per partition, and accepts a range of partitions
    in one output (a single-run backfill): the rows are split by the time in the partition column.

    An hour of the range with no rows is written as a zero-row object with the frame's schema; an
    asset that must not produce empty hours checks that itself.
    """

    bucket: BucketResource

    @property
    def prefix(self) -> str:
        return self.bucket.prefix

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        """Write the frame: one object per partition of the output, or one object when unpartitioned."""
        asset = context.asset_key.to_user_string()
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"asset {asset}: {type(self).__name__} stores pandas DataFrames, got {type(obj).__name__}")
        asset_path = context.asset_key.path
        layout = _partition_order(context, obj) if context.has_asset_partitions else None
        # Encode every object before writing any, so rows that break the schema leave the bucket untouched.
        try:
            if layout is None:
                tables = [(unpartitioned_object_key(self.prefix, asset_path), to_arrow(obj))]
            else:
                tables = [
                    (partition_object_key(self.prefix, asset_path, key), table)
                    for key, table in _encode_by_partition(obj, *layout)
                ]
            declared = _declared_columns(context.definition_metadata)
            if declared is not None:
                _refuse_undeclared_columns(declared, tables, self.bucket.get_bucket().uri)
        except ValueError as error:
            # Rows that do not fit their schema stay so on every retry.
            raise Failure(description=f"asset {asset}: {error}", allow_retries=False) from None
        encoded = [(object_key, parquet_bytes(table)) for object_key, table in tables]
        try:
            uris = self.bucket.get_bucket().write_many(encoded)
        except Exception as error:
            if not cannot_heal(error):
                where = f"asset {asset}: writing to {self.bucket.get_bucket().uri(self.prefix)}"
                raise retry_transient(error, context.step_context.previous_attempt_count, where) from error
            raise Failure(
                description=f"asset {asset}: cannot write to {self.bucket.get_bucket().uri(self.prefix)}: {error}",
                allow_retries=False,
            ) from error
        written = [(uri, table.num_rows, len(data)) for uri, (_, table), (_, data) in zip(uris, tables, encoded)]
        for uri, rows, _ in written:
            if rows == 0:
                context.log.warning(f"asset {asset}: wrote a zero-row object at {uri}")
        # An asset that declares its columns has them on its definition, once; an hour's event repeats them only
        # for an asset that does not (about 2.8 kB of each hour of a backfill otherwise).
        schema = {} if declared is not None else {"schema": MetadataValue.table_schema(column_schema(tables[0][1].schema))}
        if len(written) == 1:
            uri, rows, size = written[0]
            context.add_output_metadata({"uri": MetadataValue.path(uri), "rows": rows, "bytes": size, **schema})
            return
        # Dagster copies an output's metadata into every partition's materialization, and an IO manager has no
        # public means to scope it to one partition (OutputContext.add_output_metadata takes no partition key,
        # dagster-io/dagster#18123): each hour gets only what is true of it (an undeclared asset's schema), and the
        # range's summary goes to the run's log, not into every hour as if it were that hour's object. An asset
        # gives its partitions their own facts (context.add_asset_metadata(..., partition_key=...)).
        context.log.info(
            f"asset {asset}: wrote {len(written)} objects, {sum(r for _, r, _ in written):,} rows, "
            f"{sum(b for _, _, b in written):,} bytes: {written[0][0]} ... {written[-1][0]}"
        )
        if schema:
            context.add_output_metadata(schema)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        """The upstream rows of every partition the input needs, concatenated in time order.

        A partition never written is an error, unless the input has metadata
        {"allow_missing_partitions": True} (useful with AllPartitionMapping, which asks for every
        partition since the start date). An object that is not readable parquet, or whose rows lie
        outside the hour its name gives, fails the step naming it (a retry would read the same bytes).
        """
        asset = context.asset_key.to_user_string()
        asset_path = context.asset_key.path
        if not context.has_asset_partitions:
            return self._read(context, asset, {None: unpartitioned_object_key(self.prefix, asset_path)})
        # Dagster lists the partitions of a time-window subset in time order.
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._read(context, f"{asset} partition {keys[0]}", {keys[0]: partition_object_key(self.prefix, asset_path, keys[0])})
        # Many partitions: one listing tells which are missing before any object is read.
        stored = partition_keys_in(self.bucket.get_bucket(), asset_folder(self.prefix, asset_path))
        missing = [key for key in keys if key not in stored]
        if missing and context.definition_metadata.get(ALLOW_MISSING_PARTITIONS_METADATA):
            context.log.info(f"asset {asset}: {len(missing)} of {len(keys)} partitions were never written, skipped")
            keys = [key for key in keys if key in stored]
        elif missing:
            raise FileNotFoundError(
                f"cannot load asset {asset}: {len(missing)} of {len(keys)} partitions were never written, "
                f"first {self.bucket.get_bucket().uri(partition_object_key(self.prefix, asset_path, missing[0]))}, "
                f"last {self.bucket.get_bucket().uri(partition_object_key(self.prefix, asset_path, missing[-1]))}"
            )
        return self._read(context, asset, {key: stored[key] for key in keys})

    def _read(self, context: InputContext, what: str, objects: dict[str | None, str]) -> pd.DataFrame:
        """The objects (partition key -> object key, in order) as one frame, each checked against its hour."""
        try:
            return read_frame(self.bucket.get_bucket(), list(objects.values()), _rows_in_their_hour(context, objects))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"cannot load asset {what}: {error}") from None
        except ValueError as unusable:
            raise Failure(description=f"cannot load asset {what}: {unusable}", allow_retries=False) from None


def _rows_in_their_hour(context: InputContext, objects: dict[str | None, str]) -> Callable[[str, pa.Table], str | None] | None:
    """A check that each object's rows lie in the time window its partition key names, by the partition column
    its asset wrote them by (an object holding another hour's rows is named, not mistaken for that hour)."""
    partitions_def = context.asset_partitions_def if context.has_asset_partitions else None
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition) or context.upstream_output is None:
        return None  # no hours, or no upstream output to say which column the rows were partitioned by
    column = (context.upstream_output.definition_metadata or {}).get(PARTITION_COLUMN_METADATA, DATETIME)
    windows = {object_key: (key, partitions_def.time_window_for_partition_key(key)) for key, object_key in objects.items()}

    def check(object_key: str, table: pa.Table) -> str | None:
        key, window = windows[object_key]
        if table.num_rows == 0 or column not in table.column_names:
            return None
        first, last = (pd.Timestamp(value.as_py()) for value in (pc.min(table[column]), pc.max(table[column])))
        if pd.isna(first) or (first >= window.start and last < window.end):
            return None
        return (
            f"not partition {key}: its rows have {column} {first.isoformat()} ... {last.isoformat()}, "
            f"outside [{pd.Timestamp(window.start).isoformat()}, {pd.Timestamp(window.end).isoformat()})"
        )

    return check


def _encode_by_partition(
    frame: pd.DataFrame, keys: list[str], order: np.ndarray, bounds: np.ndarray
) -> list[tuple[str, pa.Table]]:
    """(partition key, its rows as arrow) for every partition, from `_partition_order`'s layout.

    A frame of a canonical schema is conformed once and sliced: conforming each partition's rows
    apart cost about 9 ms a partition, most of a long backfill's write, for the same tables.
    """
    if is_canonical(frame):
        table = to_arrow(frame).take(pa.array(order))
        return [(key, table.slice(bounds[i], bounds[i + 1] - bounds[i])) for i, key in enumerate(keys)]
    return [
        (key, to_arrow(frame.iloc[order[bounds[i] : bounds[i + 1]]].reset_index(drop=True)))
        for i, key in enumerate(keys)
    ]


def _partition_order(context: OutputContext, frame: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The output's partition keys in time order, the row order grouping the frame by partition (rows
    keep their order within one), and where each partition's rows start in it (plus the end)."""
    asset = context.asset_key.to_user_string()
    partitions_def = context.asset_partitions_def
    keys = context.asset_partition_keys
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        if len(keys) == 1:
            return list(keys), np.arange(len(frame)), np.array([0, len(frame)])
        raise ValueError(f"asset {asset}: only time-window partitions can be written as a range, got {keys}")
    column = context.definition_metadata.get(PARTITION_COLUMN_METADATA, DATETIME)
    if column not in frame.columns:
        raise ValueError(
            f"asset {asset}: partition column {column!r} is not among the columns {list(frame.columns)}; "
            f"name the right one with metadata {{'{PARTITION_COLUMN_METADATA}': ...}} on the asset"
        )
    windows, keys = zip(*sorted((partitions_def.time_window_for_partition_key(key), key) for key in keys))
    starts = pd.DatetimeIndex([window.start for window in windows]).tz_convert("UTC")
    ends = pd.DatetimeIndex([window.end for window in windows]).tz_convert("UTC")
    times = pd.DatetimeIndex(frame[column])
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    position = starts.searchsorted(times, side="right") - 1
    inside = (position >= 0) & (times < ends[position.clip(0)])
    if not inside.all():
        outside = times[~inside]
        raise ValueError(
            f"asset {asset}: {len(outside)} rows have {column} outside the partitions written "
            f"[{starts[0]}, {ends[-1]}) ({keys[0]} .. {keys[-1]}), e.g. {outside[0]}"
        )
    # One stable sort groups the rows by partition and keeps their order within each partition.
    order = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[order], np.arange(len(keys) + 1))
    return list(keys), order, bounds


def column_schema(schema: pa.Schema) -> TableSchema:
    """An arrow schema as Dagster's table schema: each field's name, arrow type, description (the field's
    `description` metadata, as `schema.py` gives every owned field) and whether it may be null."""
    return TableSchema(
        columns=[
            TableColumn(
                name=field.name,
                type=str(field.type),
                description=(field.metadata or {}).get(b"description", b"").decode() or None,
                constraints=TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema
        ]
    )


def column_schema_metadata(schema: pa.Schema) -> dict[str, TableSchema]:
    """Definition metadata declaring that an asset's objects hold exactly the columns of `schema`: the UI shows
    them (with their descriptions) once, and the IO manager refuses to write rows of other columns or types."""
    return {COLUMN_SCHEMA_METADATA: column_schema(schema)}


def _declared_columns(definition_metadata: Mapping[str, object] | None) -> TableSchema | None:
    """The column schema an asset's definition declares, if any."""
    declared = (definition_metadata or {}).get(COLUMN_SCHEMA_METADATA)
    return declared.schema if isinstance(declared, TableSchemaMetadataValue) else declared


def _refuse_undeclared_columns(declared: TableSchema, tables: list[tuple[str, pa.Table]], uri: Callable[[str], str]) -> None:
    """A `ValueError` naming the first object whose columns (names, order, types) are not those its asset's
    definition declares: consumers of the bucket read the declared columns."""
    wanted = [(column.name, column.type) for column in declared.columns]
    for object_key, table in tables:
        found = [(field.name, str(field.type)) for field in table.schema]
        if found == wanted:
            continue
        undeclared = [f"{name} {type_}" for name, type_ in found if (name, type_) not in wanted]
        absent = [f"{name} {type_}" for name, type_ in wanted if (name, type_) not in found]
        difference = f"undeclared {undeclared}, absent {absent}" if undeclared or absent else f"in the order {table.column_names}"
        raise ValueError(
            f"{uri(object_key)} would hold other columns than its definition declares ({COLUMN_SCHEMA_METADATA}): {difference}"
        )
