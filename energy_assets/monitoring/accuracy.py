"""Accuracy of issued forecasts once their actuals are in, against seasonal naive baselines at the same hours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_assets.forecasting.baselines import DAY, WEEK, seasonal_naive_origins
from energy_assets.forecasting.evaluation import MODEL, ForecastScores, score_forecasts, with_actuals
from energy_assets.forecasting.intervals import SERIES_COVERAGE_TOLERANCE, interval_metric_names, series_coverage_stats
from energy_assets.forecasting.metrics import HEADLINE, POINT_SCORES, RESOLUTION_KWH, pool, relative_rows
from energy_assets.forecasting.panel import to_sktime
from energy_assets.schema import (
    AREA,
    AREA_NAMES,
    CONSUMER_TYPE,
    DATETIME,
    FORECAST,
    HORIZON,
    INTERVAL_COLUMNS,
    INTERVAL_COVERAGES,
    ISSUED_AT,
    SERIES_KEY,
    TARGET,
)

# Warn when more than this share of the series are covered far off their nominal level (10 %: 8 of 76).
FAR_OFF_SERIES_SHARE = 0.10
SEASONAL_PERIODS = (DAY, WEEK)
BASELINES = tuple(f"snaive{sp}" for sp in SEASONAL_PERIODS)
REFERENCE_BASELINE = f"snaive{WEEK}"
# Hours at and before an issue hour that the baselines read.
BASELINE_HISTORY_HOURS = max(SEASONAL_PERIODS)
SCOPE = "scope"
OVERALL, PER_HORIZON, PER_SERIES = "overall", "horizon", "series"
# coverage_80, winkler_80, ... per nominal coverage, as `interval_scores` names them.
INTERVAL_METRICS: dict[float, list[str]] = {coverage: list(interval_metric_names(coverage)) for coverage in INTERVAL_COVERAGES}
COVERAGE_METRICS = {coverage: names[0] for coverage, names in INTERVAL_METRICS.items()}
WINKLER_METRICS = {coverage: names[1] for coverage, names in INTERVAL_METRICS.items()}
# Objects written before WAPE hold only these of the point scores (MAPE and RMSPE then divided a zero actual
# by machine epsilon, and no row was left out).
POINT_SCORES_BEFORE_WAPE = ["mape", "rmspe", "n"]
METRICS = [
    *POINT_SCORES_BEFORE_WAPE,
    *(name for names in INTERVAL_METRICS.values() for name in names),
    *(name for name in POINT_SCORES if name not in POINT_SCORES_BEFORE_WAPE),
]
ACCURACY_COLUMNS = [ISSUED_AT, MODEL, SCOPE, HORIZON, AREA, CONSUMER_TYPE, *METRICS]
# Nullable: a row fills only the keys of its scope (horizon rows a horizon, series rows a series), the
# interval metrics only for forecasts with bounds (not the baselines, nor objects written before intervals,
# which lack these columns altogether), and the scores only where `metrics`' rule defines them.
ACCURACY_DTYPES = {
    ISSUED_AT: "datetime64[us, UTC]",
    HORIZON: "Int16",
    AREA: "Int8",
    CONSUMER_TYPE: "Int32",
    "n": "int64",
    "zero_actuals": "int64",
    **{name: "float64" for name in POINT_SCORES if name not in ("n", "zero_actuals")},
    **{name: "float64" for names in INTERVAL_METRICS.values() for name in names},
}


def baseline_forecasts(history: pd.DataFrame, forecasts: pd.DataFrame) -> pd.DataFrame:
    """Seasonal naive 24 h and 168 h forecasts for exactly the series, issue hours and horizons of `forecasts`."""
    origins = pd.DatetimeIndex(forecasts[ISSUED_AT].unique()).sort_values()
    horizon = int(forecasts[HORIZON].max())
    y = to_sktime(history)
    baselines = pd.concat(
        [
            seasonal_naive_origins(y, origins, horizon, sp).assign(**{MODEL: name})
            for sp, name in zip(SEASONAL_PERIODS, BASELINES)
        ],
        ignore_index=True,
    ).rename(columns={TARGET: FORECAST})
    # Same rows as the model's, so a series the model skipped does not tilt the comparison.
    keys = forecasts[[*SERIES_KEY, ISSUED_AT, HORIZON]].astype(baselines[[*SERIES_KEY, ISSUED_AT, HORIZON]].dtypes)
    return baselines.merge(keys, on=[*SERIES_KEY, ISSUED_AT, HORIZON], how="inner")


def issue_hours_lacking_actuals(forecasts: pd.DataFrame, history: pd.DataFrame) -> pd.DatetimeIndex:
    """Issue hours with at least one forecast whose target hour has no actual in `history` yet."""
    issued = forecasts.groupby(ISSUED_AT).size()
    scorable = with_actuals(forecasts, history).groupby(ISSUED_AT).size().reindex(issued.index, fill_value=0)
    return pd.DatetimeIndex(issued.index[scorable < issued]).sort_values()


def accuracy_by_issue_hour(forecasts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Point scores (`metrics.POINT_SCORES`) of the model's forecasts and of the seasonal naive baselines issued
    at the same hours, and the interval scores of the model's.

    `forecasts` are the model's rows (energy_forecasts); `history` holds the actuals of their target
    hours and the week before each issue hour. Returns one tidy row per issue hour, model and scope:
    overall, per horizon, per series (area, consumer_type).
    """
    lacking = issue_hours_lacking_actuals(forecasts, history)
    if not lacking.empty:
        raise ValueError(f"actuals are not all in yet for forecasts issued at {[h.isoformat() for h in lacking[:3]]}")
    # Forecasts read from objects written before intervals lack the bound columns: their bounds are missing.
    model = forecasts.reindex(columns=[*SERIES_KEY, ISSUED_AT, DATETIME, HORIZON, FORECAST, *INTERVAL_COLUMNS])
    scored = with_actuals(
        pd.concat([model.assign(**{MODEL: MODEL}), baseline_forecasts(history, forecasts)], ignore_index=True), history
    )
    parts = [
        _tidy(score_forecasts(rows), issued_at, name)
        for (issued_at, name), rows in scored.groupby([ISSUED_AT, MODEL], sort=True)
    ]
    return pd.concat(parts, ignore_index=True)[ACCURACY_COLUMNS].astype(ACCURACY_DTYPES)


def readable_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored accuracy rows in today's columns and dtypes: objects written before intervals lack their metrics,
    and objects written before WAPE lack it, MAE and the mean actual (null) and scored every row (0 zero actuals)."""
    frame = frame.reindex(columns=ACCURACY_COLUMNS)
    return frame.assign(zero_actuals=frame["zero_actuals"].fillna(0)).astype(ACCURACY_DTYPES)


def _tidy(scores: ForecastScores, issued_at: pd.Timestamp, model: str) -> pd.DataFrame:
    """The three score tables of one issue hour and model (interval scores included) as rows of one long frame."""
    levels = [("overall", OVERALL), ("per_horizon", PER_HORIZON), ("per_series", PER_SERIES)]
    frame = pd.concat([getattr(scores, attribute).assign(**{SCOPE: scope}) for attribute, scope in levels], ignore_index=True)
    return frame.assign(**{ISSUED_AT: issued_at, MODEL: model}).reindex(columns=ACCURACY_COLUMNS)


def pooled_intervals(scores: pd.DataFrame) -> pd.DataFrame:
    """Per nominal coverage: the empirical coverage and relative Winkler score pooled over score rows (weighted
    by the rows behind each: all for coverage, those with a relative error for the Winkler score), and the n
    behind the coverage; rows without interval metrics (baselines, forecasts without bounds) are left out, so
    a level without any has NaN scores and n 0."""
    records = []
    for coverage in INTERVAL_COVERAGES:
        coverage_column, winkler_column = COVERAGE_METRICS[coverage], WINKLER_METRICS[coverage]
        rows = scores[scores[coverage_column].notna()]
        weights = rows["n"].astype("float64")
        total = float(weights.sum())
        relative = relative_rows(rows).where(rows[winkler_column].notna(), 0.0)
        records.append(
            {
                "nominal": coverage,
                "coverage": float((rows[coverage_column] * weights).sum() / total) if total else np.nan,
                "winkler": float((rows[winkler_column].fillna(0.0) * relative).sum() / relative.sum())
                if relative.sum()
                else np.nan,
                "n": int(total),
            }
        )
    return pd.DataFrame.from_records(records)


def series_coverage(scores: pd.DataFrame) -> pd.DataFrame:
    """Each series' empirical coverage at each nominal level (`coverage_<pct>` columns beside the series key),
    pooled over the model's per-series score rows weighted by the forecasts behind each; NaN for a series
    and level without bounds."""
    rows = scores[(scores[SCOPE] == PER_SERIES) & (scores[MODEL] == MODEL)]
    pooled = []
    for column in COVERAGE_METRICS.values():
        bounded = rows[rows[column].notna()]
        weights = bounded["n"].astype("float64")
        sums = (bounded[column] * weights).groupby([bounded[key] for key in SERIES_KEY]).sum()
        pooled.append((sums / weights.groupby([bounded[key] for key in SERIES_KEY]).sum()).rename(column))
    keys = rows[SERIES_KEY].drop_duplicates().set_index(SERIES_KEY).index
    return pd.concat(pooled, axis=1).reindex(keys).sort_index().reset_index()


def series_label(area: int, consumer_type: int) -> str:
    """A series as readers name it: 'DK1 111'."""
    return f"{AREA_NAMES.get(int(area), area)} {int(consumer_type)}"


def series_intervals(coverage: pd.DataFrame, tolerance: float = SERIES_COVERAGE_TOLERANCE) -> pd.DataFrame:
    """Per nominal coverage, how right the intervals are for each series (`series_coverage` rows): the series
    with bounds, the median and tenth-percentile series' coverage, the worst-covered series and its coverage,
    and how many series (and what share) are far off: covered more than `tolerance` from nominal, either side."""
    records = []
    for nominal, column in COVERAGE_METRICS.items():
        bounded = coverage[coverage[column].notna()]
        stats = series_coverage_stats(bounded[column].to_numpy(), nominal, tolerance)
        worst = bounded.loc[bounded[column].idxmin()] if len(bounded) else None
        records.append(
            {
                "nominal": nominal,
                "series": len(bounded),
                "series_median": stats["series_median"],
                "series_p10": stats["series_p10"],
                "worst_series": None if worst is None else series_label(worst[AREA], worst[CONSUMER_TYPE]),
                "worst_coverage": stats["series_worst"],
                "far_off_series": int(round(stats["series_far_off"] * len(bounded))) if len(bounded) else 0,
                "far_off_share": stats["series_far_off"],
            }
        )
    return pd.DataFrame.from_records(records)


@dataclass(frozen=True)
class AccuracySummary:
    """Accuracy over a rolling window of issue hours."""

    first_issued: pd.Timestamp
    last_issued: pd.Timestamp
    issue_hours: int
    issue_hours_before_wape: int  # of those, hours whose objects were written before WAPE (MAPE and RMSPE only)
    overall: pd.DataFrame  # per model: `metrics.POINT_SCORES`
    per_area_over_time: pd.DataFrame  # issued_at, area, model and their point scores
    worst_series: pd.DataFrame  # area, consumer_type, each model's `judged_on` score, the model's MAPE, MAE, zero actuals
    # The model's, per nominal coverage: pooled (nominal, coverage, winkler, n; 0: no bounds stored) and per
    # series (`series_intervals`' columns, over `series_tolerance`)
    intervals: pd.DataFrame
    series_coverage: pd.DataFrame  # each series' coverage per level (`series_coverage`)
    series_tolerance: float

    @property
    def judged_on(self) -> str:
        """The score the window is judged on: the headline (WAPE), or MAPE when every object in the window was
        written before WAPE."""
        return HEADLINE if self.issue_hours_before_wape < self.issue_hours else "mape"

    def score(self, model: str, metric: str | None = None) -> float:
        """The window's pooled `metric` (default: `judged_on`) of one model; NaN where the rule leaves it undefined."""
        return float(self.overall.set_index(MODEL).loc[model, metric or self.judged_on])


def summarize_window(
    accuracy: pd.DataFrame, window_hours: int, worst: int = 10, series_tolerance: float = SERIES_COVERAGE_TOLERANCE
) -> AccuracySummary:
    """Accuracy over the `window_hours` issue hours ending at the newest issue hour in `accuracy`; a series is
    far off when its coverage over the window misses nominal by more than `series_tolerance`."""
    if accuracy.empty:
        raise ValueError("no forecast accuracy to summarize")
    accuracy = readable_accuracy(accuracy)
    last = accuracy[ISSUED_AT].max()
    first = last - pd.Timedelta(hours=window_hours - 1)
    series = accuracy[(accuracy[SCOPE] == PER_SERIES) & (accuracy[ISSUED_AT] >= first)]
    issue_hours = series[ISSUED_AT].nunique()
    before_wape = series.loc[series["mae"].isna(), ISSUED_AT].nunique()
    judged_on = HEADLINE if before_wape < issue_hours else "mape"
    coverage = series_coverage(series)
    return AccuracySummary(
        first_issued=series[ISSUED_AT].min(),
        last_issued=last,
        issue_hours=issue_hours,
        issue_hours_before_wape=before_wape,
        overall=pool(series, [MODEL]),
        per_area_over_time=pool(series, [ISSUED_AT, AREA, MODEL]),
        worst_series=_worst_series(pool(series, [*SERIES_KEY, MODEL]), judged_on, worst),
        intervals=pooled_intervals(series[series[MODEL] == MODEL]).merge(
            series_intervals(coverage, series_tolerance), on="nominal"
        ),
        series_coverage=coverage,
        series_tolerance=series_tolerance,
    )


def _worst_series(per_series: pd.DataFrame, metric: str, worst: int) -> pd.DataFrame:
    """The `worst` series by the model's `metric`, each model's beside it, and the model's MAPE, MAE and zero actuals."""
    table = per_series.pivot(index=SERIES_KEY, columns=MODEL, values=metric).add_suffix(f"_{metric}")
    model = per_series[per_series[MODEL] == MODEL].set_index(SERIES_KEY)
    extra = [] if metric == "mape" else ["mape"]
    table = table.join(model[[*extra, "mae"]].add_prefix(f"{MODEL}_")).join(model["zero_actuals"])
    # A series without consumption to relate its error to (WAPE undefined) but forecast off ranks first.
    undefined = np.where(table[f"{MODEL}_mae"] > 0, np.inf, -np.inf)
    rank = table[f"{MODEL}_{metric}"].fillna(pd.Series(undefined, index=table.index))
    table = table.loc[rank.sort_values(ascending=False, kind="stable").index].head(worst).reset_index()
    table.columns.name = None
    return table


def accuracy_alerts(summary: AccuracySummary, threshold: float) -> list[str]:
    """Why the model's accuracy over the window needs attention, judged on `summary.judged_on`; empty when it
    does not."""
    name = summary.judged_on.upper()
    model, reference = summary.score(MODEL), summary.score(REFERENCE_BASELINE)
    if np.isnan(model):
        return [
            f"model {name} is undefined over the window: its actuals total less than {RESOLUTION_KWH:g} kWh "
            f"(model MAE {summary.score(MODEL, 'mae'):.4g} kWh)"
        ]
    alerts = []
    if model > threshold:
        alerts.append(f"model {name} {model:.2%} exceeds the threshold {threshold:.2%}")
    if model > reference:
        alerts.append(f"model {name} {model:.2%} is worse than the 168 h seasonal naive baseline's {reference:.2%}")
    return alerts


def coverage_alerts(summary: AccuracySummary, tolerance: float, far_off_share: float = FAR_OFF_SERIES_SHARE) -> list[str]:
    """Which of the model's intervals missed their nominal coverage by more than `tolerance` over the window,
    pooled, and at which levels more than `far_off_share` of the series were far off (`summary.series_tolerance`
    from nominal by their own coverage); empty when none did or no interval bounds were stored."""
    alerts = []
    for row in summary.intervals.itertuples():
        if row.n and abs(row.coverage - row.nominal) > tolerance:
            side = "below" if row.coverage < row.nominal else "above"
            alerts.append(
                f"the {row.nominal:.0%} interval covered {row.coverage:.1%} of {row.n} actuals, "
                f"{abs(row.coverage - row.nominal) * 100:.1f} points {side} nominal (tolerance {tolerance * 100:.1f})"
            )
        if row.series and row.far_off_share > far_off_share:
            alerts.append(
                f"the {row.nominal:.0%} interval covered {row.far_off_series} of {row.series} series "
                f"({row.far_off_share:.0%}, more than {far_off_share:.0%}) more than "
                f"{summary.series_tolerance * 100:.0f} points from nominal (worst: {row.worst_series}, "
                f"{row.worst_coverage:.1%}; median series {row.series_median:.1%})"
            )
    return alerts
