"""Resources per deployment: `local` (embedded, the default) and `prod` (Hopsworks + GCS)."""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from energy_assets.resources.bucket import Bucket, GCSBucket, LocalBucket
from energy_assets.resources.data_source import SOURCE_VARIABLE, SYNTHETIC_IN_PRODUCTION_VARIABLE, ConsumptionSource
from energy_assets.resources.hopsworks import (
    FEATURE_GROUP_VERSION_VARIABLE,
    HopsworksFeatureStore,
    HopsworksModelRegistry,
)
from energy_assets.resources.io_manager import PartitionedParquetIOManager
from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.settings import deployment_name, state_dir

# Which implementation each deployment uses; ENERGY_ASSETS_<RESOURCE> overrides one resource.
IMPLEMENTATIONS_BY_DEPLOYMENT: dict[str, dict[str, str]] = {
    "local": {"feature_store": "local", "model_registry": "local", "bucket": "local"},
    "prod": {"feature_store": "hopsworks", "model_registry": "hopsworks", "bucket": "gcs"},
}


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value not in ("", "0", "1", "false", "true", "no", "yes"):
        raise ValueError(f"{name}={value!r} is not one of true, false, 1, 0, yes, no")
    return value in ("1", "true", "yes")


def _implementation(deployment: str, resource: str) -> str:
    if deployment not in IMPLEMENTATIONS_BY_DEPLOYMENT:
        raise ValueError(
            f"ENERGY_ASSETS_DEPLOYMENT={deployment!r} is not one of {sorted(IMPLEMENTATIONS_BY_DEPLOYMENT)}"
        )
    return _setting(f"ENERGY_ASSETS_{resource.upper()}", IMPLEMENTATIONS_BY_DEPLOYMENT[deployment][resource])


def _hopsworks_login() -> dict[str, Any]:
    # EnvVar defers reading secrets to run time, so definitions load without credentials.
    login: dict[str, Any] = {"api_key": EnvVar("FS_API_KEY"), "project": EnvVar("FS_PROJECT_NAME")}
    if os.environ.get("FS_HOST"):
        login["host"] = os.environ["FS_HOST"]
    return login


def build_bucket(deployment: str | None = None) -> Bucket:
    """The bucket of the given (default: current) deployment."""
    kind = _implementation(deployment or deployment_name(), "bucket")
    if kind == "local":
        return LocalBucket(root_dir=str(state_dir() / "bucket"))
    if kind == "gcs":
        return GCSBucket(
            bucket_name=_setting("GOOGLE_CLOUD_BUCKET_NAME", ""),
            project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
            service_account_json_path=os.environ.get("GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON_PATH") or None,
        )
    raise ValueError(f"ENERGY_ASSETS_BUCKET={kind!r} is not one of ['local', 'gcs']")


def build_resources(deployment: str | None = None) -> dict[str, Any]:
    """Every resource the assets need, for the given (default: current) deployment."""
    deployment = deployment or deployment_name()
    feature_group = {
        "feature_group_version": int(_setting(FEATURE_GROUP_VERSION_VARIABLE, "1")),
    }
    feature_store_kind = _implementation(deployment, "feature_store")
    registry_kind = _implementation(deployment, "model_registry")
    if feature_store_kind not in ("local", "hopsworks") or registry_kind not in ("local", "hopsworks"):
        raise ValueError("ENERGY_ASSETS_FEATURE_STORE and ENERGY_ASSETS_MODEL_REGISTRY take 'local' or 'hopsworks'")
    # Synthetic rows must never reach a real feature group unless asked for: there the source is chosen explicitly.
    production = deployment == "prod" or feature_store_kind == "hopsworks"
    return {
        "consumption_source": ConsumptionSource(
            kind=_setting(SOURCE_VARIABLE, "synthetic"),
            kind_chosen=bool(os.environ.get(SOURCE_VARIABLE)),
            production=production,
            allow_synthetic_in_production=_flag(SYNTHETIC_IN_PRODUCTION_VARIABLE),
            path=os.environ.get("ENERGY_ASSETS_SOURCE_PATH"),
            dataset=_setting("ENERGY_ASSETS_SOURCE_DATASET", "ConsumptionDE35Hour"),
        ),
        "feature_store": (
            LocalFeatureStore(root_dir=str(state_dir() / "feature_store"), **feature_group)
            if feature_store_kind == "local"
            else HopsworksFeatureStore(**_hopsworks_login(), **feature_group)
        ),
        "model_registry": (
            LocalModelRegistry(root_dir=str(state_dir() / "model_registry"))
            if registry_kind == "local"
            else HopsworksModelRegistry(**_hopsworks_login())
        ),
        "bucket_io_manager": PartitionedParquetIOManager(
            bucket=build_bucket(deployment), prefix=_setting("ENERGY_ASSETS_BUCKET_PREFIX", "energy_assets")
        ),
    }
