"""Layout and encoding of the parquet objects that assets keep in a bucket: a hive-partitioned dataset per asset.

A partitioned asset's hour H is stored at `<prefix>/<asset>/utc_date=<YYYY-MM-DD>/utc_hour=<H>/part-0.parquet`:
no ':' in any name (Hadoop-based readers refuse it), and the date and hour are partition columns that
pyarrow, DuckDB, Spark and BigQuery read back as a DATE and an integer and prune on. The objects hold
the asset's own columns only; the partition columns live in the names.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from energy_assets.schema import CANONICAL_SCHEMAS, PARTITION_DATE, PARTITION_HOUR, PARTITION_SCHEMA, conform
from energy_assets.storage.buckets import Bucket
from energy_assets.timeline import hour_key, parse_hour_key

SUFFIX = ".parquet"
# One object per partition; the name follows Spark's and pyarrow's `part-<n>` so tools that glob for it find it.
PART_NAME = "part-0" + SUFFIX
# Reads are network round trips on GCS; a few in flight hide most of the latency.
_READ_THREADS = 8
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


def read_table(bucket: Bucket, key: str) -> pa.Table:
    """One parquet object as an arrow table; a `ValueError` naming the object when it is not parquet."""
    data = bucket.read_bytes(key)
    try:
        return pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as error:
        # pyarrow names the in-memory buffer, not the object: the URI replaces it.
        reason = str(error).replace("Could not open Parquet input source '<Buffer>': ", "")
        raise ValueError(f"{bucket.uri(key)} is not a readable parquet object ({len(data)} bytes): {reason}") from None


def read_frame(bucket: Bucket, keys: Sequence[str]) -> pd.DataFrame:
    """The parquet objects at `keys`, read concurrently, concatenated in the order given into one frame."""
    if not keys:
        return pd.DataFrame()
    with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(keys))) as pool:
        # Every read finishes (or fails) inside the pool; only then is the first failure raised.
        results = list(pool.map(lambda key: _read_or_error(bucket, key), keys))
    failures = [result for result in results if isinstance(result, Exception)]
    if failures:
        raise failures[0]
    # Objects written before a nullable column was added lack it: it reads as nulls for their rows.
    return pa.concat_tables(results, promote_options="default").to_pandas()


def _read_or_error(bucket: Bucket, key: str) -> pa.Table | Exception:
    try:
        return read_table(bucket, key)
    except (ValueError, OSError) as error:
        return error


def read_recent(bucket: Bucket, folder: str, hours: int) -> pd.DataFrame:
    """The hourly objects in `folder` of the last `hours` hours up to the newest one stored, in one listing."""
    stored = hourly_objects(bucket, folder)
    if not stored:
        raise FileNotFoundError(f"nothing stored yet in {bucket.uri(folder)}")
    newest = max(stored)
    return read_frame(bucket, [key for hour, key in stored.items() if hour > newest - pd.Timedelta(hours=hours)])
