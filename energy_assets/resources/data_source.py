"""The consumption data source: synthetic (offline), a snapshot file, or the Energi Data Service API."""

from __future__ import annotations

from typing import Literal, Optional

import pandas as pd
from dagster import ConfigurableResource

from energy_assets.schema import de35_series
from energy_assets.sources import energidataservice, files, synthetic


class ConsumptionSource(ConfigurableResource):
    """Canonical consumption rows for a half-open UTC window, from the configured kind of source."""

    kind: Literal["synthetic", "file", "api"] = "synthetic"
    path: Optional[str] = None
    dataset: str = "ConsumptionDE35Hour"
    api_base_url: str = energidataservice.DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    max_attempts: int = 5
    page_size: int = 10_000
    retry_wait_seconds: float = 1.0

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Rows with start <= datetime_utc < end, sorted by datetime_utc, area, consumer_type, in one query."""
        if self.kind == "synthetic":
            return synthetic.synthetic_consumption(start, end)
        if self.kind == "file":
            return files.read_window(self._snapshot_path(), start, end)
        return self._client().fetch(self.dataset, start, end)

    def expected_series(self) -> pd.DataFrame:
        """The (area, consumer_type) series this source publishes every hour."""
        if self.kind == "synthetic":
            return synthetic.synthetic_series()
        if self.kind == "file":
            return de35_series()
        return energidataservice.expected_series(self.dataset)

    def describe(self) -> str:
        """One line naming the source, for run metadata."""
        if self.kind == "file":
            return f"file {self.path}"
        if self.kind == "api":
            return f"Energi Data Service {self.dataset} at {self.api_base_url}"
        return "synthetic DE35-shaped data"

    def _snapshot_path(self) -> str:
        if not self.path:
            raise ValueError("ConsumptionSource(kind='file') needs `path`: the snapshot file to read")
        return self.path

    def _client(self) -> energidataservice.EnergiDataServiceClient:
        return energidataservice.EnergiDataServiceClient(
            base_url=self.api_base_url,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            page_size=self.page_size,
            retry_wait_seconds=self.retry_wait_seconds,
        )
