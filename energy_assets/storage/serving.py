"""The serving files of the course's consumers, encoded as the course's batch pipeline wrote them.

The course (iusztinpaul/energy-forecasting) writes, at the bucket root, with `DataFrame.to_parquet`
(`batch-prediction-pipeline/batch_prediction_pipeline/utils.py: write_blob_to`):
`X.parquet`, `y.parquet`, `predictions.parquet` (`batch.py: save`), `predictions_monitoring.parquet`
(`batch.py: save_for_monitoring`), `y_monitoring.parquet` and `metrics_monitoring.parquet`
(`monitoring.py: compute`). Frames are indexed by (area, consumer_type, datetime_utc) with datetime_utc a
pandas hourly Period (`data.py: load_data_from_feature_store`), and its consumers
(`app-api/api/views.py`) select series with `.xs((area, consumer_type), level=["area", "consumer_type"])`.
"""

from __future__ import annotations

import io

import pandas as pd
from sktime.performance_metrics.forecasting import mean_absolute_percentage_error

from energy_assets.forecasting.metrics import has_relative_error
from energy_assets.schema import AREA, CONSUMER_TYPE, DATETIME, FORECAST, ISSUED_AT, SERIES_KEY, TARGET

# The API's `/predictions` view returns the last week of `y`; the monitoring files cover the same week.
HISTORY_HOURS = 7 * 24
INDEX = [AREA, CONSUMER_TYPE, DATETIME]
MAPE = "MAPE"
SERVING_OBJECTS = (
    "X.parquet",
    "y.parquet",
    "predictions.parquet",
    "y_monitoring.parquet",
    "predictions_monitoring.parquet",
    "metrics_monitoring.parquet",
)


def _course_indexed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` of `frame` indexed by (area, consumer_type, datetime_utc as an hourly Period), sorted."""
    indexed = frame.assign(**{DATETIME: pd.PeriodIndex(frame[DATETIME].dt.tz_convert(None), freq="h")})
    return indexed.set_index(INDEX)[columns].sort_index()


def newest_predictions(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Per series and target hour, the forecast of the newest issue: what the course's monitoring file keeps,
    since each batch's predictions overwrite the cached ones for the same hours."""
    newest = forecasts.sort_values(ISSUED_AT).drop_duplicates([*SERIES_KEY, DATETIME], keep="last")
    return newest.rename(columns={FORECAST: TARGET})


def serving_frames(history: pd.DataFrame, forecast: pd.DataFrame, recent_forecasts: pd.DataFrame, actuals: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The six serving frames.

    `history`: consumption rows of the week up to the newest issue hour; `forecast`: the newest forecast;
    `recent_forecasts`: the forecasts issued in that week; `actuals`: consumption rows over their target hours.
    """
    y = _course_indexed(history, [TARGET])
    predictions = _course_indexed(forecast.rename(columns={FORECAST: TARGET}), [TARGET])
    predictions_monitoring = _course_indexed(newest_predictions(recent_forecasts), [TARGET])
    y_monitoring = _course_indexed(actuals, [TARGET])
    return {
        # The course's X is the feature view's rows without the target: only the index is left.
        "X.parquet": y.drop(columns=[TARGET]),
        "y.parquet": y,
        "predictions.parquet": predictions,
        "y_monitoring.parquet": y_monitoring,
        "predictions_monitoring.parquet": predictions_monitoring,
        "metrics_monitoring.parquet": mape_per_hour(predictions_monitoring, y_monitoring),
    }


def mape_per_hour(predictions: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """MAPE across series for each hour that has both a prediction and an observation, indexed by datetime_utc,
    column `MAPE`, as the course's `monitoring.py: compute` scores with sktime's non-symmetric MAPE, over the
    observations with a relative error by `forecasting.metrics`' rule (zero ones left out; null for an hour
    without any)."""
    paired = predictions.join(observations, how="inner", lsuffix="_predictions", rsuffix="_observations")
    if paired.empty:
        return pd.DataFrame({MAPE: pd.Series(dtype="float64")}, index=pd.PeriodIndex([], freq="h", name=DATETIME))
    relative = paired[has_relative_error(paired[f"{TARGET}_observations"].to_numpy())]
    scores = {
        hour: mean_absolute_percentage_error(
            group[f"{TARGET}_observations"], group[f"{TARGET}_predictions"], symmetric=False
        )
        for hour, group in relative.groupby(level=DATETIME)
    }
    hours = paired.index.get_level_values(DATETIME).unique().sort_values()
    metrics = pd.DataFrame({MAPE: pd.Series(scores, dtype="float64").reindex(hours)})
    metrics.index = pd.PeriodIndex(metrics.index, freq="h", name=DATETIME)
    return metrics


def encode(frames: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """Each frame as the course wrote it: `DataFrame.to_parquet` with pandas' defaults, index kept."""
    encoded = {}
    for name, frame in frames.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        encoded[name] = buffer.getvalue()
    return encoded
