"""Raw consumption rows and the checked feature group built from them."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from energy_assets.assets.metadata import table_preview
from energy_assets.quality.cleaning import clean_consumption
from energy_assets.partitions import hourly_partitions
from energy_assets.resources.data_source import ConsumptionSource
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.retries import retry_transient
from energy_assets.schema import DATETIME, SERIES_KEY, TARGET
from energy_assets.sources.errors import SourceUnavailableError
from energy_assets.quality.validation import RULES, validate_consumption

FEATURE_CHECKS = [
    AssetCheckSpec(rule, asset="energy_consumption_features", description=description, blocking=True)
    for rule, description in RULES.items()
]


@asset(
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="bucket_io_manager",
    metadata={"partition_column": DATETIME},
    group_name="ingestion",
    kinds={"pandas", "parquet"},
)
def consumption_raw(context: AssetExecutionContext, consumption_source: ConsumptionSource) -> pd.DataFrame:
    """The source's rows for the partition's hours, as the source publishes them."""
    window = context.partition_time_window
    try:
        rows = consumption_source.fetch(window.start, window.end)
    except SourceUnavailableError as unavailable:
        # Network errors, 429 and 5xx can heal: the step runs again after a wait.
        raise retry_transient(unavailable, context.retry_number, consumption_source.describe()) from unavailable
    except Exception as lasting:
        # Bad or absent data, a misconfigured source, a passed deadline: retrying repeats the same error.
        raise Failure(
            description=f"{consumption_source.describe()}: {type(lasting).__name__}: {lasting}", allow_retries=False
        ) from lasting
    if rows.empty:
        raise Failure(
            description=f"{consumption_source.describe()} returned no rows for "
            f"{window.start.isoformat()} <= hour < {window.end.isoformat()}",
            allow_retries=False,
        )
    context.add_output_metadata(
        {
            "source": consumption_source.describe(),
            "rows": len(rows),
            "hours": rows[DATETIME].nunique(),
            "series": len(rows[SERIES_KEY].drop_duplicates()),
        }
    )
    # The preview goes on the range's newest partition only: a backfill keeps one copy, not one per hour.
    context.add_asset_metadata({"preview": table_preview(rows)}, partition_key=context.partition_key_range.end)
    return rows


@asset(
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=FEATURE_CHECKS,
    group_name="ingestion",
    kinds={"pandas", "hopsworks"},
)
def energy_consumption_features(
    context: AssetExecutionContext,
    consumption_raw: pd.DataFrame,
    consumption_source: ConsumptionSource,
    feature_store: FeatureStore,
):
    """The partition's rows cleaned, typed and checked, upserted into the feature group."""
    window = context.partition_time_window
    results = validate_consumption(
        consumption_raw, consumption_source.expected_series(), pd.Timestamp(window.start), pd.Timestamp(window.end)
    )
    for result in results:
        yield AssetCheckResult(
            check_name=result.rule,
            passed=result.passed,
            severity=AssetCheckSeverity.ERROR,
            description=result.description,
            metadata={
                "offending_rows": len(result.offending_rows),
                **({"offending_rows_preview": table_preview(result.offending_rows)} if not result.passed else {}),
            },
        )
    failed = [result.rule for result in results if not result.passed]
    if failed:
        # Failing before the write keeps the feature group exactly as it was.
        raise Failure(
            description=f"feature group not updated: checks {failed} failed for "
            f"{window.start.isoformat()} <= hour < {window.end.isoformat()}; see the check results",
            allow_retries=False,
        )
    features = clean_consumption(consumption_raw)
    feature_store.insert(features)
    yield MaterializeResult(
        metadata={
            "feature_group": f"{feature_store.feature_group_name} v{feature_store.feature_group_version}",
            "rows": len(features),
            "hours": features[DATETIME].nunique(),
            "series": len(features[SERIES_KEY].drop_duplicates()),
            "total_consumption_kwh": MetadataValue.float(float(features[TARGET].sum())),
        }
    )
