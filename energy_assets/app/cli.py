"""`energy-assets`: the demo and its catch-up, the readers of the bucket's forecasts, the layout migration."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from dotenv import load_dotenv

from energy_assets import settings
from energy_assets.app.forecast_output import FORMATS, MACHINE_FORMATS, emit, format_of
from energy_assets.schema import AREA, AREA_CODES, AREA_NAMES, CONSUMER_TYPE, ISSUED_AT
from energy_assets.storage.buckets import Bucket, deployment_bucket
from energy_assets.storage.forecasts import (
    FORECASTS_ASSET,
    NoSuchSeriesError,
    SkippedHour,
    gather_forecasts,
    latest_forecast,
    previous_issue_hour,
    select_series,
    series_missing_since_previous_hour,
)
from energy_assets.storage.objects import asset_folder
from energy_assets.timeline import parse_time


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
    _add_catch_up(subcommands)
    _add_migrate_layout(subcommands)
    _add_check_deployment(subcommands)
    return parser


def _add_check_deployment(subcommands) -> None:
    check = subcommands.add_parser(
        "check-deployment",
        help="verify what this process needs of the bucket (and, in prod, of Hopsworks) against the real services; "
        "exit 1 naming what is missing",
    )
    check.set_defaults(run=_run_check_deployment)


def _run_check_deployment(args: argparse.Namespace) -> int:
    from energy_assets.app.deployment_check import check_deployment

    print(f"{settings.DEPLOYMENT}={settings.deployment_name()}: checking with this process's settings and credentials")
    missing = [finding for finding in check_deployment(print) if not finding.ok]
    print(f"{len(missing)} missing" if missing else "everything this deployment needs is there")
    return 1 if missing else 0


def _add_demo(subcommands) -> None:
    demo = subcommands.add_parser(
        "demo",
        help="run the main job offline: the newest published hours through the whole graph, scored against their actuals",
    )
    demo.add_argument("--history-days", type=int, default=28, help="days of raw data and features before the forecasts")
    demo.add_argument(
        "--scored-hours", type=int, default=24,
        help="issue hours to forecast and score; the 24 newer ones are forecast and await their actuals",
    )
    demo.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    demo.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    # Imported here so that reading forecasts does not load the whole code location.
    from energy_assets.app.demo import describe_results, run_demo

    newest = run_demo(args.history_days, args.scored_hours, verbose=args.verbose)
    print(describe_results(newest))
    return 0


def _add_catch_up(subcommands) -> None:
    catch_up = subcommands.add_parser(
        "catch-up",
        help="after the demo: run hourly_forecast_job over every hour published since the newest forecast, score the "
        "hours whose actuals came in, refresh the summary and serving files",
    )
    catch_up.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    catch_up.set_defaults(run=_run_catch_up)


def _run_catch_up(args: argparse.Namespace) -> int:
    from energy_assets.app.catch_up import catch_up

    newest = catch_up(verbose=args.verbose)
    if newest is not None:
        print(f"energy_forecasts is materialized up to {_shown(newest)}; `energy-assets latest` prints that forecast")
    return 0


def _forecast_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--area", type=_area, help=f"price area: {_AREAS}; default every area")
    options.add_argument("--consumer-type", type=int, help="DE35 consumer type, e.g. 111; default every type")
    options.add_argument(
        "--format", choices=FORMATS,
        help="table (default: rounded, for reading) or csv, json, parquet (every column unrounded, for programs)",
    )
    options.add_argument(
        "--output", type=_output_path,
        help=f"write to this file instead of printing: {', '.join(f'.{f}' for f in MACHINE_FORMATS)}, its suffix the format",
    )
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
    skipped: list[SkippedHour] = []
    bucket = deployment_bucket()
    try:
        forecast = latest_forecast(
            bucket,
            args.at,
            area=args.area,
            consumer_type=args.consumer_type,
            prefix=args.prefix,
            skipped=skipped,
        )
    except NoSuchSeriesError as error:
        had = series_missing_since_previous_hour(
            bucket, error.issued_at, pd.DataFrame({AREA: [], CONSUMER_TYPE: []}), error.area, error.consumer_type, args.prefix
        )
        if had.empty:
            raise LookupError(_no_such_series(error)) from None
        previous = previous_issue_hour(error.issued_at)
        raise LookupError(
            f"the forecast issued at {_shown(error.issued_at)} has no series with {_asked(error.area, error.consumer_type)}, "
            f"while the one issued at {_shown(previous)} has {_series_names(had)}: {_WHY_ABSENT}; "
            f"--at {previous:%Y-%m-%d-%H:%M} shows that earlier forecast"
        ) from None
    except LookupError:
        _report_skipped(skipped)
        raise LookupError(
            f"no usable forecast issued at or before --at {_shown(args.at)} in {_searched(args.prefix)}"
        ) from None
    _report_skipped(skipped)
    issued_at = forecast[ISSUED_AT].iloc[0]
    absent = series_missing_since_previous_hour(bucket, issued_at, forecast, args.area, args.consumer_type, args.prefix)
    if not absent.empty:
        print(
            f"energy-assets: {len(absent)} series forecast at {_shown(previous_issue_hour(issued_at))} have no forecast "
            f"issued at {_shown(issued_at)}: {_series_names(absent)} ({_WHY_ABSENT})",
            file=sys.stderr,
        )
    return _emit(forecast, args)


# Why a series forecast the hour before has no rows at an issue hour: the gap rule, or the series ended.
_WHY_ABSENT = (
    "a series whose history lacks more hours than its forecast may fill gets no rows at that hour (the complete_history "
    "check of energy_forecasts names it and the hours missing), and a series no longer published gets none either"
)


def _series_names(series: pd.DataFrame) -> str:
    return ", ".join(
        f"{AREA_NAMES.get(int(area), area)} {int(consumer_type)}"
        for area, consumer_type in series[[AREA, CONSUMER_TYPE]].itertuples(index=False)
    )


def _run_gather(args: argparse.Namespace) -> int:
    if args.issued_from > args.issued_to:
        raise ValueError(f"--from {_shown(args.issued_from)} is after --to {_shown(args.issued_to)}")
    skipped: list[SkippedHour] = []
    gathered = gather_forecasts(
        deployment_bucket(), args.issued_from, args.issued_to, prefix=args.prefix, skipped=skipped
    )
    _report_skipped(skipped)
    span = f"from --from {_shown(args.issued_from)} to --to {_shown(args.issued_to)}"
    if gathered.empty:
        raise LookupError(f"no usable forecast issued {span} in {_searched(args.prefix)}")
    forecasts = select_series(gathered, args.area, args.consumer_type)
    if forecasts.empty:
        raise LookupError(
            f"no forecast issued {span} has a series with {_asked(args.area, args.consumer_type)}; "
            + _no_such_series_in(gathered, args.area)
        )
    return _emit(forecasts, args)


def _searched(prefix: str) -> str:
    """The forecasts' folder in the deployment's bucket; for the local one, where its state directory comes from."""
    bucket: Bucket = deployment_bucket()
    folder = bucket.uri(asset_folder(prefix, [FORECASTS_ASSET]))
    if settings.deployment_name() != "local" or settings.text(settings.HOME):
        return folder
    return (
        f"{folder} (the local bucket under ./.energy_assets: {settings.HOME} is not set; set it to the state "
        "directory `energy-assets demo` printed, or run from the folder the demo ran in)"
    )


def _shown(hour: pd.Timestamp) -> str:
    return f"{hour:%Y-%m-%d %H:%M} UTC"


def _asked(area: int | None, consumer_type: int | None) -> str:
    flags = [f"--area {AREA_NAMES.get(area, area)}" if area is not None else None,
             f"--consumer-type {consumer_type}" if consumer_type is not None else None]
    return " ".join(flag for flag in flags if flag)


def _offered(areas: list[int], consumer_types: list[int], area: int | None) -> str:
    """The --area values the forecasts read have, and their --consumer-type values (in the area asked, if it is one)."""
    where = f" in {AREA_NAMES.get(area, area)}" if area in areas else ""
    return (
        f"--area can be {', '.join(AREA_NAMES.get(code, str(code)) for code in areas)}; "
        f"--consumer-type can be {', '.join(map(str, consumer_types))}{where}"
    )


def _no_such_series_in(forecasts: pd.DataFrame, area: int | None) -> str:
    areas = sorted(int(code) for code in forecasts["area"].unique())
    in_area = forecasts[forecasts["area"] == area] if area in areas else forecasts
    return _offered(areas, sorted(int(code) for code in in_area["consumer_type"].unique()), area)


def _no_such_series(error: NoSuchSeriesError) -> str:
    return (
        f"the forecast issued at {_shown(error.issued_at)} ({error.uri}) has no series with "
        f"{_asked(error.area, error.consumer_type)}; {_offered(error.areas, error.consumer_types, error.area)}"
    )


def _report_skipped(skipped: list[SkippedHour]) -> None:
    if skipped:
        lines = "\n  ".join(str(hour) for hour in skipped)
        print(f"energy-assets: skipped {len(skipped)} issue hour(s) whose object is unusable:\n  {lines}", file=sys.stderr)


def _emit(forecasts: pd.DataFrame, args: argparse.Namespace) -> int:
    emit(forecasts, format_of(args.format, args.output), args.output)
    return 0


def _add_migrate_layout(subcommands) -> None:
    migrate = subcommands.add_parser(
        "migrate-layout",
        help="move objects of the old layout (<asset>/<YYYY-MM-DD-HH:MM>.parquet) to the hive layout; a dry run "
        "unless --apply",
    )
    migrate.add_argument("--apply", action="store_true", help="copy, verify, then delete; without it only print the plan")
    migrate.add_argument(
        "--prefix",
        default=settings.bucket_prefix(),
        help=f"object prefix in the bucket (default ${settings.BUCKET_PREFIX} or {settings.DEFAULT_BUCKET_PREFIX!r})",
    )
    migrate.set_defaults(run=_run_migrate_layout)


def _run_migrate_layout(args: argparse.Namespace) -> int:
    from energy_assets.storage.migration import CONFLICT, apply_move, planned_moves

    bucket = deployment_bucket()
    moves = planned_moves(bucket, args.prefix)
    conflicts = [move for move in moves if move.action == CONFLICT]
    for move in moves:
        if move.action == CONFLICT:
            print(f"conflict: {bucket.uri(move.new_key)} already holds other bytes than {bucket.uri(move.old_key)}; "
                  "both kept")
        elif args.apply:
            apply_move(bucket, move)
            print(f"moved {bucket.uri(move.old_key)} -> {bucket.uri(move.new_key)}")
        else:
            print(f"would {move.action} {bucket.uri(move.old_key)} -> {bucket.uri(move.new_key)}")
    done = len(moves) - len(conflicts)
    if not moves:
        print(f"nothing to migrate under {bucket.uri(args.prefix.rstrip('/') + '/')}")
    elif args.apply:
        print(f"migrated {done} object(s); {len(conflicts)} conflict(s)")
    else:
        print(f"dry run: {done} object(s) to migrate, {len(conflicts)} conflict(s); run again with --apply")
    return 1 if conflicts else 0


def _hour(value: str) -> pd.Timestamp:
    """A UTC time from ISO text or a partition key such as 2023-01-14-23:00."""
    try:
        return parse_time(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a time, e.g. 2023-01-14T23:00 or 2023-01-14-23:00") from None


# The --area values, in --help and in the error for any other value alike.
_AREAS = f"{', '.join(AREA_CODES)} (or their codes {', '.join(str(code) for code in AREA_CODES.values())})"


def _area(value: str) -> int:
    if value.upper() in AREA_CODES:
        return AREA_CODES[value.upper()]
    if value.isdigit() and int(value) in AREA_NAMES:
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r} is not a price area: one of {_AREAS}")


def _output_path(value: str) -> Path:
    path = Path(value)
    if path.suffix.lstrip(".") not in MACHINE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{value!r}: the output file must end with {' or '.join(f'.{f}' for f in MACHINE_FORMATS)}"
        )
    return path


if __name__ == "__main__":
    sys.exit(main())
