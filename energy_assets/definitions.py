"""The energy_assets code location: the whole graph on one screen."""

from dagster import AssetSelection, Definitions, define_asset_job

from energy_assets.assets.forecasts import energy_forecasts
from energy_assets.assets.ingestion import consumption_raw, energy_consumption_features
from energy_assets.assets.model import forecasting_model
from energy_assets.assets.monitoring import forecast_accuracy, forecast_accuracy_summary, monitoring_automation_sensor
from energy_assets.partitions import hourly_partitions
from energy_assets.resources import build_resources
from energy_assets.schedules import build_hourly_schedule

# consumption_raw -> energy_consumption_features -> forecasting_model -> energy_forecasts
forecast_assets = [consumption_raw, energy_consumption_features, forecasting_model, energy_forecasts]
# energy_forecasts[H] + actuals H+1 ... H+24 -> forecast_accuracy[H] -> forecast_accuracy_summary (rolling window)
monitoring_assets = [forecast_accuracy, forecast_accuracy_summary]

hourly_forecast_job = define_asset_job(
    "hourly_forecast_job",
    selection=AssetSelection.assets(*forecast_assets),
    partitions_def=hourly_partitions,
    description="Raw data -> feature group -> model in effect -> forecasts, for one hour or a range.",
)

defs = Definitions(
    assets=[*forecast_assets, *monitoring_assets],
    jobs=[hourly_forecast_job],
    schedules=[build_hourly_schedule(hourly_forecast_job)],
    sensors=[monitoring_automation_sensor],
    resources=build_resources(),
)
