"""The consumption data source: synthetic (offline), a snapshot file, or the Energi Data Service API."""

from __future__ import annotations

from typing import Literal, Optional

import pandas as pd
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from energy_assets.schema import de35_series
from energy_assets.sources import energidataservice, files, synthetic


SOURCE_VARIABLE = "ENERGY_ASSETS_SOURCE"
SYNTHETIC_IN_PRODUCTION_VARIABLE = "ENERGY_ASSETS_ALLOW_SYNTHETIC_IN_PROD"


class SourceNotChosenError(RuntimeError):
    """Production needs an explicitly chosen source: synthetic rows must never reach a real feature group."""


class ConsumptionSource(ConfigurableResource):
    """Canonical consumption rows for a half-open UTC window, from the configured kind of source."""

    kind: Literal["synthetic", "file", "api"] = "synthetic"
    kind_chosen: bool = Field(default=True, description=f"False when `kind` is a default ({SOURCE_VARIABLE} unset).")
    production: bool = Field(default=False, description="Rows go to production stores: the source must be chosen.")
    allow_synthetic_in_production: bool = Field(
        default=False, description=f"Explicit opt-in to synthetic rows in production (env {SYNTHETIC_IN_PRODUCTION_VARIABLE})."
    )
    path: Optional[str] = None
    dataset: str = "ConsumptionDE35Hour"
    api_base_url: str = energidataservice.DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    max_attempts: int = 5
    page_size: int = 10_000
    retry_wait_seconds: float = 1.0

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Before any step body runs, so a wrong choice fails before anything is written.
        self.check_choice()

    def check_choice(self) -> None:
        """`SourceNotChosenError` naming the variable when production has no explicit source, or synthetic without opt-in."""
        if not self.production:
            return
        if not self.kind_chosen:
            raise SourceNotChosenError(
                f"{SOURCE_VARIABLE} is not set: in production choose the consumption source explicitly "
                f"({SOURCE_VARIABLE}=api or {SOURCE_VARIABLE}=file with ENERGY_ASSETS_SOURCE_PATH); nothing was written"
            )
        if self.kind == "synthetic" and not self.allow_synthetic_in_production:
            raise SourceNotChosenError(
                f"{SOURCE_VARIABLE}=synthetic in production would write generated rows into the real feature group; "
                f"set {SYNTHETIC_IN_PRODUCTION_VARIABLE}=true to do so on purpose; nothing was written"
            )

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Rows with start <= datetime_utc < end, sorted by datetime_utc, area, consumer_type, in one query."""
        self.check_choice()
        if self.kind == "synthetic":
            return synthetic.synthetic_consumption(start, end)
        if self.kind == "file":
            return files.read_window(self._snapshot_path(), start, end)
        return self._client().fetch(self.dataset, start, end)

    def expected_series(self) -> pd.DataFrame:
        """The (area, consumer_type) series this source publishes every hour."""
        self.check_choice()
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
