"""Layout and encoding of the parquet objects that assets keep in a bucket: a hive-partitioned dataset per asset.

A partitioned asset's hour H is stored at `<prefix>/<asset>/utc_date=<YYYY-MM-DD>/utc_hour=<H>/part-0.parquet`:
no ':' in any name (Hadoop-based readers refuse it), and the date and hour are partition columns that
pyarrow, DuckDB, Spark and BigQuery read back as a DATE and an integer and prune on. The objects hold
the asset's own columns only; the partition columns live in the names.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from energy_assets.schema import (
    CANONICAL_SCHEMAS,
    PARTITION_DATE,
    PARTITION_HOUR,
    PARTITION_SCHEMA,
    conform,
    with_later_columns,
)
from energy_assets.storage.buckets import Bucket
from energy_assets.timeline import hour_key, parse_hour_key

SUFFIX = ".parquet"
# One object per partition; the name follows Spark's and pyarrow's `part-<n>` so tools that glob for it find it.
PART_NAME = "part-0" + SUFFIX
_HIVE_PART = re.compile(
    rf"{PARTITION_DATE}=(?P<date>\d{{4}}-\d{{2}}-\d{{2}})/{PARTITION_HOUR}=(?P<hour>\d{{1,2}})/{re.escape(PART_NAME)}$"
)
# The layout before the hive one: `<prefix>/<asset>/<YYYY-MM-DD-HH:MM>.parquet`.
_LEGACY_NAME = re.compile(r"(?P<key>\d{4}-\d{2}-\d{2}-\d{2}:\d{2})" + re.escape(SUFFIX) + "$")


def asset_folder(prefix: str, asset_path: Sequence[str]) -> str:
    """`<prefix>/<asset path>/`: the folder holding the dataset of an asset."""
    return "/".join([prefix, *asset_path]) + "/"


def hour_folder(hour: pd.Timestamp) -> str:
    """`utc_date=<YYYY-MM-DD>/utc_hour=<H>/`: the hive folder of one UTC hour (hour without a leading zero,
    so every engine reads it as an integer)."""
    return f"{date_folder(hour)}{PARTITION_HOUR}={hour.hour}/"


def date_folder(hour: pd.Timestamp) -> str:
    """`utc_date=<YYYY-MM-DD>/`: the hive folder of one UTC date."""
    return f"{PARTITION_DATE}={hour.strftime('%Y-%m-%d')}/"


def partition_object_key(prefix: str, asset_path: Sequence[str], partition_key: str) -> str:
    """`<prefix>/<asset path>/utc_date=<date>/utc_hour=<hour>/part-0.parquet` for an hourly partition key."""
    try:
        hour = parse_hour_key(partition_key)
    except ValueError:
        raise ValueError(f"partition key {partition_key!r} is not an hour such as 2023-01-14-23:00") from None
    return asset_folder(prefix, asset_path) + hour_folder(hour) + PART_NAME


def legacy_partition_object_key(prefix: str, asset_path: Sequence[str], partition_key: str) -> str:
    """Where the layout before the hive one kept a partition: `<prefix>/<asset path>/<partition key>.parquet`."""
    return asset_folder(prefix, asset_path) + partition_key + SUFFIX


def unpartitioned_object_key(prefix: str, asset_path: Sequence[str]) -> str:
    """`<prefix>/<asset path>.parquet`."""
    return "/".join([prefix, *asset_path]) + SUFFIX


def hour_of_object(name: str) -> pd.Timestamp | None:
    """The UTC hour a hive object name (relative to its asset folder) names, or None for any other name."""
    match = _HIVE_PART.fullmatch(name)
    if match is None:
        return None
    return pd.Timestamp(f"{match['date']} {int(match['hour']):02d}:00", tz="UTC")


def legacy_partition_key(name: str) -> str | None:
    """The partition key of an object name in the old layout (`2023-01-14-23:00.parquet`), or None."""
    match = _LEGACY_NAME.fullmatch(name)
    return match["key"] if match else None


def partition_keys_in(bucket: Bucket, folder: str) -> dict[str, str]:
    """Partition key -> object key of every hourly partition object of the dataset in `folder` (one listing)."""
    return {hour_key(hour): key for hour, key in hourly_objects(bucket, folder).items()}


def hourly_objects(bucket: Bucket, folder: str) -> dict[pd.Timestamp, str]:
    """UTC hour -> object key of every hourly partition object in `folder`, oldest first (one listing);
    other objects (a consumer's `_SUCCESS`, say) are not partitions and are left out."""
    hours = {}
    for key in bucket.list_keys(folder):
        hour = hour_of_object(key[len(folder) :])
        if hour is not None:
            hours[hour] = key
    return dict(sorted(hours.items()))


def hive_partitioning() -> ds.Partitioning:
    """The partitioning every reader passes to pyarrow so that the partition columns come back typed."""
    return ds.partitioning(PARTITION_SCHEMA, flavor="hive")


def canonical_schema(frame: pd.DataFrame) -> pa.Schema | None:
    """The canonical schema whose columns are the frame's columns, if any."""
    return next((schema for schema in CANONICAL_SCHEMAS if set(frame.columns) == set(schema.names)), None)


def is_canonical(frame: pd.DataFrame) -> bool:
    """Whether `to_arrow` conforms the frame to a canonical schema (rather than inferring one from its values)."""
    return canonical_schema(frame) is not None


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as an arrow table: the canonical schema when the columns are its columns, else inferred."""
    schema = canonical_schema(frame)
    if schema is not None:
        return conform(frame, schema, f"rows do not fit the canonical schema {schema.names}")
    return pa.Table.from_pandas(frame, preserve_index=False)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one parquet file."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class UnusableObject:
    """An object that is not what its place in the bucket says it is, and why."""

    key: str
    uri: str
    reason: str

    def __str__(self) -> str:
        return f"{self.uri}: {self.reason}"


def read_tables(
    bucket: Bucket, keys: Sequence[str], check: Callable[[str, pa.Table], str | None] | None = None
) -> tuple[dict[str, pa.Table], list[UnusableObject]]:
    """The project's one parquet reader: each object as an arrow table (`schema.with_later_columns`: in today's
    schema), fetched in one batch.

    An object that is not readable parquet, or that `check(key, table)` refuses (it returns why), is left
    out and returned apart with the reason; the caller skips or raises. Missing objects and storage
    errors raise.
    """
    tables, unusable = {}, []
    for key, data in bucket.read_many(keys).items():
        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowInvalid, OSError) as error:
            # pyarrow names the in-memory buffer, not the object: the caller names the object.
            reason = str(error).replace("Could not open Parquet input source '<Buffer>': ", "")
            unusable.append(UnusableObject(key, bucket.uri(key), f"not a readable parquet object ({len(data)} bytes): {reason}"))
            continue
        table = with_later_columns(table)  # an object of an earlier release, as today's schema has it
        problem = check(key, table) if check else None
        if problem:
            unusable.append(UnusableObject(key, bucket.uri(key), problem))
        else:
            tables[key] = table
    return tables, unusable


def read_frame(bucket: Bucket, keys: Sequence[str], check: Callable[[str, pa.Table], str | None] | None = None) -> pd.DataFrame:
    """The objects at `keys` concatenated in the order given into one frame; `ValueError` naming the first
    unusable one."""
    if not keys:
        return pd.DataFrame()
    tables, unusable = read_tables(bucket, keys, check)
    if unusable:
        raise ValueError(f"{unusable[0].uri} is {unusable[0].reason}")
    # Forecast objects come in today's schema (`read_tables`); others of an earlier release may lack a later
    # column, which reads as nulls for their rows.
    return pa.concat_tables([tables[key] for key in keys], promote_options="default").to_pandas()


def read_recent(bucket: Bucket, folder: str, hours: int, skipped: list[UnusableObject] | None = None) -> pd.DataFrame:
    """The hourly objects in `folder` of the last `hours` hours up to the newest one stored (one listing).

    An unreadable object is appended to `skipped` and left out, or, without `skipped`, raised as a
    `ValueError` naming it.
    """
    stored = hourly_objects(bucket, folder)
    if not stored:
        raise FileNotFoundError(f"nothing stored yet in {bucket.uri(folder)}")
    newest = max(stored)
    keys = [key for hour, key in stored.items() if hour > newest - pd.Timedelta(hours=hours)]
    if skipped is None:
        return read_frame(bucket, keys)
    tables, unusable = read_tables(bucket, keys)
    skipped.extend(unusable)
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables([tables[key] for key in keys if key in tables], promote_options="default").to_pandas()
