"""The README's main command: `energy-assets demo` runs the graph offline and says where the results are."""

from energy_assets.app.cli import main


def test_the_demo_fills_the_feature_group_then_publishes_forecasts(isolated_state, capsys, monkeypatch):
    # The demo sets DAGSTER_HOME for its process; setenv first so teardown restores the original.
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.delenv("DAGSTER_HOME")

    exit_code = main(["demo", "--start", "2022-12-01T00:00", "--history-days", "12", "--forecast-hours", "2"])

    assert exit_code == 0
    printed = capsys.readouterr().out
    assert f"state directory (ENERGY_ASSETS_HOME): {isolated_state}" in printed
    assert "newest forecast, issued at 2022-12-13 01:00:00+00:00: 1824 rows" in printed
    forecasts = sorted((isolated_state / "bucket" / "energy_assets" / "energy_forecasts").rglob("*.parquet"))
    assert [path.relative_to(path.parents[2]).as_posix() for path in forecasts] == [
        "utc_date=2022-12-13/utc_hour=0/part-0.parquet",
        "utc_date=2022-12-13/utc_hour=1/part-0.parquet",
    ]
    assert (isolated_state / "dagster_home" / "dagster.yaml").exists()
