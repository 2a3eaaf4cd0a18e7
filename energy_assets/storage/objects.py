"""Layout and encoding of the parquet objects that assets keep in a bucket: one object per partition."""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from energy_assets.schema import CANONICAL_SCHEMAS, conform
from energy_assets.storage.buckets import Bucket
from energy_assets.timeline import parse_hour_key

SUFFIX = ".parquet"
# Reads are network round trips on GCS; a few in flight hide most of the latency.
_READ_THREADS = 8


def asset_folder(prefix: str, asset_path: Sequence[str]) -> str:
    """`<prefix>/<asset path>/`: the folder holding one object per partition of an asset."""
    return "/".join([prefix, *asset_path]) + "/"


def partition_object_key(prefix: str, asset_path: Sequence[str], partition_key: str) -> str:
    """`<prefix>/<asset path>/<partition key>.parquet`."""
    return asset_folder(prefix, asset_path) + partition_key + SUFFIX


def unpartitioned_object_key(prefix: str, asset_path: Sequence[str]) -> str:
    """`<prefix>/<asset path>.parquet`."""
    return "/".join([prefix, *asset_path]) + SUFFIX


def partition_keys_in(bucket: Bucket, folder: str) -> dict[str, str]:
    """Partition key -> object key of every partition object directly in `folder` (one listing)."""
    found = {}
    for key in bucket.list_keys(folder):
        name = key[len(folder) :]
        if "/" not in name and name.endswith(SUFFIX):
            found[name[: -len(SUFFIX)]] = key
    return found


def hourly_objects(bucket: Bucket, folder: str) -> dict[pd.Timestamp, str]:
    """UTC hour -> object key of every hourly partition object in `folder`, oldest first (one listing)."""
    hours = {}
    for partition_key, object_key in partition_keys_in(bucket, folder).items():
        try:
            hours[parse_hour_key(partition_key)] = object_key
        except ValueError:
            raise ValueError(f"{bucket.uri(object_key)} is not named after an hourly partition key") from None
    return dict(sorted(hours.items()))


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as an arrow table: the canonical schema when the columns are its columns, else inferred."""
    for schema in CANONICAL_SCHEMAS:
        if set(frame.columns) == set(schema.names):
            return conform(frame, schema, f"rows do not fit the canonical schema {schema.names}")
    return pa.Table.from_pandas(frame, preserve_index=False)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one parquet file."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_table(bucket: Bucket, key: str) -> pa.Table:
    """One parquet object as an arrow table."""
    return pq.read_table(io.BytesIO(bucket.read_bytes(key)))


def read_frame(bucket: Bucket, keys: Sequence[str]) -> pd.DataFrame:
    """The parquet objects at `keys`, read concurrently, concatenated in the order given into one frame."""
    if not keys:
        return pd.DataFrame()
    with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(keys))) as pool:
        tables = list(pool.map(lambda key: read_table(bucket, key), keys))
    return pa.concat_tables(tables).to_pandas()


def read_recent(bucket: Bucket, folder: str, hours: int) -> pd.DataFrame:
    """The hourly objects in `folder` of the last `hours` hours up to the newest one stored, in one listing."""
    stored = hourly_objects(bucket, folder)
    if not stored:
        raise FileNotFoundError(f"nothing stored yet in {bucket.uri(folder)}")
    newest = max(stored)
    return read_frame(bucket, [key for hour, key in stored.items() if hour > newest - pd.Timedelta(hours=hours)])
