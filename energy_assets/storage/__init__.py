"""Bucket storage without Dagster: the bucket protocol, object layout and the readers of published forecasts."""
