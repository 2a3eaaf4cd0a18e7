"""Data-quality rules for consumption rows: each names the rows that break it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from energy_assets.quality.cleaning import coerce_consumption, missing_columns, unparseable_values
from energy_assets.quality.plausibility import REFERENCE_DAYS, Plausibility, series_name
from energy_assets.schema import AREA, CONSUMER_TYPE, DATETIME, SERIES_KEY, TARGET


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule over a batch of rows."""

    rule: str
    description: str
    offending_rows: pd.DataFrame
    # What the rule judged by, for the check's metadata (e.g. the plausibility factor).
    facts: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.offending_rows.empty


RULES: dict[str, str] = {
    "columns_and_types": "every canonical column is present and every value parses to its type",
    "no_nulls": "no column holds a null",
    "known_areas_and_consumer_types": "every area and consumer type is one the source publishes",
    "finite_non_negative_consumption": "energy_consumption is a finite number >= 0 (not inf)",
    "complete_hours": "every expected series appears exactly once in every hour of the window",
    "plausible_consumption": (
        "energy_consumption lies within the plausibility factor (default 30) of its series' median over the "
        f"{REFERENCE_DAYS} days before the window and the window itself, compared as 1 + kWh: a value far from "
        "its series' recent level, or a zero in a series far above zero, is refused"
    ),
}


def validate_consumption(
    rows: pd.DataFrame,
    expected_series: pd.DataFrame,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
    history: pd.DataFrame | None = None,
    plausibility: Plausibility = Plausibility(),
) -> list[RuleResult]:
    """Run every rule in RULES on rows meant to cover hours window_start <= H < window_end.

    `history` holds the stored rows of the days before the window that `plausible_consumption`
    judges each series against (with the window's own rows); none judges each series by its own rows.
    """
    absent = missing_columns(rows)
    if absent:
        offending = pd.DataFrame({"missing_column": absent})
        return [RuleResult("columns_and_types", RULES["columns_and_types"], offending)] + [
            RuleResult(rule, description, pd.DataFrame({"skipped_because_missing_columns": absent}))
            for rule, description in RULES.items()
            if rule != "columns_and_types"
        ]
    rows = rows.reset_index(drop=True)
    coerced = coerce_consumption(rows)
    was_null = rows[coerced.columns].isna()
    unparseable = unparseable_values(rows, coerced)

    known = expected_series.set_index(SERIES_KEY).index
    unknown = coerced[AREA].notna() & coerced[CONSUMER_TYPE].notna() & ~pd.MultiIndex.from_frame(
        coerced[SERIES_KEY].fillna(-1).astype("int64")
    ).isin(known)

    # Infinity passes `>= 0` and would only fail model training much later, naming no row.
    not_finite_or_negative = np.isinf(coerced[TARGET]) | (coerced[TARGET] < 0)
    return [
        RuleResult("columns_and_types", RULES["columns_and_types"], _with_problem(rows, unparseable)),
        RuleResult("no_nulls", RULES["no_nulls"], _with_problem(rows, was_null)),
        RuleResult("known_areas_and_consumer_types", RULES["known_areas_and_consumer_types"], rows.loc[unknown]),
        RuleResult(
            "finite_non_negative_consumption",
            RULES["finite_non_negative_consumption"],
            rows.loc[not_finite_or_negative],
        ),
        RuleResult(
            "complete_hours",
            RULES["complete_hours"],
            _completeness_problems(coerced, expected_series, window_start, window_end),
        ),
        RuleResult(
            "plausible_consumption",
            RULES["plausible_consumption"],
            plausibility.implausible_rows(rows, history),
            {
                "plausibility_factor": plausibility.factor,
                "history_hours": 0 if history is None else int(history[DATETIME].nunique()),
                "accepted_series": ", ".join(sorted(series_name(*series) for series in plausibility.accepted)) or "none",
            },
        ),
    ]


def _with_problem(rows: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """The flagged rows with a column naming which of their columns are at fault."""
    bad = flags.any(axis=1)
    columns_at_fault = flags.loc[bad].dot(flags.columns + ",").str.rstrip(",")
    return rows.loc[bad].assign(problem_columns=columns_at_fault)


def _completeness_problems(
    coerced: pd.DataFrame,
    expected_series: pd.DataFrame,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
) -> pd.DataFrame:
    """(hour, series, rows_found, problem) for every slot not filled exactly once, or outside the window."""
    hours = pd.DataFrame({DATETIME: pd.date_range(window_start, window_end, freq="h", inclusive="left")})
    grid = hours.merge(expected_series[SERIES_KEY].astype("int64"), how="cross")
    expected = pd.MultiIndex.from_frame(grid[[DATETIME, *SERIES_KEY]])
    typed = coerced.dropna(subset=[DATETIME, *SERIES_KEY]).astype({AREA: "int64", CONSUMER_TYPE: "int64"})
    found = typed.groupby([DATETIME, *SERIES_KEY]).size()
    counts = found.reindex(expected.union(found.index), fill_value=0).rename("rows_found").reset_index()
    counts["problem"] = "duplicate"
    counts.loc[counts["rows_found"] == 0, "problem"] = "missing"
    outside = (counts[DATETIME] < window_start) | (counts[DATETIME] >= window_end)
    counts.loc[outside, "problem"] = "outside_window"
    return counts[(counts["rows_found"] != 1) | outside].reset_index(drop=True)
