"""Raw consumption rows and the checked feature group built from them."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pydantic import Field

from energy_assets.assets.metadata import table_preview
from energy_assets.quality.cleaning import clean_consumption
from energy_assets.partitions import hourly_partitions
from energy_assets.resources.data_source import ConsumptionSource
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.io_manager import column_schema_metadata
from energy_assets.resources.retries import retry_transient
from energy_assets.quality.plausibility import DEFAULT_FACTOR, REFERENCE_DAYS, Plausibility, parse_series_names
from energy_assets.schema import DATETIME, RAW_CONSUMPTION_SCHEMA, SERIES_KEY, TARGET
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
    metadata={"partition_column": DATETIME, **column_schema_metadata(RAW_CONSUMPTION_SCHEMA)},
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
    # The run's figures and preview go on the range's newest partition only: a backfill's event log keeps
    # one copy, not one per hour (each hour's event is a write of Dagster's; the columns are on the definition).
    context.add_asset_metadata(
        {
            "source": consumption_source.describe(),
            "rows": len(rows),
            "hours": rows[DATETIME].nunique(),
            "series": len(rows[SERIES_KEY].drop_duplicates()),
            "preview": table_preview(rows),
        },
        partition_key=context.partition_key_range.end,
    )
    return rows


class FeatureChecksConfig(Config):
    """How the plausibility check of `energy_consumption_features` judges a run's rows."""

    plausibility_factor: float = Field(
        default=DEFAULT_FACTOR,
        gt=1,
        description="A value is refused when 1 + kWh lies more than this many times above or below 1 + its "
        f"series' median over the {REFERENCE_DAYS} days before the run's hours and those hours themselves.",
    )
    accept_level_change: list[str] = Field(
        default=[],
        description="Series whose values are stored even when implausible, as area/consumer_type (e.g. '1/111'): "
        "a genuine level change. Name them in the runs that hold the new level until it fills half the "
        f"reference ({REFERENCE_DAYS // 2} days), e.g. one backfill run over those days.",
    )


@asset(
    partitions_def=hourly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=FEATURE_CHECKS,
    group_name="ingestion",
    kinds={"pandas", "hopsworks"},
)
def energy_consumption_features(
    context: AssetExecutionContext,
    config: FeatureChecksConfig,
    consumption_raw: pd.DataFrame,
    consumption_source: ConsumptionSource,
    feature_store: FeatureStore,
):
    """The partition's rows cleaned, typed and checked, upserted into the feature group."""
    window = context.partition_time_window
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    try:
        plausibility = Plausibility(config.plausibility_factor, parse_series_names(config.accept_level_change))
    except ValueError as bad_config:
        raise Failure(description=f"run config accept_level_change: {bad_config}", allow_retries=False) from None
    # One read per run, whatever its length: the reference the plausibility check judges each series by.
    history = feature_store.read(start - pd.Timedelta(days=REFERENCE_DAYS), start)
    results = validate_consumption(
        consumption_raw, consumption_source.expected_series(), start, end, history=history, plausibility=plausibility
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
                **result.facts,
            },
        )
    failed = [result for result in results if not result.passed]
    if failed:
        # Failing before the write keeps the feature group exactly as it was.
        raise Failure(
            description=f"feature group not updated: checks {[result.rule for result in failed]} failed for "
            f"{window.start.isoformat()} <= hour < {window.end.isoformat()}; "
            + "; ".join(_first_offender(result) for result in failed)
            + "; see the check results",
            allow_retries=False,
        )
    features = clean_consumption(consumption_raw)
    feature_store.insert(features)
    # The run's figures on its newest partition only, as consumption_raw's.
    context.add_asset_metadata(
        {
            "feature_group": f"{feature_store.feature_group_name} v{feature_store.feature_group_version}",
            "rows": len(features),
            "hours": features[DATETIME].nunique(),
            "series": len(features[SERIES_KEY].drop_duplicates()),
            "total_consumption_kwh": MetadataValue.float(float(features[TARGET].sum())),
        },
        partition_key=context.partition_key_range.end,
    )
    yield MaterializeResult()


def _first_offender(result) -> str:
    """The failed rule, how many rows break it, and the first of them, for the run's failure message."""
    first = ", ".join(
        f"{column}={value:.6g}" if isinstance(value, float) else f"{column}={value}"
        for column, value in result.offending_rows.iloc[0].items()
    )
    hint = ""
    if result.rule == "plausible_consumption":
        hint = " (a genuine level change: name its series in the run config accept_level_change)"
    return f"{result.rule}: {len(result.offending_rows)} row(s), first: {first}{hint}"
