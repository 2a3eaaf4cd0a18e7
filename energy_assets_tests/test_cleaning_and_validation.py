"""Cleaning to canonical types, and the data-quality rules that name the rows breaking them."""

import pandas as pd
import pytest

from energy_assets.quality.cleaning import CleaningError, clean_consumption
from energy_assets.schema import CONSUMPTION_DTYPES, TARGET, de35_series
from energy_assets.quality.validation import RULES, validate_consumption

START = pd.Timestamp("2023-01-01 00:00", tz="UTC")
END = START + pd.Timedelta(hours=3)


@pytest.fixture
def rows() -> pd.DataFrame:
    hours = pd.DataFrame({"datetime_utc": pd.date_range(START, END, freq="h", inclusive="left")})
    frame = hours.merge(de35_series(), how="cross")
    return frame.assign(energy_consumption=1000.0)


def failures(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    results = validate_consumption(rows, de35_series(), START, END)
    assert [result.rule for result in results] == list(RULES)
    return {result.rule: result.offending_rows for result in results if not result.passed}


def test_clean_rows_pass_every_rule_and_clean_to_canonical_dtypes(rows):
    assert failures(rows) == {}
    cleaned = clean_consumption(rows.astype({"area": "int64", "energy_consumption": "object"}))
    assert cleaned.dtypes.astype(str).to_dict() == CONSUMPTION_DTYPES
    assert cleaned["datetime_utc"].is_monotonic_increasing


def test_a_text_value_is_a_type_problem_naming_its_column(rows):
    rows = rows.astype({TARGET: "object"})
    rows.loc[4, TARGET] = "12,5 kWh"

    found = failures(rows)

    assert list(found) == ["columns_and_types"]
    assert found["columns_and_types"]["problem_columns"].tolist() == [TARGET]
    with pytest.raises(CleaningError, match="12,5 kWh"):
        clean_consumption(rows)


def test_a_time_off_the_hour_is_a_type_problem(rows):
    rows.loc[0, "datetime_utc"] = START + pd.Timedelta(minutes=30)
    assert "datetime_utc" in failures(rows)["columns_and_types"]["problem_columns"].tolist()


def test_nulls_are_named(rows):
    rows.loc[2, TARGET] = None
    assert failures(rows)["no_nulls"].index.tolist() == [2]


def test_unknown_codes_and_areas_are_named(rows):
    rows.loc[3, "consumer_type"] = 555
    rows.loc[5, "area"] = 7
    found = failures(rows)
    assert sorted(found["known_areas_and_consumer_types"][["area", "consumer_type"]].to_records(index=False).tolist()) == [
        (1, 555),
        (7, rows.loc[5, "consumer_type"]),
    ]


def test_negative_consumption_is_named(rows):
    rows.loc[6, TARGET] = -1.0
    assert failures(rows)["finite_non_negative_consumption"][TARGET].tolist() == [-1.0]


def test_duplicates_missing_series_and_stray_hours_are_named(rows):
    duplicated = rows.iloc[[0]]
    stray = rows.iloc[[1]].assign(datetime_utc=END)
    rows = pd.concat([rows.drop(index=[10]), duplicated, stray])

    problems = failures(rows)["complete_hours"]

    assert sorted(problems["problem"]) == ["duplicate", "missing", "outside_window"]
    assert problems.set_index("problem").loc["duplicate", "rows_found"] == 2


def test_a_missing_hour_is_named_for_every_series(rows):
    rows = rows[rows["datetime_utc"] != START + pd.Timedelta(hours=1)]
    problems = failures(rows)["complete_hours"]
    assert len(problems) == 76 and set(problems["datetime_utc"]) == {START + pd.Timedelta(hours=1)}


def test_missing_columns_fail_every_rule_without_crashing(rows):
    found = failures(rows.drop(columns=[TARGET]))
    assert set(found) == set(RULES)
    assert found["columns_and_types"]["missing_column"].tolist() == [TARGET]


def test_infinite_consumption_is_named_by_the_finite_rule(rows):
    # A source that lets infinity through must not get it into the feature group: models then fail naming no row.
    rows.loc[7, TARGET] = float("inf")
    rows.loc[9, TARGET] = float("-inf")
    assert failures(rows)["finite_non_negative_consumption"].index.tolist() == [7, 9]
