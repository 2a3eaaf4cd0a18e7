"""The course's serving files at the bucket root, refreshed after each forecast run and each accuracy update."""

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from energy_assets.resources.bucket import BucketResource
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.schema import DATETIME, FORECAST_HORIZON_HOURS, ISSUED_AT
from energy_assets.storage.forecasts import SkippedHour, gather_forecasts, latest_forecast
from energy_assets.storage.serving import HISTORY_HOURS, SERVING_OBJECTS, encode, serving_frames
from energy_assets.timeline import HOUR

# After every new forecast or accuracy partition, once none is still being written.
SERVING_AUTOMATION = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
)


@asset(
    deps=["energy_forecasts", "forecast_accuracy"],
    automation_condition=SERVING_AUTOMATION,
    group_name="serving",
    kinds={"pandas", "parquet"},
)
def serving_files(context: AssetExecutionContext, bucket: BucketResource, feature_store: FeatureStore):
    """X, y and predictions of the newest forecast and the week's monitoring files, at the bucket root, as the
    course's API and dashboards read them."""
    target = bucket.get_bucket()
    skipped: list[SkippedHour] = []
    try:
        forecast = latest_forecast(target, None, prefix=bucket.prefix, skipped=skipped)
    except LookupError as nothing:
        raise Failure(description=f"{nothing}; materialize energy_forecasts first", allow_retries=False) from nothing
    issued = forecast[ISSUED_AT].iloc[0]
    week_start = issued - (HISTORY_HOURS - 1) * HOUR
    recent = gather_forecasts(target, week_start, issued, prefix=bucket.prefix, skipped=skipped)
    for hour in skipped:
        context.log.warning(f"skipped the forecast issued at {hour}")
    history = feature_store.read(week_start, issued + HOUR)
    actuals = feature_store.read(recent[DATETIME].min(), issued + (FORECAST_HORIZON_HOURS + 1) * HOUR)
    # Encode every object before writing any; each write is atomic.
    encoded = encode(serving_frames(history, forecast, recent, actuals))
    uris = {name: target.write_bytes(name, encoded[name]) for name in SERVING_OBJECTS}
    return MaterializeResult(
        metadata={
            "issued_at": issued.isoformat(),
            "history_from": week_start.isoformat(),
            "skipped_issue_hours": len(skipped),
            **{name.removesuffix(".parquet"): MetadataValue.path(uri) for name, uri in uris.items()},
        }
    )


serving_automation_sensor = AutomationConditionSensorDefinition(
    "serving_automation_sensor",
    target=AssetSelection.assets(serving_files),
    description="Republishes the course's serving files after each forecast run and accuracy update.",
)
