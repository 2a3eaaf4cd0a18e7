"""Cleaning to canonical types, and the data-quality rules that name the rows breaking them."""

import pandas as pd
import pytest

from energy_assets.quality.cleaning import CleaningError, clean_consumption
from energy_assets.quality.plausibility import Plausibility, parse_series_names
from energy_assets.schema import CONSUMPTION_DTYPES, TARGET, de35_series
from energy_assets.quality.validation import RULES, validate_consumption
from energy_assets.sources.files import read_snapshot
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets_tests.conftest import REAL_DATA_PARQUET

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


def plausibility_failures(batch: pd.DataFrame, history: pd.DataFrame | None, **rule) -> pd.DataFrame:
    start = batch["datetime_utc"].min()
    end = batch["datetime_utc"].max() + pd.Timedelta(hours=1)
    results = validate_consumption(batch, de35_series(), start, end, history=history, plausibility=Plausibility(**rule))
    failed = {result.rule: result.offending_rows for result in results if not result.passed}
    assert set(failed) <= {"plausible_consumption"}, failed
    return failed.get("plausible_consumption", pd.DataFrame())


@pytest.fixture
def week() -> pd.DataFrame:
    """A week of synthetic DE35 rows before START: the history a run at START reads."""
    return synthetic_consumption(START - pd.Timedelta(days=7), START)


@pytest.fixture
def hour_at_start() -> pd.DataFrame:
    return synthetic_consumption(START, START + pd.Timedelta(hours=1))


@pytest.mark.parametrize("value", [1e300, 0.0, 1e-3], ids=["1e300", "zero", "a_thousandth"])
def test_a_value_far_from_its_series_recent_level_is_refused_naming_the_row(week, hour_at_start, value):
    series = hour_at_start.iloc[10]
    hour_at_start.loc[10, TARGET] = value

    refused = plausibility_failures(hour_at_start, week)

    assert refused.index.tolist() == [10] and refused[TARGET].tolist() == [value]
    median = week[(week["area"] == series["area"]) & (week["consumer_type"] == series["consumer_type"])][TARGET].median()
    assert refused["reference_median_kwh"].iloc[0] == pytest.approx(median, rel=0.05)
    assert refused["reference_values"].tolist() == [7 * 24 + 1]


def test_the_real_swings_of_a_week_pass(week, hour_at_start):
    assert plausibility_failures(hour_at_start, week).empty
    assert plausibility_failures(week, None).empty


def test_without_history_a_batch_is_judged_by_its_own_values(week):
    # A first backfill: nothing stored yet. The median of each series' own values in the batch holds.
    first_hours = week[week["datetime_utc"] < week["datetime_utc"].min() + pd.Timedelta(hours=3)].reset_index(drop=True)
    first_hours.loc[[5, 5 + 76], TARGET] = [1e300, 0.0]  # one series, two of its three hours

    assert plausibility_failures(first_hours, None).index.tolist() == [5, 5 + 76]


def test_zero_is_a_real_zero_in_a_series_near_zero_and_missing_in_one_far_above(week, hour_at_start):
    # DE35 series are 90 kWh and more: a zero is a missing value published as 0. Near zero it is real.
    week = week.assign(**{TARGET: week[TARGET].where(week["consumer_type"] != 111, 0.0)})
    week.loc[week["consumer_type"] == 112, TARGET] = week.loc[week["consumer_type"] == 112, TARGET] % 20
    hour_at_start.loc[hour_at_start["consumer_type"].isin([111, 112]), TARGET] = 0.0
    hour_at_start.loc[hour_at_start["consumer_type"] == 119, TARGET] = 0.0

    refused = plausibility_failures(hour_at_start, week)

    assert sorted(refused["consumer_type"].unique()) == [119]


def test_a_level_change_named_as_accepted_is_stored(week, hour_at_start):
    level_change = (hour_at_start["area"] == 1) & (hour_at_start["consumer_type"] == 111)
    hour_at_start.loc[level_change, TARGET] *= 100

    assert plausibility_failures(hour_at_start, week)["consumer_type"].tolist() == [111]
    assert plausibility_failures(hour_at_start, week, accepted=parse_series_names(["1/111"])).empty
    assert plausibility_failures(hour_at_start, week, factor=200.0).empty


def test_accepted_series_and_factors_that_are_not_ones_are_refused():
    with pytest.raises(ValueError, match="'DK1-111' is not a series named as area/consumer_type"):
        parse_series_names(["DK1-111"])
    with pytest.raises(ValueError, match="must be a finite number above 1"):
        Plausibility(factor=0.5)


def test_no_row_of_the_vendored_real_extract_is_refused_in_daily_runs():
    # The whole shared extract, every scenario: benchmarks/plausibility_thresholds.py.
    real = read_snapshot(REAL_DATA_PARQUET)
    days = pd.date_range(real["datetime_utc"].min().floor("D"), real["datetime_utc"].max(), freq="D")
    refused = 0
    for day in days:
        batch = real[(real["datetime_utc"] >= day) & (real["datetime_utc"] < day + pd.Timedelta(days=1))]
        history = real[(real["datetime_utc"] >= day - pd.Timedelta(days=28)) & (real["datetime_utc"] < day)]
        refused += len(Plausibility().implausible_rows(batch, history))
    assert refused == 0
    assert Plausibility().implausible_rows(real, None).empty


def test_the_checks_read_each_time_on_its_own_terms(rows):
    # Rows from a source that passes times as text: an offset on one of them must not shift the others.
    text = rows.assign(datetime_utc=rows["datetime_utc"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    text.loc[0, "datetime_utc"] = "2023-01-01T01:00:00+01:00"  # START, written in Danish time

    assert failures(text) == {}
    pd.testing.assert_series_equal(clean_consumption(text)["datetime_utc"], clean_consumption(rows)["datetime_utc"])
