"""Layout and encoding of the parquet objects that assets keep in a bucket: one object per partition."""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from energy_assets.schema import CONSUMPTION_SCHEMA, FORECAST_SCHEMA

if TYPE_CHECKING:
    # Only for annotations: importing the resources package here would make a cycle through the IO manager.
    from energy_assets.resources.bucket import Bucket

DEFAULT_PREFIX = "energy_assets"
SUFFIX = ".parquet"
# Dagster's HourlyPartitionsDefinition key format, e.g. 2023-01-14-23:00.
HOURLY_KEY_FORMAT = "%Y-%m-%d-%H:%M"
CANONICAL_SCHEMAS: tuple[pa.Schema, ...] = (CONSUMPTION_SCHEMA, FORECAST_SCHEMA)
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


def parse_hourly_key(partition_key: str) -> pd.Timestamp:
    """The UTC hour an hourly partition key names."""
    return pd.Timestamp(pd.to_datetime(partition_key, format=HOURLY_KEY_FORMAT, utc=True))


def hourly_objects(bucket: Bucket, folder: str) -> dict[pd.Timestamp, str]:
    """UTC hour -> object key of every hourly partition object in `folder`, oldest first (one listing)."""
    hours = {}
    for partition_key, object_key in partition_keys_in(bucket, folder).items():
        try:
            hours[parse_hourly_key(partition_key)] = object_key
        except ValueError:
            raise ValueError(f"{bucket.uri(object_key)} is not named after an hourly partition key") from None
    return dict(sorted(hours.items()))


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as an arrow table: the canonical schema when the columns are its columns, else inferred."""
    for schema in CANONICAL_SCHEMAS:
        if set(frame.columns) == set(schema.names):
            try:
                return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as error:
                raise ValueError(f"rows do not fit the canonical schema {schema.names}: {error}") from None
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
