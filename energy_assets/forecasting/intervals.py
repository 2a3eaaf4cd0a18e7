"""Prediction intervals as stored forecasts carry them (bound columns), and their scores."""

from __future__ import annotations

import numpy as np

from energy_assets.forecasting.metrics import has_relative_error
from energy_assets.forecasting.calibration import ConformalErrors
from energy_assets.schema import interval_column


def winkler_score(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, coverage: float) -> np.ndarray:
    """Interval (Winkler) score of each row: width, plus 2 / (1 - coverage) times any miss."""
    alpha = 1 - coverage
    below = np.clip(lower - actual, 0, None)
    above = np.clip(actual - upper, 0, None)
    return (upper - lower) + (2 / alpha) * (below + above)


def interval_metric_names(coverage: float) -> tuple[str, str]:
    """Names of the empirical coverage and the relative Winkler score of the `coverage` interval."""
    pct = round(coverage * 100)
    return f"coverage_{pct}", f"winkler_{pct}"


def interval_scores(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, coverage: float) -> dict[str, float]:
    """`coverage_<pct>`: share of actuals inside the interval; `winkler_<pct>`: mean Winkler score relative
    to the actual (scale-free, as MAPE is, so large series do not drown small ones), over the rows with a
    relative error by `metrics`' rule (zero actuals are covered or not, but have no relative score). Rows
    without bounds (a model without intervals, an object written before them) are left out; NaN when none is left."""
    covered, winkler = interval_metric_names(coverage)
    bounded = np.isfinite(lower) & np.isfinite(upper) & np.isfinite(actual)
    relative = bounded & has_relative_error(actual)
    a, lo, up = actual[bounded], lower[bounded], upper[bounded]
    return {
        covered: float(np.mean((lo <= a) & (a <= up))) if bounded.any() else np.nan,
        winkler: float(np.mean(winkler_score(actual, lower, upper, coverage)[relative] / np.abs(actual[relative])))
        if relative.any()
        else np.nan,
    }


def bound_columns(
    errors: ConformalErrors | None,
    forecast: np.ndarray,
    steps: np.ndarray,
    coverages: tuple[float, ...],
    name: str,
    scale: np.ndarray | float = 1.0,
) -> dict[str, np.ndarray]:
    """The lower and upper bound of each coverage around (..., len(steps)) forecasts in units of `scale`,
    flattened, under their `schema.interval_column` names; NaN where there is no calibration or the
    interval is unbounded, so stored tables hold no infinities."""
    columns = {}
    for coverage in coverages:
        if errors is None:
            lower = upper = np.full(forecast.shape, np.nan)
        else:
            lower, upper = (np.where(np.isfinite(b), b, np.nan) for b in errors.bounds(forecast, coverage, steps, scale))
        columns[interval_column("lower", coverage, name)] = lower.ravel()
        columns[interval_column("upper", coverage, name)] = upper.ravel()
    return columns
