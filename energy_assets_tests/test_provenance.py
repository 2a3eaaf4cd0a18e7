"""What a registered model records: metric names, the training frame's content hash, the compact description."""

from __future__ import annotations

import json

import humps
import pandas as pd
import pytest

from energy_assets.forecasting.provenance import (
    DESCRIPTION_BUDGET,
    FactsWithFiles,
    check_metric_names,
    decode_description,
    encode_description,
    frame_sha256,
    registry_metrics,
    training_provenance,
)
from energy_assets.forecasting.training import ForecasterConfig
from energy_assets.schema import AREA, CONSUMER_TYPE, CONSUMPTION_COLUMNS, DATETIME, TARGET

START = pd.Timestamp("2023-01-01 00:00", tz="UTC")


def rows() -> pd.DataFrame:
    frame = pd.DataFrame({AREA: [1, 2]}).merge(pd.DataFrame({DATETIME: pd.date_range(START, periods=3, freq="h")}), how="cross")
    return frame.assign(**{CONSUMER_TYPE: 111, TARGET: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})[CONSUMPTION_COLUMNS]


def test_the_content_hash_ignores_row_order_and_dtypes_but_not_values():
    frame = rows()
    loose = frame.sample(frac=1, random_state=1).astype({AREA: "int64", CONSUMER_TYPE: "int64"})
    loose[DATETIME] = loose[DATETIME].dt.tz_convert("Europe/Copenhagen")
    changed = frame.assign(**{TARGET: frame[TARGET].where(frame.index != 3, 4.000001)})

    assert frame_sha256(loose) == frame_sha256(frame)
    assert frame_sha256(changed) != frame_sha256(frame)
    assert frame_sha256(frame.iloc[:-1]) != frame_sha256(frame)


def test_training_provenance_names_source_window_rows_and_hash():
    provenance = training_provenance(rows(), {"feature_view": "v", "feature_view_version": 2}, START, START + pd.Timedelta(hours=3))

    assert provenance == {
        "feature_view": "v",
        "feature_view_version": 2,
        "read_start": "2023-01-01T00:00:00+00:00",
        "read_end": "2023-01-01T03:00:00+00:00",
        "rows": 6,
        "sha256": frame_sha256(rows()),
    }


def test_registry_metric_names_survive_the_sdks_decamelize_and_older_names_are_mapped():
    validation = {f"{model}_{metric}": 0.1 for model in ("model", "snaive24", "snaive168") for metric in ("mape", "rmspe")}

    named = registry_metrics(validation)

    assert set(named) == {
        "model_mape", "model_rmspe", "seasonal_naive_day_mape", "seasonal_naive_day_rmspe",
        "seasonal_naive_week_mape", "seasonal_naive_week_rmspe",
    }
    assert humps.decamelize(named) == named
    assert registry_metrics(named) == named
    check_metric_names(named)
    with pytest.raises(ValueError, match="snaive168_mape"):
        check_metric_names(validation)


def test_the_description_keeps_the_facts_and_moves_the_largest_extras_out_until_it_fits():
    facts = {"data_cutoff": START.isoformat(), "config": {"lags": list(range(30))}}
    extra = {"training_window_days": 30, "excluded_series": [{"area": 1, "consumer_type": n} for n in range(40)]}

    description, moved = encode_description(facts, extra)
    decoded, kept, in_files = decode_description(description)

    assert len(description) <= DESCRIPTION_BUDGET
    assert decoded == facts and kept == {"training_window_days": 30} and in_files == ["excluded_series"]
    assert moved == {"excluded_series": extra["excluded_series"]}
    assert encode_description(facts, {"training_window_days": 30})[1] == {}
    assert decode_description(encode_description(facts, {"training_window_days": 30})[0])[2] == []


def test_the_shipped_configuration_fits_the_description_beside_a_real_registrations_extras():
    # The registration of the prod graph test: the default hyperparameters and every extra fact retraining
    # records. Listing the moved facts' names made this 935 characters, which Hopsworks refuses.
    facts = {
        "data_cutoff": START.isoformat(), "training_start": (START - pd.Timedelta(days=30)).isoformat(),
        "feature_group_version": 1, "config": json.loads(json.dumps(ForecasterConfig().to_dict(), default=str)),
    }
    extra = {
        "model_format": 3, "calibrated_by": 3, "training_rows": 123_456, "training_window_days": 30,
        "training_rows_left_out": 0, "validation_cutoff": START.isoformat(), "excluded_series": [], "training_gaps": [],
        "hyperparameter_search": [{"candidate": 1}],
        "training_data": {
            "feature_view": "energy_consumption_denmark_view", "version": 1, "read_start": START.isoformat(),
            "read_end": START.isoformat(), "rows": 123_456, "sha256": "a" * 64,
        },
    }

    description, moved = encode_description(facts, extra)
    decoded, kept, in_files = decode_description(description)
    loaded = FactsWithFiles(kept, in_files, lambda: moved)

    assert len(description) <= DESCRIPTION_BUDGET and decoded == facts
    assert in_files is None  # the moved facts' names did not fit beside the configuration
    assert "calibrated_by" in kept  # read for every version when issuing: no download for it
    assert dict(loaded) == extra


def test_a_format_1_description_listing_its_moved_facts_still_reads():
    description = json.dumps({
        "data_cutoff": START.isoformat(), "config": {}, "format": 1, "extra": {"training_window_days": 30},
        "extra_in_files": ["excluded_series"],
    })

    decoded, kept, in_files = decode_description(description)

    assert decoded == {"data_cutoff": START.isoformat(), "config": {}} and in_files == ["excluded_series"]


def test_a_description_that_cannot_fit_is_refused_naming_the_limit():
    with pytest.raises(ValueError, match="1000"):
        encode_description({"config": {"lags": list(range(400))}}, {})
    with pytest.raises(ValueError, match="JSON"):
        encode_description({"config": {"when": START}}, {})
    with pytest.raises(ValueError, match="format"):
        decode_description(json.dumps({"data_cutoff": "x"}))


def test_facts_in_files_load_once_and_only_when_read():
    loads = []

    def load():
        loads.append(1)
        return {"excluded_series": [1, 2]}

    facts = FactsWithFiles({"training_window_days": 30}, ["excluded_series"], load)

    assert "excluded_series" in facts and facts.get("training_window_days") == 30 and facts.get("absent") is None
    assert loads == []
    assert facts["excluded_series"] == [1, 2] and dict(facts) == {"training_window_days": 30, "excluded_series": [1, 2]}
    assert loads == [1]


def test_unnamed_facts_in_files_load_once_when_one_not_in_the_description_is_asked():
    loads = []

    def load():
        loads.append(1)
        return {"excluded_series": [1, 2]}

    facts = FactsWithFiles({"calibrated_by": 3}, None, load)

    assert facts.get("calibrated_by") == 3 and loads == []
    assert facts.get("absent") is None and "excluded_series" in facts and loads == [1]
    assert dict(facts) == {"calibrated_by": 3, "excluded_series": [1, 2]} and loads == [1]
