"""`energy-assets`: run the demo, and read published forecasts from the deployment's bucket."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from dotenv import load_dotenv

from energy_assets import settings
from energy_assets.schema import AREA_CODES, AREA_NAMES
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.forecasts import gather_forecasts, latest_forecast
from energy_assets.timeline import parse_hour_key, to_utc_hour


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the exit status is 0 on success, 1 when the forecasts cannot be given."""
    load_dotenv(Path.cwd() / ".env")  # as `dagster dev` does; variables already set win
    try:
        # Inside: building the parser reads settings, whose errors name the variable.
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (LookupError, OSError, ValueError) as error:
        print(f"energy-assets: error: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each one sets `run`, the function it calls with the parsed arguments."""
    parser = argparse.ArgumentParser(prog="energy-assets", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True)
    _add_latest(subcommands, _forecast_options())
    _add_gather(subcommands, _forecast_options())
    _add_demo(subcommands)
    return parser


def _add_demo(subcommands) -> None:
    demo = subcommands.add_parser(
        "demo", help="run the main job offline: fill the feature group, then the whole graph for a range of hours"
    )
    demo.add_argument("--start", type=_hour, default="2022-12-01T00:00", help="first hour of history (UTC)")
    demo.add_argument("--history-days", type=int, default=28, help="days of raw data and features before the forecasts")
    demo.add_argument("--forecast-hours", type=int, default=24, help="issue hours to train, forecast and publish")
    demo.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    # Imported here so that reading forecasts does not load the whole code location.
    from energy_assets.app.demo import describe_results, run_demo

    last_hour = run_demo(args.start, args.history_days, args.forecast_hours)
    print(describe_results(last_hour))
    return 0


def _forecast_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--area", type=_area, help="price area: DK1, DK2 (or 1, 2); default every area")
    options.add_argument("--consumer-type", type=int, help="DE35 consumer type, e.g. 111; default every type")
    options.add_argument("--output", type=_output_path, help="write to this .parquet or .csv file instead of printing")
    options.add_argument(
        "--prefix",
        default=settings.bucket_prefix(),
        help=f"object prefix in the bucket (default ${settings.BUCKET_PREFIX} or {settings.DEFAULT_BUCKET_PREFIX!r})",
    )
    return options


def _add_latest(subcommands, options: argparse.ArgumentParser) -> None:
    latest = subcommands.add_parser(
        "latest", parents=[options], help="the newest forecast issued at or before an hour"
    )
    latest.add_argument("--at", type=_hour, default=pd.Timestamp.now(tz="UTC"), help="UTC hour (default now)")
    latest.set_defaults(run=_run_latest)


def _add_gather(subcommands, options: argparse.ArgumentParser) -> None:
    gather = subcommands.add_parser("gather", parents=[options], help="every forecast issued in a range of hours")
    gather.add_argument("--from", dest="issued_from", type=_hour, required=True, help="first issue hour (UTC)")
    gather.add_argument("--to", dest="issued_to", type=_hour, required=True, help="last issue hour (UTC), included")
    gather.set_defaults(run=_run_gather)


def _run_latest(args: argparse.Namespace) -> int:
    forecast = latest_forecast(
        deployment_bucket(), args.at, area=args.area, consumer_type=args.consumer_type, prefix=args.prefix
    )
    return _emit(forecast, args.output)


def _run_gather(args: argparse.Namespace) -> int:
    forecasts = gather_forecasts(
        deployment_bucket(),
        args.issued_from,
        args.issued_to,
        area=args.area,
        consumer_type=args.consumer_type,
        prefix=args.prefix,
    )
    if forecasts.empty:
        raise LookupError(f"no forecast issued from {args.issued_from} to {args.issued_to} for the series asked")
    return _emit(forecasts, args.output)


def _emit(forecasts: pd.DataFrame, output: Path | None) -> int:
    if output is None:
        print(forecasts.to_string(index=False))
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".parquet":
        forecasts.to_parquet(output, index=False)
    else:
        forecasts.to_csv(output, index=False)
    print(f"wrote {len(forecasts)} rows to {output}", file=sys.stderr)
    return 0


def _hour(value: str) -> pd.Timestamp:
    """A UTC time from ISO text or a partition key such as 2023-01-14-23:00."""
    try:
        return parse_hour_key(value)
    except ValueError:
        pass
    try:
        return to_utc_hour(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a time, e.g. 2023-01-14T23:00 or 2023-01-14-23:00") from None


def _area(value: str) -> int:
    if value.upper() in AREA_CODES:
        return AREA_CODES[value.upper()]
    if value.isdigit() and int(value) in AREA_NAMES:
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r} is not a price area: one of {', '.join(AREA_CODES)} or {sorted(AREA_NAMES)}")


def _output_path(value: str) -> Path:
    path = Path(value)
    if path.suffix not in (".parquet", ".csv"):
        raise argparse.ArgumentTypeError(f"{value!r}: the output file must end with .parquet or .csv")
    return path


if __name__ == "__main__":
    sys.exit(main())
