"""The one rule by which every score of the project treats zero consumption, and the point scores it defines.

Consumption can be zero: a series that is genuinely zero throughout, or a zero in a small series, passes
the input checks (a zero far below its series' range does not). A percentage error divides by the actual,
so on a zero it has no value; sktime divides by machine epsilon instead, and one zero actual made a MAPE
of 1.8e17. Consumption is in kWh and Energi Data Service publishes whole kWh, so an actual below
`RESOLUTION_KWH` (1 kWh) is zero at the data's resolution, and is treated as zero below.

The rule:

- **WAPE is the headline**: sum |actual - forecast| / sum |actual| over the rows scored (the weighted
  absolute percentage error, MAE over mean actual). A zero actual counts in full, its error in the sum, so
  the score is finite whenever the rows hold any consumption; it is null only where they hold less than
  1 kWh in all, and the MAE beside it (kWh) then says how far off the forecasts were. Every check, alert,
  ranking and search of the project judges on WAPE. It weights series by their consumption, where MAPE
  weights each row alike.
- **Scores relative to each actual** (MAPE, RMSPE, and the relative Winkler score of an interval) leave
  out the rows whose actual is zero; `zero_actuals` counts them beside the score. Null where every
  actual is zero. They are computed as sktime's metrics define them, on the rows they keep.
- **Scores that divide by no actual** (MAE, interval coverage) count every row.

No score is then infinite: a relative one is at most the forecast's error in kWh per kWh of consumption.

Score tables carry what pools them exactly (`n`, `zero_actuals`, `mae`, `mean_actual`), so tables of
several issue hours or series pool into the score of all their rows (`pool`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HEADLINE = "wape"
# Energi Data Service publishes whole kWh: less is zero at the data's resolution.
RESOLUTION_KWH = 1.0
# One row of a score table: the scores, then the counts and means that pool them.
POINT_SCORES = ["wape", "mape", "rmspe", "mae", "mean_actual", "n", "zero_actuals"]


def has_relative_error(actual: np.ndarray) -> np.ndarray:
    """Which rows have an error relative to their actual: those whose actual is known and not zero (at least
    `RESOLUTION_KWH` in size)."""
    actual = np.asarray(actual, dtype="float64")
    return np.isfinite(actual) & (np.abs(actual) >= RESOLUTION_KWH)


def relative_rows(scores: pd.DataFrame) -> pd.Series:
    """How many rows stand behind each score row's MAPE, RMSPE and relative Winkler score (`n` less `zero_actuals`)."""
    return scores["n"].astype("float64") - scores["zero_actuals"].astype("float64")


def row_terms(actual: np.ndarray, forecast: np.ndarray) -> pd.DataFrame:
    """Per row, the terms whose sums make every point score (`scores_from_sums`)."""
    actual, forecast = np.asarray(actual, dtype="float64"), np.asarray(forecast, dtype="float64")
    relative = has_relative_error(actual)
    ratio = (actual - forecast) / np.where(relative, actual, 1.0)
    return pd.DataFrame(
        {
            "abs_error": np.abs(actual - forecast),
            "abs_actual": np.abs(actual),
            "ape": np.where(relative, np.abs(ratio), 0.0),
            "spe": np.where(relative, ratio**2, 0.0),
            "relative": relative.astype("int64"),
        }
    )


def scores_from_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """`POINT_SCORES` from per-group sums of `row_terms` and the group sizes (`n`)."""
    n = sums["n"].astype("float64")
    relative = sums["relative"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "wape": (sums["abs_error"] / sums["abs_actual"]).where(sums["abs_actual"] >= RESOLUTION_KWH),
                "mape": (sums["ape"] / relative).where(relative > 0),
                "rmspe": np.sqrt(sums["spe"] / relative).where(relative > 0),
                "mae": sums["abs_error"] / n,
                "mean_actual": sums["abs_actual"] / n,
                "n": sums["n"].astype("int64"),
                "zero_actuals": (n - relative).astype("int64"),
            },
            index=sums.index,
        )


def score_groups(actual: np.ndarray, forecast: np.ndarray, keys: list[np.ndarray]) -> pd.DataFrame:
    """`POINT_SCORES` per group of `keys` (one group without), sorted by key, in one groupby."""
    terms = row_terms(actual, forecast)
    grouped = terms.groupby(keys or [np.zeros(len(terms), dtype="int64")], sort=True)
    return scores_from_sums(grouped.sum().assign(n=grouped.size()))


def pool(scores: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The point scores of all the rows behind several score rows, per group of `by`, as if scored at once.

    Rows written before WAPE (no `mae`, `mean_actual`) pool into MAPE and RMSPE only: WAPE and MAE are
    over the rows that have them, null where none has.
    """
    relative = relative_rows(scores)
    n = scores["n"].astype("float64")
    with_wape = scores["mae"].notna() & scores["mean_actual"].notna()
    frame = pd.DataFrame(
        {
            **{column: scores[column] for column in by},
            "abs_error": (scores["mae"] * n).where(with_wape),
            "abs_actual": (scores["mean_actual"] * n).where(with_wape),
            "ape": (scores["mape"] * relative).where(relative > 0, 0.0),
            "spe": (scores["rmspe"] ** 2 * relative).where(relative > 0, 0.0),
            "relative": relative,
            "n": n,
            "n_wape": n.where(with_wape, 0.0),
        }
    )
    grouped = frame.groupby(by, sort=True)
    sums = grouped[["ape", "spe", "relative", "n", "n_wape"]].sum()
    sums[["abs_error", "abs_actual"]] = grouped[["abs_error", "abs_actual"]].sum(min_count=1)
    table = scores_from_sums(sums)
    # MAE and the mean actual are over the rows WAPE pools, not over rows scored before it.
    with np.errstate(divide="ignore", invalid="ignore"):
        table["mae"] = (sums["abs_error"] / sums["n_wape"]).where(sums["n_wape"] > 0)
        table["mean_actual"] = (sums["abs_actual"] / sums["n_wape"]).where(sums["n_wape"] > 0)
    return table.reset_index()
