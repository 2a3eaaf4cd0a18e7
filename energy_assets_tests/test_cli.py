"""The `energy-assets` command on forecasts published into the local deployment's bucket."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from energy_assets.app.cli import main
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.storage.buckets import LocalBucket
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.test_forecast_store import publish


@pytest.fixture
def published(isolated_state) -> LocalBucket:
    """Forecasts in the bucket that the local deployment reads (ENERGY_ASSETS_HOME/bucket)."""
    bucket = LocalBucket(root_dir=str(isolated_state / "bucket"))
    publish(bucket)
    return bucket


def test_latest_prints_the_selected_series(published, capsys):
    assert main(["latest", "--at", "2023-01-14-22:00", "--area", "DK2", "--consumer-type", "111"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "area", "consumer_type", "issued_at", "datetime_utc", "horizon", "energy_consumption_forecast", "model_version"
    ]
    assert len(lines) == 1 + 24
    assert lines[1].split()[:3] == ["2", "111", "2023-01-14"] and "21:00:00+00:00" in lines[1]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_gather_writes_the_range_to_a_file(published, tmp_path, suffix, capsys):
    output = tmp_path / "out" / f"forecasts{suffix}"
    assert main(["gather", "--from", "2023-01-14T20:00", "--to", "2023-01-14 21:00", "--output", str(output)]) == 0
    assert capsys.readouterr().err.strip() == f"wrote 96 rows to {output}"
    expected = gather_forecasts(published, "2023-01-14 20:00", "2023-01-14 21:00")
    if suffix == ".csv":
        written = pd.read_csv(output, parse_dates=["issued_at", "datetime_utc"]).astype(expected.dtypes.to_dict())
    else:
        written = pd.read_parquet(output)
    pd.testing.assert_frame_equal(written, expected)


def test_nothing_to_show_exits_1_with_the_reason(published, capsys):
    assert main(["gather", "--from", "2023-01-13-00:00", "--to", "2023-01-13-05:00"]) == 1
    assert "no forecast issued from 2023-01-13 00:00:00+00:00 to 2023-01-13 05:00:00+00:00" in capsys.readouterr().err
    assert main(["latest", "--at", "2020-01-01"]) == 1
    assert "no forecast issued at or before 2020-01-01" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["latest", "--area", "DK9"], "'DK9' is not a price area"),
        (["latest", "--at", "yesterday-ish"], "'yesterday-ish' is not a time"),
        (["gather", "--from", "2023-01-14"], "the following arguments are required: --to"),
        (["latest", "--output", "forecast.xlsx"], "must end with .parquet or .csv"),
    ],
)
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_runs_as_a_module(published, isolated_state):
    environment = {**os.environ, "ENERGY_ASSETS_HOME": str(isolated_state)}
    done = subprocess.run(
        [sys.executable, "-m", "energy_assets.app.cli", "latest", "--at", "2023-01-15", "--area", "1", "--consumer-type", "111"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 + 24 and "23:00:00+00:00" in done.stdout


def test_a_prefix_leaving_the_bucket_is_refused_without_listing_outside(published, isolated_state, capsys):
    (isolated_state / "secret-name.txt").write_text("outside the bucket")
    assert main(["gather", "--from", "2023-01-14T20:00", "--to", "2023-01-14T21:00", "--prefix", "../.."]) == 1
    captured = capsys.readouterr()
    assert "invalid prefix '../../energy_forecasts/'" in captured.err
    assert "secret-name" not in captured.out + captured.err
