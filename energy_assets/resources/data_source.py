"""Consumption sources behind one interface: synthetic (offline), a snapshot file, the Energi Data Service API."""

from __future__ import annotations

from abc import abstractmethod

import pandas as pd
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from energy_assets import settings
from energy_assets.schema import de35_series
from energy_assets.sources import energidataservice, files, synthetic


class ConsumptionSource(ConfigurableResource):
    """Canonical consumption rows for a half-open UTC window."""

    @abstractmethod
    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Rows with start <= datetime_utc < end, sorted by datetime_utc, area, consumer_type, in one query."""

    @abstractmethod
    def expected_series(self) -> pd.DataFrame:
        """The (area, consumer_type) series this source publishes every hour."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the source, for run metadata."""


class SyntheticSource(ConsumptionSource):
    """Deterministic DE35-shaped data for any range, offline."""

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Synthetic rows of the window."""
        return synthetic.synthetic_consumption(start, end)

    def expected_series(self) -> pd.DataFrame:
        """The synthetic series."""
        return synthetic.synthetic_series()

    def describe(self) -> str:
        """One line naming the source."""
        return "synthetic DE35-shaped data"


class FileSource(ConsumptionSource):
    """A ConsumptionDE35Hour snapshot: the dataset's `;` CSV download, a comma CSV or parquet."""

    path: str = Field(description="The snapshot file to read.")

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """The snapshot's rows of the window."""
        return files.read_window(self.path, start, end)

    def expected_series(self) -> pd.DataFrame:
        """The DE35 series."""
        return de35_series()

    def describe(self) -> str:
        """One line naming the source."""
        return f"file {self.path}"


class EnergiDataServiceSource(ConsumptionSource):
    """The Energi Data Service REST API: ConsumptionDE35Hour natively, ConsumptionIndustry mapped."""

    dataset: str = energidataservice.DE35_DATASET
    api_base_url: str = Field(default=settings.DEFAULT_SOURCE_API_URL, description=f"Set by {settings.SOURCE_API_URL}.")
    timeout_seconds: float = Field(default=30.0, description="Bound of one request, from sending it to the answer's last byte.")
    deadline_seconds: float = Field(
        default=settings.DEFAULT_SOURCE_DEADLINE_SECONDS,
        description=f"Bound of one whole fetch, retries and waits included; set by {settings.SOURCE_DEADLINE_SECONDS}.",
    )
    max_attempts: int = 5
    page_size: int = 10_000
    retry_wait_seconds: float = 1.0

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """The dataset's rows of the window, every page."""
        return self._client().fetch(self.dataset, start, end)

    def expected_series(self) -> pd.DataFrame:
        """The series the dataset publishes."""
        return energidataservice.expected_series(self.dataset)

    def describe(self) -> str:
        """One line naming the source."""
        return f"Energi Data Service {self.dataset} at {self.api_base_url}"

    def _client(self) -> energidataservice.EnergiDataServiceClient:
        return energidataservice.EnergiDataServiceClient(
            base_url=self.api_base_url,
            timeout_seconds=self.timeout_seconds,
            deadline_seconds=self.deadline_seconds,
            max_attempts=self.max_attempts,
            page_size=self.page_size,
            retry_wait_seconds=self.retry_wait_seconds,
        )


class SourceNotChosenError(RuntimeError):
    """Production needs an explicitly chosen source: synthetic rows must never reach a real feature group unasked."""


class RefusedSource(ConsumptionSource):
    """Stands in for a source production must not use; fails every run that needs it, before anything is written."""

    problem: str = Field(description="Why no source may be used, naming the variable to set.")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Resources are set up before the step body: the run fails before any write.
        raise SourceNotChosenError(self.problem)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Never: the run must not fetch."""
        raise SourceNotChosenError(self.problem)

    def expected_series(self) -> pd.DataFrame:
        """Never: the run must not validate against this source."""
        raise SourceNotChosenError(self.problem)

    def describe(self) -> str:
        """The refusal, for run metadata."""
        return f"no source: {self.problem}"
