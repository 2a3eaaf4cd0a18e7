"""The energy_assets code location: the whole graph on one screen."""

from __future__ import annotations

import os
from typing import Any

from dagster import AssetSelection, Definitions, EnvVar, define_asset_job, in_process_executor

from energy_assets import settings
from energy_assets.assets.forecasts import energy_forecasts
from energy_assets.assets.ingestion import consumption_raw, energy_consumption_features
from energy_assets.assets.maintenance import (
    feature_group_compaction,
    feature_group_maintenance_job,
    feature_group_maintenance_schedule,
)
from energy_assets.assets.model import forecasting_model
from energy_assets.assets.monitoring import forecast_accuracy, forecast_accuracy_summary, monitoring_automation_sensor
from energy_assets.assets.serving import serving_automation_sensor, serving_files
from energy_assets.executor import step_processes_forked_from
from energy_assets.resources.bucket import GCSBucketResource, LocalBucketResource
from energy_assets.resources.data_source import (
    ConsumptionSource,
    EnergiDataServiceSource,
    FileSource,
    RefusedSource,
    SyntheticSource,
)
from energy_assets.resources.hopsworks import HopsworksFeatureStore, HopsworksModelRegistry
from energy_assets.resources.io_manager import PartitionedParquetIOManager
from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.partitions import hourly_partitions
from energy_assets.schedules import build_hourly_schedule
from energy_assets.sensors import (
    follows_upstream_check,
    freshness_checks,
    freshness_sensor,
    overdue_hour_alert,
    run_failure_alert_sensor,
)
from energy_assets.sources.energidataservice import DATASETS

# Dagster reads these in the process writing the events: every process that loads this code location
# (CLI, code server, step workers); a value set in the environment wins. With the batch size, a
# single-run backfill's materializations reach the event log in batches, which PostgreSQL writes in one
# transaction each (0 turns batching off; Dagster's SQLite event log writes them one by one either way).
# With the planned subset, a run this process creates over a range of partitions logs one planned event
# per asset instead of one per partition: half the asset events of a `dagster asset materialize
# --partition-range`, each two SQLite commits on Dagster's default instance. Dagster then does not mark
# the partitions of such a run failed when it fails (the run is); runs the webserver or daemon create
# (UI backfills, schedules) follow their own environment.
os.environ.setdefault(settings.DAGSTER_EVENT_BATCH_SIZE, str(settings.DEFAULT_DAGSTER_EVENT_BATCH_SIZE))
os.environ.setdefault(settings.DAGSTER_PLANNED_EVENTS_AS_SUBSET, settings.DEFAULT_DAGSTER_PLANNED_EVENTS_AS_SUBSET)

# consumption_raw -> energy_consumption_features -> forecasting_model -> energy_forecasts
forecast_assets = [consumption_raw, energy_consumption_features, forecasting_model, energy_forecasts]
# energy_forecasts[H] + actuals H+1 ... H+24 -> forecast_accuracy[H] -> forecast_accuracy_summary (rolling window)
monitoring_assets = [forecast_accuracy, forecast_accuracy_summary]
# newest energy_forecasts + forecast_accuracy -> serving_files (the course's files at the bucket root);
# ENERGY_ASSETS_SERVING_FILES=off leaves them out.
serving_assets = [serving_files] if settings.serving_files_enabled() else []
# energy_consumption_features' storage -> feature_group_compaction (daily, feature_group_maintenance_schedule)
maintenance_assets = [feature_group_compaction]
# The newest hour of each hourly asset (for forecast_accuracy the newest scorable issue hour), due by a minute
# of the hour it appears in, and the summary, due a while after each accuracy update: a late one fails its
# freshness_check, and failed runs and overdue assets are posted to the alert webhook.
asset_freshness_checks = [
    *freshness_checks([*forecast_assets, forecast_accuracy]),
    follows_upstream_check(forecast_accuracy_summary, forecast_accuracy),
]

# One process for the four steps: they run one after another anyway, and a step process costs 5-7 s
# to start against about 1 s of work per hour. Given up: a step that crashes the interpreter (or runs
# out of memory) takes the run down with it rather than only its own process, and steps share memory.
hourly_forecast_job = define_asset_job(
    "hourly_forecast_job",
    # The freshness checks run from their sensor: a run that fills hours does not judge how late the newest is.
    selection=AssetSelection.assets(*forecast_assets) - AssetSelection.checks(*asset_freshness_checks),
    description="Raw data -> feature group -> model in effect -> forecasts, for one hour or a range.",
    executor_def=in_process_executor,
)


def consumption_source(production: bool = False) -> ConsumptionSource:
    """The source `ENERGY_ASSETS_SOURCE` names: synthetic (default), file or api.

    In production the source must be named, and synthetic rows need an explicit opt-in; otherwise
    runs fail (at resource setup, before any write) with the variable to set.
    """
    chosen = settings.text(settings.SOURCE)
    kind = settings.source_kind()
    if production and chosen is None:
        return RefusedSource(
            problem=f"{settings.SOURCE} is not set: production needs the source chosen explicitly, "
            f"{settings.SOURCE}=api (Energi Data Service) or {settings.SOURCE}=file with {settings.SOURCE_PATH}; nothing was written"
        )
    if production and kind == "synthetic" and not settings.flag(settings.SYNTHETIC_IN_PROD):
        return RefusedSource(
            problem=f"{settings.SOURCE}=synthetic in production would write generated rows into the real feature group; "
            f"set {settings.SYNTHETIC_IN_PROD}=true to do so on purpose; nothing was written"
        )
    if kind == "file":
        return FileSource(path=settings.source_path())
    if kind == "api":
        return EnergiDataServiceSource(
            dataset=settings.source_dataset(tuple(DATASETS)),
            api_base_url=settings.source_api_url(),
            deadline_seconds=settings.source_deadline_seconds(),
        )
    return SyntheticSource()


def deployment_resources(deployment: str | None = None) -> dict[str, Any]:
    """The resources of a deployment (default: the one `ENERGY_ASSETS_DEPLOYMENT` names), read from the environment now."""
    state = settings.state_dir()
    feature_group_version = settings.feature_group_version()
    local_bucket = LocalBucketResource(root_dir=str(state / "bucket"), prefix=settings.bucket_prefix())
    gcs_bucket = GCSBucketResource(
        bucket_name=EnvVar(settings.GCS_BUCKET_NAME),
        project=settings.text(settings.GCS_PROJECT),
        service_account_json_path=settings.text(settings.GCS_SERVICE_ACCOUNT_JSON_PATH),
        prefix=settings.bucket_prefix(),
    )
    # Secrets are EnvVars: read at run time, never at import, so definitions load offline.
    hopsworks_login = {
        "api_key": EnvVar(settings.FS_API_KEY),
        "project": EnvVar(settings.FS_PROJECT_NAME),
        **({"host": settings.text(settings.FS_HOST)} if settings.text(settings.FS_HOST) else {}),
    }
    resources_by_deployment = {
        "local": {
            "consumption_source": consumption_source(),
            "feature_store": LocalFeatureStore(
                root_dir=str(state / "feature_store"), feature_group_version=feature_group_version
            ),
            "model_registry": LocalModelRegistry(root_dir=str(state / "model_registry")),
            "bucket": local_bucket,
            "bucket_io_manager": PartitionedParquetIOManager(bucket=local_bucket),
        },
        "prod": {
            "consumption_source": consumption_source(production=True),
            "feature_store": HopsworksFeatureStore(
                **hopsworks_login,
                feature_group_version=feature_group_version,
                record_training_datasets=settings.flag(settings.TRAINING_DATASETS),
            ),
            "model_registry": HopsworksModelRegistry(**hopsworks_login),
            "bucket": gcs_bucket,
            "bucket_io_manager": PartitionedParquetIOManager(bucket=gcs_bucket),
        },
    }
    return resources_by_deployment[deployment or settings.deployment_name()]


defs = Definitions(
    assets=[*forecast_assets, *monitoring_assets, *serving_assets, *maintenance_assets],
    asset_checks=asset_freshness_checks,
    jobs=[hourly_forecast_job, feature_group_maintenance_job],
    schedules=[build_hourly_schedule(hourly_forecast_job, hourly_partitions), feature_group_maintenance_schedule],
    sensors=[
        monitoring_automation_sensor,
        *([serving_automation_sensor] if serving_assets else []),
        freshness_sensor(asset_freshness_checks),
        run_failure_alert_sensor,
        overdue_hour_alert(asset_freshness_checks),
    ],
    resources=deployment_resources(),
    executor=step_processes_forked_from(__name__),
)
