"""ConsumptionIndustry (hourly consumption per municipality and sector) as canonical rows.

The dataset has no price area and no DE35 code, so both are derived, then summed per
(hour, area, consumer_type):

| source column | canonical | mapping |
|---|---|---|
| `HourUTC` | `datetime_utc` | as is (UTC); `HourDK`, when present, must be it in Danish time |
| `MunicipalityNo` | `area` | municipality -> price area (`municipalities.py`): 1 = DK1 (Jutland, Funen), 2 = DK2 (Zealand, Lolland-Falster, Bornholm) |
| `Branche` = `Erhverv` | `consumer_type` = 1001 | businesses (meters with a CVR number, private sector) |
| `Branche` = `Offentligt` | `consumer_type` = 1002 | public sector |
| `Branche` = `Privat` | `consumer_type` = 1003 | private consumers (meters without a CVR number: households) |
| `ConsumptionkWh` | `energy_consumption` | summed, kWh |

The codes are outside DE35's 111-999 because each sector spans many DE35 codes: no DE35
code is its equivalent. An unknown municipality or sector, or a (hour, municipality, sector)
given twice, cannot be aggregated honestly and is an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from energy_assets.schema import AREA, CONSUMER_TYPE, CONSUMPTION_DTYPES, DATETIME, SERIES_KEY, TARGET
from energy_assets.sources.canonical import (
    HOUR_DK,
    RowOrigin,
    canonical_frame,
    check_danish_hours,
    map_known,
    parse_hours,
    parse_integers,
    parse_numbers,
    require_columns,
)
from energy_assets.sources.errors import SourceFormatError
from energy_assets.sources.municipalities import DK1, DK2, MUNICIPALITY_AREAS

DATASET = "ConsumptionIndustry"
HOUR_UTC = "HourUTC"
MUNICIPALITY = "MunicipalityNo"
BRANCHE = "Branche"
CONSUMPTION = "ConsumptionkWh"
COLUMNS = [HOUR_UTC, MUNICIPALITY, BRANCHE, CONSUMPTION]

BRANCHE_CONSUMER_TYPES: dict[str, int] = {"Erhverv": 1001, "Offentligt": 1002, "Privat": 1003}


def industry_series() -> pd.DataFrame:
    """The 6 (area, consumer_type) series ConsumptionIndustry yields every hour."""
    return pd.DataFrame(
        [(area, code) for area in (DK1, DK2) for code in BRANCHE_CONSUMER_TYPES.values()],
        columns=SERIES_KEY,
    ).astype({AREA: CONSUMPTION_DTYPES[AREA], CONSUMER_TYPE: CONSUMPTION_DTYPES[CONSUMER_TYPE]})


def from_industry_columns(frame: pd.DataFrame, origin: RowOrigin) -> pd.DataFrame:
    """Canonical rows: ConsumptionIndustry records summed per hour, price area and sector."""
    require_columns(frame.columns, COLUMNS, origin)
    municipalities = parse_integers(frame[MUNICIPALITY], MUNICIPALITY, "int32", origin)
    branches = frame[BRANCHE].astype("string").str.strip()
    detailed = pd.DataFrame(
        {
            DATETIME: parse_hours(frame[HOUR_UTC], HOUR_UTC, origin),
            MUNICIPALITY: municipalities,
            BRANCHE: branches,
            AREA: map_known(municipalities, MUNICIPALITY_AREAS, MUNICIPALITY, "int32", origin),
            CONSUMER_TYPE: map_known(branches, BRANCHE_CONSUMER_TYPES, BRANCHE, "int32", origin),
            TARGET: parse_numbers(frame[CONSUMPTION], CONSUMPTION, origin),
        }
    )
    if HOUR_DK in frame.columns:
        check_danish_hours(frame, detailed[DATETIME], origin)
    repeated = detailed.duplicated([DATETIME, MUNICIPALITY, BRANCHE], keep=False).to_numpy()
    if repeated.any():
        raise SourceFormatError(
            f"{origin.where}: {int(repeated.sum())} records repeat an (HourUTC, MunicipalityNo, Branche) "
            f"key at {origin.locate(np.flatnonzero(repeated))}; the per-area sum would count them twice"
        )
    keys = [DATETIME, AREA, CONSUMER_TYPE]
    totals = detailed.groupby(keys, sort=True)[TARGET].sum()
    # A missing municipality value leaves its area's total unknown rather than silently smaller.
    has_missing = detailed[TARGET].isna().groupby([detailed[key] for key in keys], sort=True).any()
    totals[has_missing.to_numpy()] = np.nan
    totals = totals.reset_index()
    return canonical_frame(totals[DATETIME], totals[AREA], totals[CONSUMER_TYPE], totals[TARGET])

