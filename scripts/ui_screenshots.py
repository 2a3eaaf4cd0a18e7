"""Screenshots of the Dagster UI for the docs (docs/*.png), taken in headless Chromium after `energy-assets demo`.

Needs `dg dev` serving the demo's instance (the command the demo prints) and Playwright with
Debian's Chromium: python -m venv /tmp/pw && /tmp/pw/bin/pip install playwright, then
/tmp/pw/bin/python scripts/ui_screenshots.py http://127.0.0.1:3000
(Debian's Chromium: apt-get install -y chromium.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parents[1] / "docs"
CHROMIUM = "/usr/bin/chromium"
GROUPS = ("ingestion", "forecasting", "monitoring", "maintenance")  # the asset groups of several assets
# Closed networks refuse Chromium's background connections; these keep it from trying.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def main(url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"{url}/asset-groups")
        page.wait_for_timeout(8000)
        if page.get_by_role("button", name="Skip").count():  # the community dialog of a first visit
            page.get_by_role("button", name="Skip").click()
        page.wait_for_timeout(3000)
        for group in GROUPS:  # a fresh browser shows every group collapsed: a double click on its name expands it
            page.locator("svg foreignObject").get_by_text(group, exact=True).first.dblclick()
            page.wait_for_timeout(1500)
        # A group of one asset does not expand on a double click: its toggle (top right of the group) does.
        serving = page.locator("svg foreignObject").filter(has=page.get_by_text("serving", exact=True)).last.bounding_box()
        page.mouse.click(serving["x"] + serving["width"] - 14, serving["y"] + 12)
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Zoom to fit").click() if page.get_by_role("button", name="Zoom to fit").count() else None
        page.wait_for_timeout(2000)
        page.screenshot(path=DOCS / "asset_graph.png")
        page.goto(f"{url}/runs")  # the demo's runs, tagged source: demo
        page.wait_for_timeout(6000)
        page.screenshot(path=DOCS / "runs.png")
        page.goto(f"{url}/assets/energy_forecasts?view=partitions")
        page.wait_for_timeout(6000)
        page.screenshot(path=DOCS / "forecast_partitions.png")
        for asset, plot, picture in (
            ("energy_forecasts", "forecast_plot", "forecast_plot.png"),
            ("forecast_accuracy_summary", "wape_over_time", "accuracy_summary.png"),
        ):
            page.goto(f"{url}/assets/{asset}?view=events")
            page.wait_for_timeout(5000)
            # The newest event with the figure; its markdown opens in a dialog.
            page.locator("tr", has_text=plot).get_by_text("[Show Markdown]").first.click()
            page.wait_for_timeout(3000)
            page.screenshot(path=DOCS / picture)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000")
