"""Accuracy of each hour's forecasts once its actuals are in, and a rolling summary that warns."""

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from energy_assets.assets.metadata import png_image
from energy_assets.forecasting.evaluation import MODEL
from energy_assets.forecasting.metrics import HEADLINE
from energy_assets.forecasting.intervals import SERIES_COVERAGE_TOLERANCE
from energy_assets.monitoring.accuracy import (
    BASELINE_HISTORY_HOURS,
    COVERAGE_METRICS,
    FAR_OFF_SERIES_SHARE,
    METRICS,
    OVERALL,
    REFERENCE_BASELINE,
    SCOPE,
    accuracy_alerts,
    accuracy_by_issue_hour,
    coverage_alerts,
    issue_hours_lacking_actuals,
    pooled_intervals,
    series_coverage,
    series_intervals,
    summarize_window,
)
from energy_assets.monitoring.plots import plot_score_over_time
from energy_assets.storage.objects import UnusableObject, asset_folder, read_recent
from energy_assets.partitions import future_hours, scored_partitions
from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.bucket import BucketResource
from energy_assets.schema import FORECAST_HORIZON_HOURS, ISSUED_AT, MODEL_VERSION
from energy_assets.timeline import hour_key

# eager() for every hour, not only the latest: a backfill of forecasts leaves every hour of its range to score,
# not only the newest. Nor does the first evaluation count as handled, so hours already scorable when automation
# is switched on are scored.
ACCURACY_AUTOMATION = (
    AutomationCondition.eager()
    .without(AutomationCondition.in_latest_time_window())
    .replace("handled", AutomationCondition.newly_requested() | AutomationCondition.newly_updated())
)
# The summary follows every new accuracy partition, once none is still being written.
SUMMARY_AUTOMATION = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
)
ROLLING_CHECK = "rolling_accuracy_acceptable"
COVERAGE_CHECK = "interval_coverage_calibrated"
READABLE_CHECK = "accuracy_objects_readable"


def coverage_metadata(intervals: pd.DataFrame) -> dict[str, MetadataValue]:
    """`model_coverage_<pct>` per nominal coverage (null when no forecast had bounds), from `pooled_intervals`."""
    return {
        f"{MODEL}_{COVERAGE_METRICS[row.nominal]}": MetadataValue.float(float(row.coverage)) if row.n else MetadataValue.null()
        for row in intervals.itertuples()
    }


def series_coverage_metadata(intervals: pd.DataFrame) -> dict[str, MetadataValue]:
    """`model_series_median_coverage_<pct>` and `model_series_p10_coverage_<pct>` per nominal coverage (null without
    bounds), from `series_intervals`: how well the median and the tenth-percentile series are covered."""
    return {
        f"{MODEL}_series_{stat}_{COVERAGE_METRICS[row.nominal]}": _float_or_null(getattr(row, f"series_{stat}"))
        for row in intervals.itertuples()
        for stat in ("median", "p10")
    }


def _float_or_null(value: float) -> MetadataValue:
    """A score as metadata: null where `forecasting.metrics`' rule leaves it undefined."""
    return MetadataValue.null() if pd.isna(value) else MetadataValue.float(float(value))


def _scores_metadata(scores: pd.DataFrame) -> dict[str, MetadataValue]:
    """`<model>_wape` and `<model>_mape` of each model (index) of a score table, null where undefined."""
    return {f"{model}_{metric}": _float_or_null(scores.loc[model, metric]) for model in scores.index for metric in (HEADLINE, "mape")}


@asset(
    # An issue hour's partition appears when the last actual of its forecasts is published (the newest 24 forecast
    # hours have none), so it can be overdue like the hourly assets' newest hour; energy_forecasts[H] maps to it one
    # to one (the same hourly windows).
    partitions_def=scored_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # The actuals of the forecasts issued at H; the baselines' week before H is already a dependency
    # of energy_forecasts[H].
    deps=[AssetDep("energy_consumption_features", partition_mapping=future_hours(FORECAST_HORIZON_HOURS))],
    io_manager_key="bucket_io_manager",
    metadata={"partition_column": ISSUED_AT},
    automation_condition=ACCURACY_AUTOMATION,
    output_required=False,
    group_name="monitoring",
    kinds={"pandas", "parquet"},
)
def forecast_accuracy(context: AssetExecutionContext, energy_forecasts: pd.DataFrame, feature_store: FeatureStore):
    """WAPE (the headline), MAPE, RMSPE and MAE of the forecasts issued at each hour H and of seasonal naive
    baselines issued at H, and the empirical coverage and relative Winkler score of the model's 80 % and 95 %
    intervals, overall, per horizon and per series, once the actuals of H+1 ... H+24 are in the feature group.
    Zero actuals are scored by `forecasting.metrics`' rule (`zero_actuals` counts those MAPE leaves out)."""
    window = context.partition_time_window
    origins = pd.date_range(window.start, window.end, freq="h", inclusive="left")
    history = feature_store.read(
        origins[0] - pd.Timedelta(hours=BASELINE_HISTORY_HOURS - 1),
        origins[-1] + pd.Timedelta(hours=FORECAST_HORIZON_HOURS + 1),
    )
    lacking = issue_hours_lacking_actuals(energy_forecasts, history)
    if len(lacking) == len(origins):
        # Not yet materializable: nothing is written, and the automation retries once the actuals arrive.
        context.log.info(f"actuals not yet in the feature group for any of {len(origins)} issue hours; nothing scored")
        return
    if not lacking.empty:
        raise Failure(
            description=f"actuals not yet in the feature group for forecasts issued at {lacking[0].isoformat()} ... "
            f"{lacking[-1].isoformat()} ({len(lacking)} of {len(origins)} hours); nothing stored. Materialize "
            "the other hours on their own, and these once their actuals arrive",
            allow_retries=False,
        )
    accuracy = accuracy_by_issue_hour(energy_forecasts, history)
    versions = energy_forecasts.groupby(ISSUED_AT)[MODEL_VERSION].unique()
    # Each issue hour's partition says how that hour's forecasts scored; the run's totals go on the range's
    # newest partition only, named as the run's: Dagster copies an Output's metadata into every partition's
    # materialization, where one hour's scores would read as each hour's.
    for issued_at, scores in accuracy.groupby(ISSUED_AT):
        context.add_asset_metadata(_issue_hour_metadata(scores, versions[issued_at]), partition_key=hour_key(issued_at))
    context.add_asset_metadata(_run_metadata(accuracy, versions), partition_key=context.partition_key_range.end)
    yield Output(accuracy)


def _issue_hour_metadata(scores: pd.DataFrame, versions: np.ndarray) -> dict:
    """One issue hour's accuracy rows as its partition shows them: the registry version of the model that issued
    its forecasts, each model's scores, and its intervals' coverage, pooled and per series."""
    overall = scores[scores[SCOPE] == OVERALL].set_index(MODEL)
    # energy_forecasts issues an hour's forecasts with one model; an object holding several names them all.
    several = len(versions) > 1
    return {
        "registry_version": MetadataValue.json(sorted(map(int, versions))) if several else int(versions[0]),
        "scores": MetadataValue.md(overall[METRICS].reset_index().to_markdown(index=False, floatfmt=".4f")),
        **_scores_metadata(overall),
        **_interval_metadata(scores),
    }


def _run_metadata(accuracy: pd.DataFrame, versions: pd.Series) -> dict:
    """The run's totals: its issue hours, the registry versions behind them, and the coverage of the model's
    intervals over all of them, pooled and per series."""
    return {
        "issue_hours_in_this_run": accuracy[ISSUED_AT].nunique(),
        "registry_versions_in_this_run": MetadataValue.json(sorted({int(v) for hour in versions for v in hour})),
        **{f"{name}_in_this_run": value for name, value in _interval_metadata(accuracy).items()},
    }


def _interval_metadata(scores: pd.DataFrame) -> dict[str, MetadataValue]:
    """The model's interval coverage over the issue hours of `scores`: pooled, the per-series table, and the
    median and tenth-percentile series' coverage."""
    overall = scores[scores[SCOPE] == OVERALL]
    per_series = series_intervals(series_coverage(scores))
    return {
        **coverage_metadata(pooled_intervals(overall[overall[MODEL] == MODEL])),
        "intervals_per_series": MetadataValue.md(per_series.to_markdown(index=False, floatfmt=".4f")),
        **series_coverage_metadata(per_series),
    }


class AccuracySummaryConfig(Config):
    """The rolling window the summary covers and when its check warns."""

    window_days: int = Field(default=7, ge=1, description="Days of issue hours, ending at the newest scored one.")
    wape_threshold: float = Field(
        default=0.10, gt=0, description="Warn above this model WAPE over the window (0.10 = 10 %)."
    )
    worst_series: int = Field(default=10, ge=1, description="Series listed in the worst-series table.")
    coverage_tolerance: float = Field(
        default=0.05, gt=0, lt=1, description="Warn when an interval's coverage misses its nominal level by more (0.05 = 5 points)."
    )
    series_coverage_tolerance: float = Field(
        default=SERIES_COVERAGE_TOLERANCE,
        gt=0,
        lt=1,
        description="A series is far off when its own coverage over the window misses the nominal level by more than "
        "this, either side (0.15 = 15 points: at 80 %, below 65 % or above 95 %; at 95 %, below 80 %). A user reads a "
        "series' interval for that series: too narrow or too wide for it misleads either way.",
    )
    far_off_series_share: float = Field(
        default=FAR_OFF_SERIES_SHARE,
        ge=0,
        lt=1,
        description="Warn when more than this share of the series are far off at some level (0.10: 8 of 76). Over a "
        "week a series' coverage wanders a few points by chance (its errors are correlated hour to hour), so some "
        "series may be far off in a week whose intervals are right.",
    )


@asset(
    deps=[forecast_accuracy],
    check_specs=[
        AssetCheckSpec(
            ROLLING_CHECK,
            asset="forecast_accuracy_summary",
            description="Over the window, the model's WAPE (well defined on zero actuals) is below the threshold "
            "and below the 168 h seasonal naive baseline's.",
        ),
        AssetCheckSpec(
            READABLE_CHECK,
            asset="forecast_accuracy_summary",
            description="Every accuracy object of the window could be read; one that cannot is left out of the "
            "summary and named here.",
        ),
        AssetCheckSpec(
            COVERAGE_CHECK,
            asset="forecast_accuracy_summary",
            description="Over the window, the empirical coverage of the model's 80 % and 95 % prediction intervals "
            "is within the tolerance (5 points by default) of its nominal level, pooled, and no more than a share "
            "(10 % by default) of the series are covered far off it (15 points by default) by their own intervals; "
            "passes when no bounds are stored.",
        ),
    ],
    automation_condition=SUMMARY_AUTOMATION,
    group_name="monitoring",
    kinds={"pandas"},
)
def forecast_accuracy_summary(context: AssetExecutionContext, config: AccuracySummaryConfig, bucket: BucketResource):
    """Model against baselines over a rolling window of issue hours: WAPE over time per area, worst series."""
    unreadable: list[UnusableObject] = []
    try:
        accuracy = read_recent(
            bucket.get_bucket(), asset_folder(bucket.prefix, forecast_accuracy.key.path), config.window_days * 24, unreadable
        )
    except FileNotFoundError as nothing_yet:
        raise Failure(
            description=f"{nothing_yet}; materialize forecast_accuracy first", allow_retries=False
        ) from nothing_yet
    if accuracy.empty:
        raise Failure(
            description=f"no readable accuracy object in the window: {'; '.join(map(str, unreadable))}; "
            "rematerialize those hours of forecast_accuracy",
            allow_retries=False,
        )
    # One damaged object must not blank the summary for the days it stays in the window: it is left out, named.
    for problem in unreadable:
        context.log.warning(f"left out of the summary: {problem}")
    summary = summarize_window(
        accuracy, config.window_days * 24, worst=config.worst_series, series_tolerance=config.series_coverage_tolerance
    )
    alerts = accuracy_alerts(summary, config.wape_threshold)
    judged_on = summary.judged_on
    yield MaterializeResult(
        metadata={
            "window": f"{summary.first_issued.isoformat()} ... {summary.last_issued.isoformat()}",
            "issue_hours": summary.issue_hours,
            "issue_hours_before_wape": summary.issue_hours_before_wape,
            "scores": MetadataValue.md(summary.overall.to_markdown(index=False, floatfmt=".4f")),
            **_scores_metadata(summary.overall.set_index(MODEL)),
            f"{judged_on}_over_time": png_image(
                plot_score_over_time(summary.per_area_over_time, judged_on), f"{judged_on.upper()} per issue hour"
            ),
            "worst_series": MetadataValue.md(summary.worst_series.to_markdown(index=False, floatfmt=".4f")),
            "intervals": MetadataValue.md(summary.intervals.to_markdown(index=False, floatfmt=".4f")),
            **coverage_metadata(summary.intervals),
            **series_coverage_metadata(summary.intervals),
            "worst_covered_series": MetadataValue.md(
                worst_covered(summary.series_coverage, config.worst_series).to_markdown(index=False, floatfmt=".4f")
            ),
            "unreadable_objects": len(unreadable),
            **({"unreadable": MetadataValue.md(_unreadable_table(unreadable))} if unreadable else {}),
        }
    )
    yield AssetCheckResult(
        check_name=READABLE_CHECK,
        passed=not unreadable,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(unreadable)} accuracy object(s) of the window could not be read and are left out of the summary "
            "(rematerialize those hours of forecast_accuracy): " + "; ".join(map(str, unreadable))
        ) if unreadable else None,
        metadata={"unreadable_objects": len(unreadable)},
    )
    yield AssetCheckResult(
        check_name=ROLLING_CHECK,
        passed=not alerts,
        severity=AssetCheckSeverity.WARN,
        description="; ".join(alerts) or None,
        metadata={
            "judged_on": judged_on,
            f"{MODEL}_{judged_on}": _float_or_null(summary.score(MODEL)),
            f"{REFERENCE_BASELINE}_{judged_on}": _float_or_null(summary.score(REFERENCE_BASELINE)),
            "wape_threshold": config.wape_threshold,
            "zero_actuals": int(summary.overall.set_index(MODEL).loc[MODEL, "zero_actuals"]),
        },
    )
    alerts = coverage_alerts(summary, config.coverage_tolerance, config.far_off_series_share)
    yield coverage_check(summary.intervals, alerts, config)


def worst_covered(coverage: pd.DataFrame, count: int) -> pd.DataFrame:
    """The `count` series whose coverage is furthest from nominal (mean miss over the levels), each level's beside it."""
    misses = sum((coverage[column] - nominal).abs() for nominal, column in COVERAGE_METRICS.items())
    return coverage.loc[misses.sort_values(ascending=False, kind="stable").index[:count]]


def _unreadable_table(unreadable: list[UnusableObject]) -> str:
    """The objects left out of the summary, as a markdown table."""
    return pd.DataFrame({"object": [problem.uri for problem in unreadable], "reason": [problem.reason for problem in unreadable]}).to_markdown(index=False)


def coverage_check(intervals: pd.DataFrame, alerts: list[str], config: AccuracySummaryConfig) -> AssetCheckResult:
    """The coverage check's result: a warning naming each level missed pooled or by too many series; a pass that
    says so when no bounds are stored."""
    bounded = int(intervals["n"].max())
    if not bounded:
        description = "no forecast in the window has interval bounds (a model without intervals, or objects written before them)"
    else:
        description = "; ".join(alerts) or None
    return AssetCheckResult(
        check_name=COVERAGE_CHECK,
        passed=not alerts,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "forecasts_with_bounds": bounded,
            "coverage_tolerance": config.coverage_tolerance,
            "series_coverage_tolerance": config.series_coverage_tolerance,
            "far_off_series_share": config.far_off_series_share,
            **{f"nominal_{COVERAGE_METRICS[row.nominal]}": float(row.nominal) for row in intervals.itertuples()},
            **coverage_metadata(intervals),
            **{f"far_off_series_{round(row.nominal * 100)}": _float_or_null(row.far_off_share) for row in intervals.itertuples()},
            **{
                f"worst_series_{round(row.nominal * 100)}": MetadataValue.text(
                    f"{row.worst_series}: {row.worst_coverage:.4f}" if row.series else "none"
                )
                for row in intervals.itertuples()
            },
        },
    )


monitoring_automation_sensor = AutomationConditionSensorDefinition(
    "monitoring_automation_sensor",
    target=AssetSelection.assets(forecast_accuracy, forecast_accuracy_summary),
    description="Scores each hour's forecasts once its actuals arrive, then refreshes the rolling summary.",
)
