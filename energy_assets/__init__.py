"""Dagster code location forecasting Danish hourly electricity consumption per area and DE35 consumer type."""
