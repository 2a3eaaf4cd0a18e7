"""Bucket resources: the deployment's bucket and the prefix of the project's objects in it."""

from __future__ import annotations

from abc import abstractmethod
from typing import Optional

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from energy_assets import settings
from energy_assets.storage.buckets import Bucket, GCSBucket, LocalBucket


class BucketResource(ConfigurableResource):
    """Where the project keeps its objects: a bucket and a prefix inside it."""

    prefix: str = Field(default=settings.DEFAULT_BUCKET_PREFIX, description="Object-name prefix of every object.")

    @abstractmethod
    def get_bucket(self) -> Bucket:
        """The bucket itself."""


class LocalBucketResource(BucketResource):
    """A folder standing in for the bucket; by default `bucket/` under the state directory, resolved at use."""

    root_dir: Optional[str] = None

    def get_bucket(self) -> Bucket:
        """The folder as a bucket."""
        return LocalBucket(root_dir=self.root_dir or str(settings.state_dir() / "bucket"))


class GCSBucketResource(BucketResource):
    """A Google Cloud Storage bucket; the client is created on first use, so definitions load offline."""

    bucket_name: str
    project: Optional[str] = None
    service_account_json_path: Optional[str] = None

    _bucket: Optional[GCSBucket] = PrivateAttr(default=None)

    def get_bucket(self) -> Bucket:
        """The GCS bucket, one client per resource instance."""
        if self._bucket is None:
            self._bucket = GCSBucket(self.bucket_name, self.project, self.service_account_json_path)
        return self._bucket
