"""The snapshot-file source: the real extract, both layouts in CSV and parquet, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from energy_assets.schema import AREA, CONSUMER_TYPE, CONSUMPTION_DTYPES, DATETIME, SERIES_KEY, TARGET
from energy_assets.sources.errors import EmptySourceError, SourceConfigurationError, SourceFormatError
from energy_assets.sources.files import read_snapshot, read_window
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets_tests.conftest import REAL_DATA_FIRST_HOUR, REAL_DATA_LAST_HOUR, REAL_DATA_PARQUET
from energy_assets_tests.edsapi_server import de35_records
from energy_assets_tests.test_partitions import without_root_file_access

START, END = pd.Timestamp("2023-01-01T22:00Z"), pd.Timestamp("2023-01-02T01:00Z")


@pytest.fixture
def rows() -> pd.DataFrame:
    return synthetic_consumption(START, END)


@pytest.fixture
def dataset_layout(rows) -> pd.DataFrame:
    """The rows with the dataset's own columns, as its CSV download has them."""
    return pd.DataFrame(de35_records(rows))


def _write_semicolon_csv(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, sep=";", index=False)
    return path.read_text()


def test_real_extract_csv_and_parquet_give_the_same_complete_frame(real_data_csv):
    from_csv, from_parquet = read_snapshot(real_data_csv), read_snapshot(REAL_DATA_PARQUET)
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    assert from_csv.dtypes.astype(str).to_dict() == CONSUMPTION_DTYPES
    assert len(from_csv) == 72 * 76
    assert len(from_csv[SERIES_KEY].drop_duplicates()) == 76
    assert from_csv[DATETIME].nunique() == 72
    assert from_csv[DATETIME].min() == pd.Timestamp(REAL_DATA_FIRST_HOUR)
    assert from_csv[DATETIME].max() == pd.Timestamp(REAL_DATA_LAST_HOUR)
    assert set(from_csv[AREA]) == {1, 2}


def test_real_extract_window_is_half_open_and_sorted(real_data_csv):
    window = read_window(real_data_csv, "2023-01-03T00:00Z", "2023-01-03T03:00Z")
    assert len(window) == 3 * 76
    assert window[DATETIME].max() == pd.Timestamp("2023-01-03T02:00Z")
    assert window.equals(window.sort_values([DATETIME, AREA, CONSUMER_TYPE]).reset_index(drop=True))


@pytest.mark.parametrize("write", ["semicolon_csv", "comma_csv", "parquet"])
def test_dataset_layout_in_every_format(tmp_path, rows, dataset_layout, write):
    path = tmp_path / ("snapshot.parquet" if write == "parquet" else "snapshot.csv")
    if write == "parquet":
        dataset_layout.to_parquet(path)
    else:
        dataset_layout.to_csv(path, sep=";" if write == "semicolon_csv" else ",", index=False)
    pd.testing.assert_frame_equal(read_window(path, START, END), rows)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_canonical_layout(tmp_path, rows, suffix):
    path = tmp_path / f"canonical.{suffix}"
    rows.to_parquet(path) if suffix == "parquet" else rows.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_snapshot(path), rows)


def test_window_cut_and_unsorted_input_sorted(tmp_path, rows, dataset_layout):
    path = tmp_path / "shuffled.csv"
    dataset_layout.sample(frac=1, random_state=3).to_csv(path, sep=";", index=False)
    later = read_window(path, START + pd.Timedelta(hours=1), END)
    pd.testing.assert_frame_equal(later, rows[rows[DATETIME] >= START + pd.Timedelta(hours=1)].reset_index(drop=True))


def test_duplicates_negatives_and_unknown_codes_pass_through(tmp_path, dataset_layout):
    odd = dataset_layout.head(3).copy()
    odd.loc[1, "TotalCon"] = -5.0
    odd.loc[2, "ConsumerType_DE35"] = "777"
    path = tmp_path / "odd.csv"
    pd.concat([odd, odd.head(1)]).to_csv(path, sep=";", index=False)
    frame = read_snapshot(path)
    assert len(frame) == 4
    assert frame.duplicated().sum() == 1
    assert -5.0 in set(frame[TARGET]) and 777 in set(frame[CONSUMER_TYPE])


def test_ragged_csv_names_the_line(tmp_path, dataset_layout):
    path = tmp_path / "ragged.csv"
    lines = _write_semicolon_csv(dataset_layout.head(10), path).splitlines(keepends=True)
    # Line 6 lost its end inside the HourDK field; the lines after it are whole.
    path.write_text("".join(lines[:5]) + lines[5][:25] + "\n" + "".join(lines[6:]))
    with pytest.raises(SourceFormatError, match=r"malformed CSV at line 6 \(\d fields, header has 5\)"):
        read_snapshot(path)


@pytest.mark.parametrize("cut", [3, 25])
def test_a_csv_cut_inside_its_last_line_is_refused_naming_it(tmp_path, dataset_layout, cut):
    path = tmp_path / "truncated.csv"
    text = _write_semicolon_csv(dataset_layout.head(10), path)
    # `cut` characters lost: inside the last TotalCon (501535 read as 501), or deeper into the line.
    path.write_text(text[: -1 - cut])
    with pytest.raises(SourceFormatError, match=r"truncated.csv: truncated: line 11, the last, does not end with a line break"):
        read_snapshot(path)


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_an_infinite_total_in_parquet_is_refused_naming_the_record(tmp_path, dataset_layout, value):
    bad = dataset_layout.head(6)
    bad.loc[4, "TotalCon"] = value
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(SourceFormatError, match=r"bad.parquet: 1 infinite value\(s\) in column 'TotalCon' at records 4"):
        read_snapshot(tmp_path / "bad.parquet")


def test_a_boolean_total_in_parquet_is_refused_not_stored_as_one(tmp_path, dataset_layout):
    bad = dataset_layout.head(3).assign(TotalCon=[True, False, True])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(
        SourceFormatError,
        match=r"bad.parquet: 3 boolean value\(s\) where a number belongs in column 'TotalCon' at records 0, 1, 2",
    ):
        read_snapshot(tmp_path / "bad.parquet")


def test_1e400_in_a_csv_is_refused_as_infinite_naming_the_line(tmp_path, dataset_layout):
    bad = dataset_layout.head(5).astype({"TotalCon": object})
    bad.loc[2, "TotalCon"] = "1e400"
    bad.to_csv(tmp_path / "bad.csv", sep=";", index=False)
    with pytest.raises(SourceFormatError, match=r"1 infinite value\(s\) in column 'TotalCon' at lines 4: \['1e400'\]"):
        read_snapshot(tmp_path / "bad.csv")


def test_an_empty_total_is_kept_as_missing_for_the_no_nulls_check(tmp_path, dataset_layout):
    bad = dataset_layout.head(5).astype({"TotalCon": object})
    bad.loc[2, "TotalCon"] = None
    bad.to_csv(tmp_path / "bad.csv", sep=";", index=False)
    assert read_snapshot(tmp_path / "bad.csv")[TARGET].isna().tolist() == [False, False, True, False, False]


@pytest.mark.parametrize(
    "column, row, value, message",
    [
        ("TotalCon", 3, "12,5x", r"non-numeric value\(s\) in column 'TotalCon' at lines 5: \['12,5x'\]"),
        ("HourUTC", 0, "yesterday", r"unparseable timestamp\(s\) in column 'HourUTC' at lines 2"),
        ("ConsumerType_DE35", 2, None, r"empty value\(s\) in column 'ConsumerType_DE35' at lines 4"),
        ("ConsumerType_DE35", 1, "11.5", r"not int32 integers in column 'ConsumerType_DE35' at lines 3"),
        ("PriceArea", 1, "DK3", r"unknown PriceArea value\(s\) \['DK3'\] at lines 3"),
    ],
)
def test_bad_cell_is_named_with_its_line(tmp_path, dataset_layout, column, row, value, message):
    bad = dataset_layout.head(5).astype({column: object})
    bad.loc[row, column] = value
    bad.to_csv(tmp_path / "bad.csv", sep=";", index=False)
    with pytest.raises(SourceFormatError, match=message):
        read_snapshot(tmp_path / "bad.csv")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_missing_column_is_named(tmp_path, dataset_layout, suffix):
    path = tmp_path / f"no_total.{suffix}"
    partial = dataset_layout.drop(columns=["TotalCon"])
    partial.to_parquet(path) if suffix == "parquet" else partial.to_csv(path, sep=";", index=False)
    with pytest.raises(SourceFormatError, match=r"missing \['TotalCon'\] for the dataset layout"):
        read_snapshot(path)


def test_missing_empty_and_non_parquet_files(tmp_path):
    with pytest.raises(SourceConfigurationError, match="snapshot file not found: .*nowhere.csv"):
        read_snapshot(tmp_path / "nowhere.csv")
    with pytest.raises(SourceConfigurationError, match=f"snapshot path {tmp_path} is a folder, not a file"):
        read_snapshot(tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceFormatError, match="empty file"):
        read_snapshot(tmp_path / "empty.csv")
    (tmp_path / "fake.parquet").write_text("HourUTC;PriceArea\n")
    with pytest.raises(SourceFormatError, match="not a readable parquet file"):
        read_snapshot(tmp_path / "fake.parquet")


def test_window_outside_the_snapshot_is_an_empty_source_error(tmp_path, dataset_layout):
    path = tmp_path / "snapshot.csv"
    dataset_layout.to_csv(path, sep=";", index=False)
    with pytest.raises(EmptySourceError, match=r"holds no rows for the window \[2024-01-01 00:00:00\+00:00"):
        read_window(path, "2024-01-01T00:00Z", "2024-01-02T00:00Z")


def test_an_offset_on_one_hour_does_not_shift_the_hours_after_it(tmp_path, rows):
    # pandas' vectorized ISO 8601 parse reads every offset-less value after the first offset in that offset.
    text = rows.astype({DATETIME: str}).assign(**{DATETIME: rows[DATETIME].dt.strftime("%Y-%m-%dT%H:%M:%S")})
    first_hour = text[DATETIME] == "2023-01-01T22:00:00"
    text.loc[first_hour, DATETIME] = "2023-01-01T23:00:00+01:00"  # the same instant, written in Danish time
    text.to_csv(tmp_path / "offsets.csv", index=False)
    pd.testing.assert_frame_equal(read_snapshot(tmp_path / "offsets.csv"), rows)


@pytest.mark.parametrize(
    ("hour_utc", "hour_dk", "quoted"),
    [
        # An offset the HourDK beside it contradicts: the value would be stored an hour early.
        ("2023-01-01T23:00:00+01:00", "2023-01-02T00:00:00", "HourUTC '2023-01-01T23:00:00\\+01:00' \\(read as 2023-01-01 22:00 UTC"),
        ("2023-01-01T23:00:00", "2023-01-01T23:00:00", "HourUTC '2023-01-01T23:00:00' \\(read as 2023-01-01 23:00 UTC, 2023-01-02 00:00 in Denmark\\) vs HourDK '2023-01-01T23:00:00'"),
        ("2023-01-01T23:00:00", "2023-01-02T00:00:00+02:00", "vs HourDK '2023-01-02T00:00:00\\+02:00'"),
    ],
    ids=["offset_on_hour_utc", "hour_dk_equal_to_utc", "hour_dk_with_a_wrong_offset"],
)
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_an_hour_utc_that_disagrees_with_its_hour_dk_is_refused_naming_the_line(
    tmp_path, dataset_layout, hour_utc, hour_dk, quoted, suffix
):
    bad = dataset_layout.copy()
    row = int(bad.index[bad["HourUTC"] == "2023-01-01T23:00:00"][3])
    bad.loc[row, ["HourUTC", "HourDK"]] = [hour_utc, hour_dk]
    path = tmp_path / f"disagreeing.{suffix}"
    bad.to_parquet(path) if suffix == "parquet" else bad.to_csv(path, sep=";", index=False)
    where = f"lines {row + 2}" if suffix == "csv" else f"records {row}"
    with pytest.raises(SourceFormatError, match=f"1 row\\(s\\) whose HourUTC and HourDK disagree .* at {where}: .*{quoted}"):
        read_snapshot(path)


@pytest.mark.parametrize("first", ["2023-03-25T22:00Z", "2023-10-28T22:00Z"], ids=["spring_forward", "fall_back"])
def test_hour_dk_follows_the_danish_offset_of_its_date_across_dst(tmp_path, first):
    rows = synthetic_consumption(pd.Timestamp(first), pd.Timestamp(first) + pd.Timedelta(hours=6))
    pd.DataFrame(de35_records(rows)).to_csv(tmp_path / "dst.csv", sep=";", index=False)
    pd.testing.assert_frame_equal(read_snapshot(tmp_path / "dst.csv"), rows)


def test_an_unreadable_snapshot_is_a_configuration_error_naming_it(tmp_path, dataset_layout):
    path = tmp_path / "unreadable.csv"
    dataset_layout.to_csv(path, sep=";", index=False)
    path.chmod(0)
    program = f"from energy_assets.sources.files import read_snapshot\nread_snapshot({str(path)!r})"
    # Root reads any file: the child gives up that right, as an ordinary user has none.
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, preexec_fn=without_root_file_access
    )
    assert f"SourceConfigurationError: cannot read snapshot file {path}: Permission denied" in completed.stderr
