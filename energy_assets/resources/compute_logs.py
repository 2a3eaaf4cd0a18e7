"""Step logs in the deployment's bucket, through the project's GCS credentials rule.

dagster-gcp's `GCSComputeLogManager` stores and serves each step's stdout/stderr; its own constructor
takes application default credentials only (its `json_credentials_envvar` still needs them first) and
asserts `bucket.exists()`, which needs `storage.buckets.get`, a permission no object role has: with the
Storage Object roles the project documents, every process that loads the instance failed. This one
builds the same manager on the project's GCS client (`storage.buckets.deployment_bucket`: the
service-account key of GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON_PATH, else application default credentials)
and checks the bucket with an object listing, so each process needs exactly the object permissions
docs/production.md lists for it, and a missing one is named.
"""

from __future__ import annotations

from dagster import Field, StringSource
from dagster._config.config_type import Noneable
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.cloud_storage_compute_log_manager import PollingComputeLogSubscriptionManager
from dagster._serdes import ConfigurableClassData
from dagster_gcp.gcs.compute_log_manager import GCSComputeLogManager
import dagster_shared.seven as seven

from energy_assets import settings
from energy_assets.storage.buckets import GCSBucket


class BucketComputeLogManager(GCSComputeLogManager):
    """dagster-gcp's GCS compute-log manager with the project's credentials and a bucket check that needs
    `storage.objects.list` only. Configured in the instance's `dagster.yaml` (`compute_logs`)."""

    def __init__(
        self,
        bucket: str,
        local_dir: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        prefix: str = "dagster",
        upload_interval: int | None = None,
        show_url_only: bool = False,
    ):
        gcs = GCSBucket(
            bucket_name=bucket,
            project=settings.text(settings.GCS_PROJECT),
            service_account_json_path=settings.text(settings.GCS_SERVICE_ACCOUNT_JSON_PATH),
        )
        self._bucket_name = bucket
        self._prefix = self._clean_prefix(prefix)
        self._client = gcs.client()
        self._bucket = self._client.bucket(bucket)
        gcs.check_listable(f"{self._prefix}/", "load the compute-log manager")
        self._upload_interval = upload_interval
        self._local_manager = LocalComputeLogManager(local_dir or seven.get_system_temp_directory())
        self._subscription_manager = PollingComputeLogSubscriptionManager(self)
        self._show_url_only = show_url_only
        self._inst_data = inst_data
        # dagster-gcp's constructor is skipped (it needs application default credentials and
        # storage.buckets.get); its base classes' are not.
        super(GCSComputeLogManager, self).__init__()

    @classmethod
    def config_type(cls):
        return {
            "bucket": StringSource,
            "local_dir": Field(StringSource, is_required=False),
            "prefix": Field(StringSource, is_required=False, default_value="dagster"),
            "upload_interval": Field(Noneable(int), is_required=False, default_value=None),
            "show_url_only": Field(bool, is_required=False, default_value=False),
        }
