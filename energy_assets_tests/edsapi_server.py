"""A loopback fake of the Energi Data Service API, and the `edsapi_server` pytest fixture that runs it.

It serves `GET /dataset/<name>` like the real API: `start`/`end` as Danish local time on
`HourDK`, `filter` (JSON, equality), `columns`, `sort`, `offset`, `limit`, answering
`{total, limit, dataset, records}`. Scripted answers (errors, delays) can be queued ahead of the
normal ones, and every request's query is recorded. Use it in a test module with
`from energy_assets_tests.edsapi_server import edsapi_server  # noqa: F401`.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest

from energy_assets.schema import AREA, AREA_NAMES, CONSUMER_TYPE, DATETIME, TARGET

DANISH_TIME = "Europe/Copenhagen"
HOUR_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class ScriptedAnswer:
    """One canned answer: an HTTP status with a JSON body and headers, sent after a delay, optionally
    one byte every `seconds_per_byte` (a trickle that never lets a read time out)."""

    status: int
    body: dict = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    seconds_per_byte: float = 0.0
    gzipped: bool = False


@dataclass
class FakeEnergiDataService:
    """The fake API's state: records per dataset, queued scripted answers, and the requests seen."""

    datasets: dict[str, list[dict]] = field(default_factory=dict)
    scripted: deque[ScriptedAnswer] = field(default_factory=deque)
    # Answered to every request once the scripted queue is empty, instead of the API's answer.
    always: ScriptedAnswer | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""

    def answer(self, path: str, query: dict[str, str]) -> ScriptedAnswer:
        """The next scripted answer if one is queued, else the API's answer to the request."""
        self.requests.append({"path": path, **query})
        if self.scripted:
            return self.scripted.popleft()
        if self.always is not None:
            return self.always
        name = path.removeprefix("/dataset/")
        if not path.startswith("/dataset/") or name not in self.datasets:
            return ScriptedAnswer(400, {"error": "Bad Request", "message": f"Dataset {name!r} not found"})
        try:
            return ScriptedAnswer(200, _query(name, self.datasets[name], query))
        except (ValueError, KeyError) as error:
            return ScriptedAnswer(400, {"error": "Bad Request", "message": str(error)})


def _query(name: str, records: list[dict], query: dict[str, str]) -> dict:
    """The API's selection: period on HourDK, equality filter, sort, paging, column choice."""
    start, end = _period_bound(query.get("start")), _period_bound(query.get("end"))
    selected = [
        record
        for record in records
        if (start is None or record["HourDK"][:16] >= start) and (end is None or record["HourDK"][:16] < end)
    ]
    for column, allowed in json.loads(query.get("filter") or "{}").items():
        selected = [record for record in selected if record.get(column) in allowed]
    for term in reversed([term.split() for term in (query.get("sort") or "").split(",") if term.strip()]):
        selected.sort(key=lambda record: record[term[0]], reverse=term[1:] == ["desc"] or term[1:] == ["DESC"])
    offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
    page = selected[offset:] if limit == 0 else selected[offset : offset + limit]
    if query.get("columns"):
        wanted = query["columns"].split(",")
        page = [{column: record[column] for column in wanted if column in record} for record in page]
    return {"total": len(selected), "limit": limit, "dataset": name, "records": page}


def _period_bound(value: str | None) -> str | None:
    """A start/end parameter (yyyy, yyyy-MM, yyyy-MM-dd or yyyy-MM-ddTHH:mm) as a comparable wall time."""
    if not value:
        return None
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M")


class _Handler(BaseHTTPRequestHandler):
    service: FakeEnergiDataService

    def do_GET(self):  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        answer = self.service.answer(parts.path, dict(parse_qsl(parts.query)))
        time.sleep(answer.delay_seconds)
        payload = json.dumps(answer.body).encode()
        if answer.gzipped:
            payload = gzip.compress(payload)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if answer.gzipped:
                self.send_header("Content-Encoding", "gzip")
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not answer.seconds_per_byte:
                self.wfile.write(payload)
            for position in range(len(payload) if answer.seconds_per_byte else 0):
                self.wfile.write(payload[position : position + 1])
                self.wfile.flush()
                time.sleep(answer.seconds_per_byte)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up waiting (a timeout test): nothing left to tell it.
            pass

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


def de35_records(frame: pd.DataFrame) -> list[dict]:
    """Canonical rows as ConsumptionDE35Hour API records (HourUTC, HourDK, PriceArea, ConsumerType_DE35, TotalCon)."""
    hours = pd.DatetimeIndex(frame[DATETIME])
    return [
        {
            "HourUTC": utc,
            "HourDK": local,
            "PriceArea": AREA_NAMES[int(area)],
            "ConsumerType_DE35": str(code),
            "TotalCon": float(value),
        }
        for utc, local, area, code, value in zip(
            hours.tz_convert("UTC").strftime(HOUR_FORMAT),
            hours.tz_convert(DANISH_TIME).strftime(HOUR_FORMAT),
            frame[AREA],
            frame[CONSUMER_TYPE],
            frame[TARGET],
        )
    ]


def industry_record(hour_utc: str, municipality: int, branche: str, kwh: float | None) -> dict:
    """One ConsumptionIndustry API record; HourDK is derived from the UTC hour."""
    moment = pd.Timestamp(hour_utc, tz="UTC")
    return {
        "HourUTC": moment.strftime(HOUR_FORMAT),
        "HourDK": moment.tz_convert(DANISH_TIME).strftime(HOUR_FORMAT),
        "MunicipalityNo": str(municipality),
        "Branche": branche,
        "ConsumptionkWh": kwh,
    }


@pytest.fixture
def edsapi_server():
    """A running fake API on 127.0.0.1 (a free port); its `base_url` goes to the client under test."""
    service = FakeEnergiDataService()
    handler = type("Handler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    service.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="fake-edsapi", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
