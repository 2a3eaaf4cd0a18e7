"""A one-day hole in one series of the real extract, through real Dagster runs: the other series as before.

Materializes the real extract (file source) into a fresh local state, then the model and forecasts of
ISSUE hours with the whole graph; removes one series' rows of one UTC day from the feature group and
materializes the forecasts of the same hours again, with the same registered models. Prints whether every
other series' stored forecasts are unchanged (the bucket's objects read back and compared), what the holed
series got per issue hour (refused, or flagged with its count), the `complete_history` check, and MAPE
against the extract's actuals; beside it, what the forecaster's filled history gives for the refused hours
(what the forecasts were before the rule). With --retrain, the graph is run again from scratch with the
hole in place (every model trained on it): the other series' MAPE then, against the clean run's.
Every target is before the extract's held-out last 7 days.

Run: PYTHONPATH=. python benchmarks/history_gap_run.py [--series 1 111] [--day 2023-01-04] [--retrain]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from energy_assets.timeline import HOUR
from history_gaps import default_data  # the sibling benchmark: where the real extract is

FIRST_ISSUE, LAST_ISSUE = pd.Timestamp("2023-01-04 00:00", tz="UTC"), pd.Timestamp("2023-01-06 23:00", tz="UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--series", type=int, nargs=2, default=(1, 111), metavar=("AREA", "CONSUMER_TYPE"))
    parser.add_argument("--day", default="2023-01-04", help="UTC day the series loses")
    parser.add_argument("--retrain", action="store_true", help="also run the graph from scratch with the hole")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"real extract not found at {args.data}")
    # Each run's local state in a folder removed at exit.
    states = [tempfile.TemporaryDirectory(prefix="history_gap_run_") for _ in range(2)]
    os.environ.update(
        {
            "ENERGY_ASSETS_SOURCE": "file",
            "ENERGY_ASSETS_SOURCE_PATH": str(args.data),
            "ENERGY_ASSETS_HOME": states[0].name,
        }
    )
    # Imported once the environment names the source: the partitions follow the snapshot.
    import pyarrow.parquet as pq
    from dagster import AssetSelection, DagsterInstance

    from energy_assets import schema
    from energy_assets.app.demo import QUIET_RUN_CONFIG, materialize_range
    from energy_assets.definitions import deployment_resources
    from energy_assets.forecasting.history_gaps import MAX_FILLED_HOURS
    from energy_assets.forecasting.model import forecast_frame
    from energy_assets.forecasting.panel import Panel
    from energy_assets.forecasting.training import load_forecaster
    from energy_assets.sources.files import read_snapshot
    from energy_assets.storage.buckets import deployment_bucket
    from energy_assets.storage.forecasts import gather_forecasts

    series, day = tuple(args.series), pd.Timestamp(args.day, tz="UTC")
    actuals = read_snapshot(args.data)
    first_hour = actuals[schema.DATETIME].min()
    raw_and_features = AssetSelection.assets("consumption_raw", "energy_consumption_features")
    model_and_forecasts = AssetSelection.assets("forecasting_model", "energy_forecasts")

    def run(selection, first, last, instance):
        return materialize_range(selection, first, last, instance, run_config=QUIET_RUN_CONFIG)

    def remove_series_day() -> None:
        home = Path(os.environ["ENERGY_ASSETS_HOME"])
        path = home / "feature_store" / schema.FEATURE_GROUP_NAME / "v1" / f"{day:%Y-%m-%d}.parquet"
        table = pq.read_table(path)
        pq.write_table(table.filter(~is_holed(table.to_pandas()).to_numpy()), path)

    def is_holed(frame: pd.DataFrame) -> pd.Series:
        return (frame[schema.AREA] == series[0]) & (frame[schema.CONSUMER_TYPE] == series[1])

    def mape(frame: pd.DataFrame, forecast: str = schema.FORECAST) -> float:
        scored = frame.merge(actuals, on=[*schema.SERIES_KEY, schema.DATETIME])
        return float((np.abs(scored[forecast] - scored[schema.TARGET]) / scored[schema.TARGET]).mean())

    def check(result, name="complete_history"):
        return next(
            e.asset_check_evaluation_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == name
        )

    print(f"extract {args.data.name}; issue hours {FIRST_ISSUE:%Y-%m-%d %H:%M} .. {LAST_ISSUE:%Y-%m-%d %H:%M}; "
          f"series {series} loses {day:%Y-%m-%d}; MAX_FILLED_HOURS = {MAX_FILLED_HOURS}")
    instance = DagsterInstance.ephemeral()
    run(raw_and_features, first_hour, LAST_ISSUE, instance)
    clean_run = run(model_and_forecasts, FIRST_ISSUE, LAST_ISSUE, instance)
    clean = gather_forecasts(deployment_bucket(), FIRST_ISSUE, LAST_ISSUE)
    print(f"clean run: {len(clean)} rows, check complete_history passed: {check(clean_run).passed}")

    remove_series_day()
    holed_run = run(AssetSelection.assets("energy_forecasts"), FIRST_ISSUE, LAST_ISSUE, instance)
    holed = gather_forecasts(deployment_bucket(), FIRST_ISSUE, LAST_ISSUE)
    others_same = clean[~is_holed(clean)].reset_index(drop=True).equals(holed[~is_holed(holed)].reset_index(drop=True))
    print(f"\nwith the hole: {len(holed)} rows; the other {clean[schema.SERIES_KEY].drop_duplicates().shape[0] - 1} "
          f"series' stored forecasts identical to the clean run's: {others_same}")
    counts = holed[is_holed(holed)].groupby(schema.ISSUED_AT)[schema.HISTORY_HOURS_MISSING].first()
    origins = pd.date_range(FIRST_ISSUE, LAST_ISSUE, freq="h")
    refused = origins.difference(counts.index)
    flagged = counts[counts > 0]
    print(f"series {series}: refused at {len(refused)} issue hours, flagged at {len(flagged)} "
          f"(counts {flagged.tolist()}), as before at {int((counts == 0).sum())}")
    evaluation = check(holed_run)
    print(f"check complete_history: passed {evaluation.passed}, severity {evaluation.severity.value}, "
          f"{evaluation.description}\n{evaluation.metadata['series'].value}")

    was = clean[is_holed(clean)]
    print(f"\nMAPE of series {series}, clean run: {mape(was):.4f} over every issue hour; "
          f"{mape(was[was[schema.ISSUED_AT].isin(refused)]):.4f} over the refused hours")
    if len(flagged):
        print(f"  flagged hours: {mape(holed[is_holed(holed) & holed[schema.ISSUED_AT].isin(flagged.index)]):.4f} "
              f"(clean {mape(was[was[schema.ISSUED_AT].isin(flagged.index)]):.4f})")
    # What the refused hours would have got from the filled history (the forecaster fills; the rule refuses).
    registry = deployment_resources()["model_registry"]
    history = deployment_resources()["feature_store"].read(first_hour, LAST_ISSUE + HOUR)
    filled = []
    for model in registry.versions(schema.MODEL_NAME):
        in_effect = [o for o in refused if o >= model.data_cutoff and o < model.data_cutoff + 24 * HOUR]
        if in_effect:
            forecaster, panel = load_forecaster(registry.download(model)), Panel.from_long(history)
            frame = forecast_frame(forecaster, panel, pd.DatetimeIndex(in_effect), 24, (), schema.DATETIME)
            filled.append(frame[is_holed(frame)].rename(columns={schema.TARGET: schema.FORECAST}))
    filled = pd.concat(filled)
    print(f"  the refused hours from the filled history: MAPE {mape(filled):.4f}, worst issue hour "
          f"{filled.groupby(schema.ISSUED_AT).apply(mape, include_groups=False).max():.4f}")

    if args.retrain:
        os.environ["ENERGY_ASSETS_HOME"] = states[1].name
        instance = DagsterInstance.ephemeral()
        run(raw_and_features, first_hour, LAST_ISSUE, instance)
        remove_series_day()
        retrained_run = run(model_and_forecasts, FIRST_ISSUE, LAST_ISSUE, instance)
        retrained = gather_forecasts(deployment_bucket(), FIRST_ISSUE, LAST_ISSUE)
        models = deployment_resources()["model_registry"].versions(schema.MODEL_NAME)
        left_out = [model.extra.get("training_rows_left_out") for model in models]
        print(f"\nretrained with the hole: models {[m.version for m in models]} left out {left_out} training rows; "
              f"check passed {check(retrained_run).passed}")
        print(f"MAPE of the other series: clean run {mape(clean[~is_holed(clean)]):.4f}, "
              f"models trained with the hole {mape(retrained[~is_holed(retrained)]):.4f}")


if __name__ == "__main__":
    main()
