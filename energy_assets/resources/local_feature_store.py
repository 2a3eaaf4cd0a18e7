"""The embedded feature store: one parquet file per UTC day under a folder per feature-group version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from energy_assets.resources.feature_store import FeatureStore, canonical_consumption
from energy_assets.storage.files import exclusive_lock, write_atomically, write_concurrently
from energy_assets.timeline import to_utc_hour
from energy_assets.schema import (
    CONSUMPTION_COLUMNS,
    CONSUMPTION_SCHEMA,
    DATETIME,
    SERIES_KEY,
)

SORT_KEY = [*SERIES_KEY, DATETIME]
SERIES_SCHEMA = pa.schema([CONSUMPTION_SCHEMA.field(column) for column in SERIES_KEY])
TIME_TYPE = CONSUMPTION_SCHEMA.field(DATETIME).type


class LocalFeatureStore(FeatureStore):
    """Feature groups as `<root_dir>/<name>/v<version>/<YYYY-MM-DD>.parquet`, one file per UTC day.

    Writers lock the day's hidden `.<day>.lock` around read-modify-write and replace the day file
    atomically, so readers never lock; hidden files keep the folder a plain parquet dataset.
    Reading a version that was never written gives an empty canonical frame, not an error.
    """

    root_dir: str

    def insert(self, rows: pd.DataFrame) -> None:
        """Upsert canonical rows: a row replaces the stored row with the same series and hour."""
        frame = canonical_consumption(rows).drop_duplicates(SORT_KEY, keep="last")
        if frame.empty:
            return
        self._version_dir.mkdir(parents=True, exist_ok=True)
        # Each day is its own file and lock: a backfill's days are upserted several at a time.
        write_concurrently(lambda day: self._upsert_day(*day), list(frame.groupby(frame[DATETIME].dt.floor("D"))))

    def read(
        self,
        start_time: pd.Timestamp,
        end_time: pd.Timestamp,
        series: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Canonical rows with start_time <= datetime_utc < end_time, optionally only the given
        (area, consumer_type) series, sorted by area, consumer_type, datetime_utc."""
        start, end = to_utc_hour(start_time), to_utc_hour(end_time)
        paths = [str(path) for path in self._day_paths(start, end) if path.exists()]
        in_window = (pc.field(DATETIME) >= pa.scalar(start, TIME_TYPE)) & (pc.field(DATETIME) < pa.scalar(end, TIME_TYPE))
        # One dataset over only the window's day files: pyarrow reads them in parallel.
        table = ds.dataset(paths, schema=CONSUMPTION_SCHEMA, format="parquet").to_table(filter=in_window)
        if series is not None:
            table = table.join(_series_table(series), keys=SERIES_KEY, join_type="inner")
        return table.sort_by([(column, "ascending") for column in SORT_KEY]).select(CONSUMPTION_COLUMNS).to_pandas()

    def maintain(self) -> dict[str, Any]:
        """Nothing to compact: each upsert rewrites its day's file whole, so a day is always one file."""
        return {
            "data_files": len(list(self._version_dir.glob("*.parquet"))),
            "compaction": "none needed: one file per UTC day, rewritten whole by each upsert",
        }

    @property
    def _version_dir(self) -> Path:
        return Path(self.root_dir) / self.feature_group_name / f"v{self.feature_group_version}"

    def _day_path(self, day: pd.Timestamp) -> Path:
        return self._version_dir / f"{day:%Y-%m-%d}.parquet"

    def _day_paths(self, start: pd.Timestamp, end: pd.Timestamp) -> list[Path]:
        if end <= start:
            return []
        days = pd.date_range(start.floor("D"), (end - pd.Timedelta(microseconds=1)).floor("D"), freq="D")
        return [self._day_path(day) for day in days]

    def _upsert_day(self, day: pd.Timestamp, rows: pd.DataFrame) -> None:
        path = self._day_path(day)
        with exclusive_lock(path.with_name(f".{day:%Y-%m-%d}.lock")):
            if path.exists():
                stored = pq.read_table(path, schema=CONSUMPTION_SCHEMA).to_pandas()
                rows = pd.concat([stored, rows], ignore_index=True).drop_duplicates(SORT_KEY, keep="last")
            table = pa.Table.from_pandas(rows.sort_values(SORT_KEY), schema=CONSUMPTION_SCHEMA, preserve_index=False)
            write_atomically(path, lambda file: pq.write_table(table, file))


def _series_table(series: pd.DataFrame) -> pa.Table:
    missing = [column for column in SERIES_KEY if column not in series.columns]
    if missing:
        raise ValueError(f"series lack column(s) {missing}; got {list(series.columns)}")
    return pa.Table.from_pandas(series[SERIES_KEY].drop_duplicates(), preserve_index=False).cast(SERIES_SCHEMA)

