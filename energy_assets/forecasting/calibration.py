"""Split-conformal calibration: out-of-sample forecast errors as scale-free scores, per series scale and
per-horizon quantiles, per-series width factors, and the per-horizon shrinkage weights fitted on the same
forecasts.

What an interval needs from the past lives here; the bounds written into stored forecasts and their scores
are in `intervals`. Every function that learns from calibration forecasts takes a `mask` of those that count
(False: left out, as if never forecast), so a rule that withholds some forecasts withholds their errors too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
        return cls.from_scores(calibration_scores(actual, forecast, log_space, scale, mask), log_space)

    @classmethod
    def from_scores(cls, scores: np.ndarray, log_space: bool) -> ConformalErrors:
        """Per-horizon quantiles of (..., horizon) calibration `scores` (NaN: not scored)."""
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


def calibration_scores(
    actual: np.ndarray,
    forecast: np.ndarray,
    log_space: bool,
    scale: np.ndarray | float = 1.0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """`absolute_scores` in units of `scale`; NaN where there is no actual or scale, or `mask` is False."""
    scored = absolute_scores(actual, forecast, log_space) / scale
    return scored if mask is None else np.where(mask, scored, np.nan)


def interval_scale(
    values: np.ndarray, origins: np.ndarray, lags: tuple[int, ...], hours: int, log_space: bool
) -> np.ndarray:
    """(series, origins) units of calibration errors and interval widths: the geometric mean over `lags` of
    each lag's `seasonal_scale` over `hours` (NaN where any is), or ones when `hours` is 0 or there is no
    lag (one width per horizon for every series)."""
    if not hours or not lags:
        return np.ones((len(values), len(origins)))
    if len(lags) == 1:
        return seasonal_scale(values, origins, lags[0], hours, log_space)
    return np.exp(np.mean([np.log(seasonal_scale(values, origins, lag, hours, log_space)) for lag in lags], axis=0))


@dataclass(frozen=True)
class IntervalMethod:
    """How a forecaster calibrates its intervals (its hyperparameters of these names), so that other
    forecasts (the baselines') can be calibrated the same way."""

    calibration_hours: int = 0
    scale_lags: tuple[int, ...] = ()
    scale_hours: int = 0
    series_prior_hours: int | None = None

    @classmethod
    def of(cls, params) -> IntervalMethod:
        """The method of a forecaster's hyperparameters (`get_params()`)."""
        return cls(
            params["calibration_hours"],
            tuple(params["interval_scale_lags"]),
            params["interval_scale_hours"],
            params["interval_series_prior_hours"],
        )

    def scale(self, values: np.ndarray, origins: np.ndarray, log_space: bool) -> np.ndarray:
        """(series, origins) `interval_scale` of (series, points) `values` at grid positions `origins`."""
        return interval_scale(values, origins, self.scale_lags, self.scale_hours, log_space)


@dataclass(frozen=True)
class SeriesWidths:
    """A factor on the interval width of each series a calibration scored (Mondrian conformal prediction
    with shrinkage): how much larger its errors ran than all series' together, in units of the scale."""

    keys: pd.Index
    factors: np.ndarray  # (series,)

    def of(self, keys: pd.Index) -> np.ndarray:
        """(len(keys),) the factor of each key; 1 (the pooled width) for a series the calibration did not see."""
        at = self.keys.get_indexer(keys)
        return np.where(at >= 0, self.factors[at], 1.0)


def series_factors(scores: np.ndarray, origins: np.ndarray, prior_hours: int) -> np.ndarray:
    """(series,) width factors from (series, origins, horizon) calibration `scores` (NaN: not scored) of the
    forecasts issued after grid positions `origins`.

    A series' factor is the ratio of its mean score to the mean of all scores, shrunk towards 1 in log space
    by the weight n / (n + `prior_hours`), n being the hours whose actual scored at least one of its
    forecasts: a series with a calibration window's worth of hours moves as far as its own errors and
    `prior_hours` of pooled evidence allow, one with few scored hours stays near the pooled width, one with
    none keeps it. At least `SCALE_FLOOR`, so no interval has zero width.
    """
    scored = np.isfinite(scores)
    flat = np.where(scored, scores, 0.0).reshape(len(scores), -1)
    counts = scored.reshape(len(scores), -1).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (flat.sum(axis=1) / counts) / (flat.sum() / counts.sum())
    # Hours scored: target positions (relative to the first origin) with a scored forecast of the series.
    horizon = scores.shape[-1]
    hit = np.zeros((len(scores), origins.max() - origins.min() + horizon + 1), dtype=bool)
    for step in range(1, horizon + 1):
        hit[:, origins - origins.min() + step] |= scored[:, :, step - 1]
    hours = hit.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.exp(hours / (hours + prior_hours) * np.log(np.maximum(ratio, SCALE_FLOOR)))
    return np.where(counts > 0, factors, 1.0)  # a series is scored at some hour exactly when it has a score


@dataclass(frozen=True)
class Calibration:
    """What a model learned from its calibration forecasts: the errors that size its intervals, each
    series' width factor (None: one width for all), and, with shrinkage, the per-horizon weights of its
    deviation from the reference (None: no shrinkage)."""

    errors: ConformalErrors
    weights: np.ndarray | None
    series: SeriesWidths | None = None


def conformal_errors(
    actual: np.ndarray,
    forecast: np.ndarray,
    origins: np.ndarray,
    log_space: bool,
    scale: np.ndarray | float,
    keys: pd.Index,
    series_prior_hours: int | None,
    mask: np.ndarray | None = None,
) -> tuple[ConformalErrors, SeriesWidths | None]:
    """The conformal errors of (series `keys`, origins, horizon) calibration forecasts issued after grid
    positions `origins`, in units of `scale`, and with `series_prior_hours` each series' width factor
    (`series_factors`; the errors are then in units of scale times factor); `mask`: the forecasts that count."""
    scored = calibration_scores(actual, forecast, log_space, scale, mask)
    if series_prior_hours is None:
        return ConformalErrors.from_scores(scored, log_space), None
    factors = series_factors(scored, origins, series_prior_hours)
    return ConformalErrors.from_scores(scored / factors[:, None, None], log_space), SeriesWidths(keys, factors)


def calibrate(
    values: np.ndarray,
    model_space: np.ndarray,
    origins: np.ndarray,
    forecast: np.ndarray,
    layout: FeatureLayout,
    shrink_to_reference: bool,
    scale: np.ndarray,
    keys: pd.Index,
    series_prior_hours: int | None = None,
    mask: np.ndarray | None = None,
) -> tuple[Calibration, np.ndarray]:
    """The calibration of (series `keys`, origins, horizon) out-of-sample `forecast`s (target units, NaN past
    the newest point) issued after grid positions `origins` of (series, points) `values` (`model_space` is
    them gap-filled and transformed), with errors in units of the (series, origins, 1) `scale` and, with
    `series_prior_hours`, per-series width factors (`series_factors`); and the forecasts as the calibrated
    model would issue them (shrunk towards the reference when asked). `mask` (broadcast against the
    forecasts): which forecasts count, for the shrinkage weights and the errors alike."""
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
    errors, series = conformal_errors(actual, forecast, origins, layout.log_target, scale, keys, series_prior_hours, mask)
    return Calibration(errors, weights, series), forecast


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
