"""Maintenance of the feature group's storage: a daily compaction, on a schedule of its own."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetSelection,
    Backoff,
    DefaultScheduleStatus,
    MaterializeResult,
    RetryPolicy,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from energy_assets.resources.feature_store import FeatureStore

# 03:35 UTC daily: away from minute 5, when the hourly run inserts. A day of hourly inserts is 24 commits,
# each adding a small file that every later insert's MERGE (the table is not partitioned) and every read opens.
MAINTENANCE_CRON = "35 3 * * *"


@asset(
    deps=[AssetDep("energy_consumption_features")],
    group_name="maintenance",
    # A compaction that loses the race with an insert's commit fails on the conflict; a later attempt sees it.
    retry_policy=RetryPolicy(max_retries=2, delay=60, backoff=Backoff.EXPONENTIAL),
    description="Compacts the feature group's storage and removes the files no recent version references.",
)
def feature_group_compaction(context: AssetExecutionContext, feature_store: FeatureStore) -> MaterializeResult:
    """The feature group's stored files after compaction (Hopsworks: `optimize()` and `delta_vacuum()` of its
    Delta table); what was rewritten is in the metadata."""
    facts = feature_store.maintain()
    context.log.info(f"feature group {feature_store.feature_group_name} v{feature_store.feature_group_version}: {facts}")
    return MaterializeResult(metadata=facts)


feature_group_maintenance_job = define_asset_job(
    "feature_group_maintenance_job",
    selection=AssetSelection.assets(feature_group_compaction),
    description="Compacts the feature group's storage.",
)
feature_group_maintenance_schedule = ScheduleDefinition(
    name="feature_group_maintenance_schedule",
    job=feature_group_maintenance_job,
    cron_schedule=MAINTENANCE_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Compacts the feature group once a day (03:35 UTC), between two hourly inserts.",
)
