"""The Energi Data Service client against a loopback fake of the API: paging, retries, errors, mappings."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from energy_assets.schema import AREA, CONSUMER_TYPE, CONSUMPTION_DTYPES, DATETIME, SERIES_KEY, TARGET
from energy_assets.sources.energidataservice import EnergiDataServiceClient, expected_series
from energy_assets.sources.errors import (
    EmptySourceError,
    SourceDeadlineError,
    SourceFormatError,
    SourceRequestError,
    SourceUnavailableError,
)
from energy_assets.sources.municipalities import MUNICIPALITY_AREAS, MUNICIPALITY_NAMES
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets_tests.edsapi_server import ScriptedAnswer, de35_records, industry_record

DE35 = "ConsumptionDE35Hour"
INDUSTRY = "ConsumptionIndustry"
START, END = pd.Timestamp("2023-01-01T20:00Z"), pd.Timestamp("2023-01-02T02:00Z")


@pytest.fixture
def waits() -> list[float]:
    """The backoff waits the client asked for, recorded instead of slept."""
    return []


@pytest.fixture
def client(edsapi_server, waits) -> EnergiDataServiceClient:
    return EnergiDataServiceClient(
        base_url=edsapi_server.base_url,
        timeout_seconds=2.0,
        max_attempts=4,
        page_size=100,
        retry_wait_seconds=0.001,
        sleep=waits.append,
    )


@pytest.fixture
def published(edsapi_server) -> pd.DataFrame:
    """Two days of DE35 rows around the test window, served by the fake API."""
    rows = synthetic_consumption(START - pd.Timedelta(days=1), END + pd.Timedelta(days=1))
    edsapi_server.datasets[DE35] = de35_records(rows)
    return rows


def _inside(rows: pd.DataFrame, start=START, end=END) -> pd.DataFrame:
    return rows[(rows[DATETIME] >= start) & (rows[DATETIME] < end)].reset_index(drop=True)


def test_de35_window_is_paged_until_total(client, edsapi_server, published):
    frame = client.fetch(DE35, START, END)
    pd.testing.assert_frame_equal(frame, _inside(published))
    pages = edsapi_server.requests
    assert len(pages) == 5  # 6 hours x 76 series = 456 records, 100 a page
    assert [int(page["offset"]) for page in pages] == [0, 100, 200, 300, 400]
    # The API reads start/end as Danish local time (UTC+1 in January).
    assert (pages[0]["start"], pages[0]["end"]) == ("2023-01-01T21:00", "2023-01-02T03:00")
    assert pages[0]["columns"] == "HourUTC,PriceArea,ConsumerType_DE35,TotalCon,HourDK"


def test_an_hour_utc_that_disagrees_with_its_hour_dk_is_refused_naming_the_record(client, edsapi_server, published):
    records = de35_records(published)
    shifted = next(record for record in records if record["HourUTC"] == "2023-01-01T23:00:00")
    # The same wall time with an offset: an hour early, which HourDK (2023-01-02T00:00:00) contradicts.
    shifted["HourUTC"] = "2023-01-01T23:00:00+01:00"
    edsapi_server.datasets[DE35] = records
    with pytest.raises(
        SourceFormatError,
        match=r"ConsumptionDE35Hour at .*: 1 row\(s\) whose HourUTC and HourDK disagree .* at records \d+: "
        r"HourUTC '2023-01-01T23:00:00\+01:00' \(read as 2023-01-01 22:00 UTC, 2023-01-01 23:00 in Denmark\) "
        r"vs HourDK '2023-01-02T00:00:00'",
    ):
        client.fetch(DE35, START, END)


def test_window_across_the_autumn_dst_fold_gets_every_hour(client, edsapi_server):
    # 2023-10-29 01:00 UTC: Danish clocks go from 03:00 back to 02:00, so 02:00 local happens twice.
    start, end = pd.Timestamp("2023-10-28T23:00Z"), pd.Timestamp("2023-10-29T01:00Z")
    rows = synthetic_consumption(start - pd.Timedelta(hours=3), end + pd.Timedelta(hours=3))
    edsapi_server.datasets[DE35] = de35_records(rows)
    frame = client.fetch(DE35, start, end)
    pd.testing.assert_frame_equal(frame, _inside(rows, start, end))


def test_503_and_429_are_retried_honouring_retry_after(client, edsapi_server, published, waits):
    edsapi_server.scripted.extend(
        [
            ScriptedAnswer(503, {"message": "maintenance"}),
            ScriptedAnswer(429, {"message": "slow down"}, headers={"Retry-After": "7"}),
        ]
    )
    frame = client.fetch(DE35, START, END)
    pd.testing.assert_frame_equal(frame, _inside(published))
    assert waits[0] < 0.01  # exponential backoff from retry_wait_seconds
    assert waits[1] == 7.0  # the API's Retry-After
    assert len(edsapi_server.requests) == 2 + 5


def test_retries_stop_after_max_attempts_with_a_clear_error(client, edsapi_server, published, waits):
    edsapi_server.scripted.extend([ScriptedAnswer(500, {"message": "boom"})] * 4)
    with pytest.raises(SourceUnavailableError, match=r"failed 4 attempt\(s\).*HTTP 500 from .*ConsumptionDE35Hour.*boom"):
        client.fetch(DE35, START, END)
    assert len(edsapi_server.requests) == 4
    assert waits == sorted(waits) and len(waits) == 3


def test_bad_request_is_not_retried_and_names_status_url_and_message(client, edsapi_server, published, waits):
    edsapi_server.scripted.append(ScriptedAnswer(400, {"error": "Bad Request", "message": "Invalid filter"}))
    expected = r"HTTP 400 from http://127\.0\.0\.1:\d+/dataset/ConsumptionDE35Hour\?.*: Invalid filter"
    with pytest.raises(SourceRequestError, match=expected):
        client.fetch(DE35, START, END)
    assert len(edsapi_server.requests) == 1
    assert waits == []


def test_unknown_dataset_on_the_server_is_a_request_error(client, edsapi_server):
    with pytest.raises(SourceRequestError, match="Dataset 'ConsumptionDE35Hour' not found"):
        client.fetch(DE35, START, END)


def test_timeout_is_retried(edsapi_server, published, waits):
    client = EnergiDataServiceClient(
        base_url=edsapi_server.base_url, timeout_seconds=0.2, page_size=1000, retry_wait_seconds=0.001, sleep=waits.append
    )
    edsapi_server.scripted.append(ScriptedAnswer(200, {"total": 0, "records": []}, delay_seconds=0.6))
    pd.testing.assert_frame_equal(client.fetch(DE35, START, END), _inside(published))
    assert len(edsapi_server.requests) == 2 and len(waits) == 1


def test_unreachable_api_is_unavailable_after_retries(waits):
    client = EnergiDataServiceClient(
        base_url="http://127.0.0.1:9", timeout_seconds=0.5, max_attempts=2, retry_wait_seconds=0.001, sleep=waits.append
    )
    with pytest.raises(SourceUnavailableError, match=r"failed 2 attempt\(s\).*Connect"):
        client.fetch(DE35, START, END)


def test_wrong_columns_are_named(client, edsapi_server):
    rows = synthetic_consumption(START, END)
    edsapi_server.datasets[DE35] = [
        {("TotalConsumption" if key == "TotalCon" else key): value for key, value in record.items()}
        for record in de35_records(rows)
    ]
    with pytest.raises(SourceFormatError, match=r"ConsumptionDE35Hour at .*missing column\(s\) \['TotalCon'\]"):
        client.fetch(DE35, START, END)


def test_answer_without_records_list_is_a_format_error(client, edsapi_server):
    edsapi_server.scripted.append(ScriptedAnswer(200, {"total": 3, "result": []}))
    with pytest.raises(SourceFormatError, match="no 'records' list"):
        client.fetch(DE35, START, END)


def test_empty_answer_names_dataset_and_window(client, edsapi_server, published):
    later = START + pd.Timedelta(days=30)
    with pytest.raises(EmptySourceError, match=r"ConsumptionDE35Hour has no records for \[2023-01-31 20:00:00\+00:00, "):
        client.fetch(DE35, later, later + pd.Timedelta(hours=1))


def test_unsupported_dataset_and_bad_settings_are_errors(edsapi_server):
    with pytest.raises(ValueError, match=r"unsupported Energi Data Service dataset 'Elspotprices'; supported: \["):
        EnergiDataServiceClient(base_url=edsapi_server.base_url).fetch("Elspotprices", START, END)
    with pytest.raises(ValueError, match="page_size"):
        EnergiDataServiceClient(page_size=0)


def test_municipality_table_covers_the_98_municipalities():
    assert len(MUNICIPALITY_AREAS) == len(MUNICIPALITY_NAMES) == 98
    assert sum(area == 2 for area in MUNICIPALITY_AREAS.values()) == 29 + 17  # Hovedstaden + Sjælland
    assert {MUNICIPALITY_NAMES[n]: MUNICIPALITY_AREAS[n] for n in (101, 400, 390, 461, 492, 751, 851)} == {
        "København": 2, "Bornholm": 2, "Vordingborg": 2, "Odense": 1, "Ærø": 1, "Aarhus": 1, "Aalborg": 1,
    }


def _industry_hour(hour: str, scale: float = 1.0) -> list[dict]:
    return [
        industry_record(hour, 101, "Privat", 1000.0 * scale),
        industry_record(hour, 101, "Erhverv", 500.0 * scale),
        industry_record(hour, 400, "Privat", 20.0 * scale),
        industry_record(hour, 751, "Privat", 700.0 * scale),
        industry_record(hour, 461, "Privat", 300.0 * scale),
        industry_record(hour, 461, "Offentligt", 50.0 * scale),
        industry_record(hour, 851, "Erhverv", 400.0 * scale),
    ]


def test_consumption_industry_is_summed_per_price_area_and_sector(client, edsapi_server):
    edsapi_server.datasets[INDUSTRY] = _industry_hour("2024-03-01T10:00") + _industry_hour("2024-03-01T11:00", 2)
    frame = client.fetch(INDUSTRY, "2024-03-01T10:00Z", "2024-03-01T12:00Z")
    # DK1: Aarhus 751, Odense 461, Aalborg 851; DK2: København 101, Bornholm 400.
    series = [(1, 1001), (1, 1002), (1, 1003), (2, 1001), (2, 1003)]
    first_hour = [400.0, 50.0, 700.0 + 300.0, 500.0, 1000.0 + 20.0]
    expected = pd.DataFrame(
        {
            DATETIME: pd.to_datetime(["2024-03-01T10:00Z"] * 5 + ["2024-03-01T11:00Z"] * 5).as_unit("us"),
            AREA: [area for area, _ in series] * 2,
            CONSUMER_TYPE: [code for _, code in series] * 2,
            TARGET: first_hour + [2 * value for value in first_hour],
        }
    ).astype(CONSUMPTION_DTYPES)
    pd.testing.assert_frame_equal(frame, expected)
    assert edsapi_server.requests[0]["sort"] == "HourUTC,MunicipalityNo,Branche"


def test_consumption_industry_expected_series():
    series = expected_series(INDUSTRY)
    assert sorted(map(tuple, series[SERIES_KEY].to_numpy().tolist())) == [
        (1, 1001), (1, 1002), (1, 1003), (2, 1001), (2, 1002), (2, 1003)
    ]
    assert len(expected_series(DE35)) == 76


@pytest.mark.parametrize(
    "record, message",
    [
        (industry_record("2024-03-01T10:00", 999, "Privat", 1.0), r"unknown MunicipalityNo value\(s\) \['999'\]"),
        (industry_record("2024-03-01T10:00", 101, "Landbrug", 1.0), r"unknown Branche value\(s\) \['Landbrug'\]"),
        (industry_record("2024-03-01T10:00", 101, "Privat", 5.0), r"2 records repeat an \(HourUTC, MunicipalityNo"),
    ],
)
def test_consumption_industry_rows_that_cannot_be_aggregated_are_errors(client, edsapi_server, record, message):
    edsapi_server.datasets[INDUSTRY] = _industry_hour("2024-03-01T10:00") + [record]
    with pytest.raises(SourceFormatError, match=message):
        client.fetch(INDUSTRY, "2024-03-01T10:00Z", "2024-03-01T11:00Z")


def test_consumption_industry_hour_dk_is_checked_against_hour_utc(client, edsapi_server):
    records = _industry_hour("2024-03-01T10:00")
    records[2]["HourDK"] = "2024-03-01T11:00:00+02:00"  # the right wall time with a summer offset in March: 09:00 UTC
    edsapi_server.datasets[INDUSTRY] = records
    with pytest.raises(SourceFormatError, match=r"1 row\(s\) whose HourUTC and HourDK disagree .* at records 2"):
        client.fetch(INDUSTRY, "2024-03-01T10:00Z", "2024-03-01T11:00Z")


def test_consumption_industry_missing_value_makes_its_total_unknown(client, edsapi_server):
    records = _industry_hour("2024-03-01T10:00")
    records[3]["ConsumptionkWh"] = None  # Aarhus, Privat
    edsapi_server.datasets[INDUSTRY] = records
    frame = client.fetch(INDUSTRY, "2024-03-01T10:00Z", "2024-03-01T11:00Z").set_index(SERIES_KEY)[TARGET]
    assert pd.isna(frame[(1, 1003)])
    assert frame[(2, 1003)] == 1020.0


def test_an_answer_trickling_one_byte_at_a_time_is_cut_at_the_request_budget(edsapi_server, published, waits):
    client = EnergiDataServiceClient(
        base_url=edsapi_server.base_url, timeout_seconds=0.5, page_size=1000, retry_wait_seconds=0.001, sleep=waits.append
    )
    # Each byte comes well within the read timeout, so only a budget for the whole answer ends it.
    edsapi_server.scripted.append(ScriptedAnswer(200, {"total": 0, "records": []}, seconds_per_byte=0.1))
    started = time.monotonic()
    pd.testing.assert_frame_equal(client.fetch(DE35, START, END), _inside(published))
    assert time.monotonic() - started < 2.0
    assert len(edsapi_server.requests) == 2 and len(waits) == 1


def test_a_total_larger_than_what_the_api_delivers_stops_paging(client, edsapi_server, published):
    records = de35_records(_inside(published))
    # The API claims a million records but answers every offset with the same first page.
    edsapi_server.always = ScriptedAnswer(200, {"total": 1_000_000, "records": records[:100]})
    frame = client.fetch(DE35, START, END)
    assert len(frame) == 100
    assert len(edsapi_server.requests) == 2  # the second page added nothing new


def test_paging_is_bounded_by_what_total_and_limit_allow(client, edsapi_server, published):
    records = de35_records(_inside(published))
    # Every page brings 50 new records, but the first answer's total (250, limit 100) allows three pages only.
    edsapi_server.scripted.extend(
        ScriptedAnswer(200, {"total": 250, "records": records[50 * page : 50 * (page + 1)]}) for page in range(6)
    )
    assert len(client.fetch(DE35, START, END)) == 150
    assert len(edsapi_server.requests) == 3


@pytest.mark.parametrize(
    "answer",
    [ScriptedAnswer(500, {"message": "boom"}), ScriptedAnswer(200, {"total": 0, "records": []}, delay_seconds=30)],
    ids=["http_500_forever", "hanging_connection"],
)
def test_the_whole_fetch_ends_at_its_deadline(edsapi_server, published, answer):
    client = EnergiDataServiceClient(
        base_url=edsapi_server.base_url,
        timeout_seconds=0.4,
        deadline_seconds=1.5,
        max_attempts=1000,
        retry_wait_seconds=0.05,
        max_retry_wait_seconds=0.2,
    )
    edsapi_server.always = answer
    started = time.monotonic()
    with pytest.raises(SourceDeadlineError, match=r"ConsumptionDE35Hour: the fetch's deadline of 1.5 s passed"):
        client.fetch(DE35, START, END)
    assert time.monotonic() - started < 2.0


def test_a_gzipped_answer_is_decoded_as_httpx_would(client, edsapi_server, published):
    # The answer is read as raw bytes against its budget, then decoded by its Content-Encoding.
    records = de35_records(_inside(published))
    edsapi_server.scripted.append(ScriptedAnswer(200, {"total": 100, "records": records[:100]}, gzipped=True))
    assert len(client.fetch(DE35, START, END)) == 100
