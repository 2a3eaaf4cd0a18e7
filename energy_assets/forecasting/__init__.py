"""Forecasting domain code: the global forecaster, baselines, evaluation, training and plots."""
