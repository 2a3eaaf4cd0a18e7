"""Forecast accuracy once actuals are in, rolling summaries and their figures."""
