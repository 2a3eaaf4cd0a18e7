"""Split-conformal prediction intervals from out-of-sample forecast errors, per horizon."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from energy_assets.forecasting.metrics import has_relative_error
from energy_assets.schema import interval_column

# Score quantiles are kept at these levels (order statistics; a level between two is rounded up, so an
# interval is at most 0.001 in level wider than the exact one, never narrower): a fixed, small table
# however many series and origins calibrated it.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)
# Seasonal scales are raised to at least this (a series that repeated its last season to within 0.1 %):
# no interval of zero width, and no calibration score divided by zero.
SCALE_FLOOR = 1e-3


def absolute_scores(actual: np.ndarray, forecast: np.ndarray, log_space: bool) -> np.ndarray:
    """|log1p(actual) - log1p(forecast)| when `log_space`, else |actual - forecast| / |forecast|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_space:
            return np.abs(np.log1p(actual) - np.log1p(forecast))
        return np.abs(actual - forecast) / np.abs(forecast)


def seasonal_scale(values: np.ndarray, origins: np.ndarray, lag: int, hours: int, log_space: bool) -> np.ndarray:
    """(series, origins) mean `absolute_scores` of the seasonal naive forecast with period `lag` over the
    `hours` points up to each origin position of (series, points) `values`: MASE's scale, kept recent.

    Points without an observed value `lag` before are left out; NaN where none is left. At least
    `SCALE_FLOOR`. Reads the `lag + hours` points up to each origin.
    """
    origins = np.asarray(origins, dtype="int64")
    scores = absolute_scores(values[:, lag:], values[:, :-lag], log_space)
    scored = np.isfinite(scores)
    # Column c is point c - hours (the first hours + lag have no score), so the window of origin o is
    # columns o + 1 .. o + hours. Each window is summed on its own, not as a difference of running sums:
    # the same bytes however much history comes before it.
    unscored = np.zeros((len(values), hours + lag))
    first, last = origins.min(), origins.max()

    def window_sums(columns: np.ndarray) -> np.ndarray:
        # Summing a slice of the windows' view, then picking the origins, holds no copy of the windows.
        windows = np.lib.stride_tricks.sliding_window_view(columns, hours, axis=1)[:, first + 1 : last + 2]
        return windows.sum(axis=-1)[:, origins - first]

    summed = window_sums(np.concatenate([unscored, np.where(scored, scores, 0.0)], axis=1))
    counted = window_sums(np.concatenate([unscored, scored], axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = summed / counted
    return np.maximum(scale, SCALE_FLOOR)  # NaN stays NaN


@dataclass(frozen=True)
class ConformalErrors:
    """Quantiles of absolute out-of-sample errors in a scale-free space, per forecast horizon.

    An error is |log1p(actual) - log1p(forecast)| when `log_space` (multiplicative intervals, so a
    10^2 kWh and a 10^6 kWh series get widths in proportion), else |actual - forecast| / |forecast|,
    optionally divided by a scale known at the forecast's origin (normalized conformal prediction:
    the interval is then as many of its forecast's scales wide). Symmetric absolute scores, as
    mlforecast's conformal intervals use: every interval contains the point forecast, nests inside
    any wider one, and its quantile function is monotone, which signed (asymmetric) scores do not
    guarantee when the calibration errors lean one way.
    """

    quantiles: np.ndarray  # (horizons, len(QUANTILE_LEVELS)) of the scores of each horizon
    counts: np.ndarray  # (horizons,) scores behind each row
    log_space: bool

    @classmethod
    def from_forecasts(
        cls, actual: np.ndarray, forecast: np.ndarray, log_space: bool, scale: np.ndarray | float = 1.0
    ) -> ConformalErrors:
        """Errors of (..., horizon) forecasts against actuals (NaN where there is none to score), in units
        of `scale` (broadcast against them; a NaN scale leaves its errors out)."""
        scores = absolute_scores(actual, forecast, log_space) / scale
        scores = scores.reshape(-1, scores.shape[-1])
        scored = np.isfinite(scores)
        counts = scored.sum(axis=0)
        # numpy's "inverted_cdf" quantile at level q is the ceil(q n)-th smallest score (the first at q = 0):
        # one sort per horizon instead of a selection per level. Unscored values sort last as NaN.
        ordered = np.sort(np.where(scored, scores, np.nan), axis=0)
        ranks = np.maximum(np.ceil(QUANTILE_LEVELS[:, None] * counts), 1).astype("int64") - 1
        quantiles = np.take_along_axis(ordered, np.minimum(ranks, len(ordered) - 1), axis=0).T
        # A horizon without a single error keeps NaN quantiles and count 0: its intervals are unbounded.
        quantiles[counts == 0] = np.nan
        return cls(quantiles=quantiles, counts=counts, log_space=log_space)

    def half_width(self, coverage: float, steps: np.ndarray) -> np.ndarray:
        """The score each step's interval of `coverage` spans on either side (inf when too few errors).

        Split-conformal quantile: the ceil((n + 1) * coverage)-th smallest of n scores. Steps beyond
        the calibrated horizons take the furthest calibrated one's.
        """
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must lie strictly between 0 and 1, got {coverage}")
        rows = np.minimum(np.asarray(steps) - 1, len(self.counts) - 1)
        n = self.counts[rows]
        with np.errstate(divide="ignore"):
            level = np.ceil((n + 1) * coverage) / n
        columns = np.searchsorted(QUANTILE_LEVELS, np.minimum(level, 1.0) - 1e-12)
        return np.where(level > 1.0, np.inf, self.quantiles[rows, columns])

    def bounds(
        self, forecast: np.ndarray, coverage: float, steps: np.ndarray, scale: np.ndarray | float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around (..., len(steps)) point forecasts whose errors are in units of `scale` (as
        calibrated); -inf and inf where too few errors bound it or the scale is unknown (NaN)."""
        width = self.half_width(coverage, steps) * scale
        width = np.where(np.isnan(width), np.inf, width)
        if self.log_space:
            centre = np.log1p(forecast)
            lower, upper = np.expm1(centre - width), np.expm1(centre + width)
        else:
            spread = np.abs(forecast) * width
            lower, upper = forecast - spread, forecast + spread
        # expm1(-inf) is -1: an unbounded interval is unbounded below as well.
        return np.where(np.isinf(width), -np.inf, lower), upper

    def quantile(
        self, forecast: np.ndarray, alpha: float, steps: np.ndarray, scale: np.ndarray | float = 1.0
    ) -> np.ndarray:
        """The `alpha` quantile of the forecast distribution: an interval bound of coverage |2 alpha - 1|."""
        if alpha == 0.5:
            return forecast.copy()
        lower, upper = self.bounds(forecast, abs(2 * alpha - 1), steps, scale)
        return lower if alpha < 0.5 else upper


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
