"""Split-conformal calibration: out-of-sample forecast errors as scale-free scores, per series scale and
per-horizon quantiles, and the per-horizon shrinkage weights fitted on the same forecasts.

What an interval needs from the past lives here (issue 27's per-series intervals build on it); the
bounds written into stored forecasts and their scores are in `intervals`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from energy_assets.forecasting.features import FeatureLayout

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
        cls,
        actual: np.ndarray,
        forecast: np.ndarray,
        log_space: bool,
        scale: np.ndarray | float = 1.0,
        mask: np.ndarray | None = None,
    ) -> ConformalErrors:
        """Errors of (..., horizon) forecasts against actuals (NaN where there is none to score), in units
        of `scale` (broadcast against them; a NaN scale leaves its errors out); with `mask` (broadcast
        against them), only the forecasts where it is True."""
        scores = absolute_scores(actual, forecast, log_space) / scale
        if mask is not None:
            scores = np.where(mask, scores, np.nan)
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


def interval_scale(values: np.ndarray, origins: np.ndarray, lag: int, hours: int, log_space: bool) -> np.ndarray:
    """(series, origins) units of calibration errors and interval widths: `seasonal_scale` over `hours`, or
    ones when `hours` is 0 (one width per horizon for every series)."""
    if not hours:
        return np.ones((len(values), len(origins)))
    return seasonal_scale(values, origins, lag, hours, log_space)


@dataclass(frozen=True)
class Calibration:
    """What a model learned from its calibration forecasts: the errors that size its intervals and, with
    shrinkage, the per-horizon weights of its deviation from the reference (None: no shrinkage)."""

    errors: ConformalErrors
    weights: np.ndarray | None


def calibrate(
    values: np.ndarray,
    model_space: np.ndarray,
    origins: np.ndarray,
    forecast: np.ndarray,
    layout: FeatureLayout,
    shrink_to_reference: bool,
    scale: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[Calibration, np.ndarray]:
    """The calibration of (series, origins, horizon) out-of-sample `forecast`s (target units, NaN past the
    newest point) issued after grid positions `origins` of (series, points) `values` (`model_space` is
    them gap-filled and transformed), with errors in units of the (series, origins, 1) `scale`; and the
    forecasts as the calibrated model would issue them (shrunk towards the reference when asked). `mask`
    (broadcast against the forecasts): which forecasts count, for the shrinkage weights and the errors alike."""
    horizon = forecast.shape[-1]
    targets = origins[:, None] + np.arange(1, horizon + 1)
    padded = np.concatenate([values, np.full((len(values), horizon), np.nan)], axis=1)
    actual = padded[:, targets]  # NaN past the panel's end: those origins score shorter horizons
    weights = None
    if shrink_to_reference and layout.reference_lag:
        # Only steps within one season have an observed reference (the rest keep weight 1).
        within = min(horizon, layout.reference_lag)
        reference = model_space[:, targets[:, :within] - layout.reference_lag]
        deviation = layout.transform(forecast[..., :within]) - reference
        observed = layout.transform(actual[..., :within]) - reference
        if mask is not None:
            observed = np.where(np.broadcast_to(mask, actual.shape)[..., :within], observed, np.nan)
        weights = least_squares_weights(observed, deviation)
        forecast = forecast.copy()
        forecast[..., :within] = layout.inverse(reference + weights * deviation)
    errors = ConformalErrors.from_forecasts(actual, forecast, log_space=layout.log_target, scale=scale, mask=mask)
    return Calibration(errors, weights), forecast


def least_squares_weights(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Per horizon (last axis), the weight w in [0, 1] minimising the squared error of w * forecast
    against actual, both as deviations from the reference; 1 where no pair is observed."""
    pairs = np.isfinite(actual) & np.isfinite(forecast)
    a, f = np.where(pairs, actual, 0.0), np.where(pairs, forecast, 0.0)
    axes = tuple(range(a.ndim - 1))
    cross, square = (a * f).sum(axis=axes), (f * f).sum(axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(square > 0, np.clip(cross / square, 0.0, 1.0), 1.0)


def shrink(forecast: np.ndarray, model_space: np.ndarray, origins: np.ndarray, layout: FeatureLayout,
           weights: np.ndarray) -> np.ndarray:
    """(series, origins, horizon) model-space forecasts with each step's deviation from its reference
    (`reference_lag` back in `model_space`) multiplied by its weight, in place; steps beyond the calibrated
    ones take the furthest one's weight, steps beyond one season are left as they are."""
    steps = np.arange(1, min(forecast.shape[-1], layout.reference_lag) + 1)
    weight = weights[np.minimum(steps, len(weights)) - 1]
    reference = model_space[:, origins[:, None] + steps - layout.reference_lag]
    forecast[..., steps - 1] = reference + weight * (forecast[..., steps - 1] - reference)
    return forecast
