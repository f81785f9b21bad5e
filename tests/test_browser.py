"""A real browser on the real UI: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) logs in through SimpleAuthManager's login page, opens
``sparkify_dwh`` and finds every run the service test made in the grid, every
task of every run a success. It shares the services and runs of test_services.py
(session fixtures), and saves a screenshot of the grid; with
``SPARKIFY_UI_SCREENSHOT=docs/ui-grid.png`` (``make ui-screenshot``) it also
refreshes the one docs/operations.md shows.

Skipped when Chromium is missing on a developer's machine; in CI (``$CI`` set),
where ``.ci/run`` installs it, a missing browser fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT = 60

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
        reason="no chromium/chromedriver: apt-get install chromium chromium-driver (CI installs them)",
    ),
]


@pytest.fixture(scope="session")
def chromium() -> None:
    """Checked before the services start (the test names it first among its session fixtures)."""
    assert CHROMIUM and CHROMEDRIVER, "CI must have chromium and chromium-driver: .ci/run installs them"


@pytest.fixture
def browser(chromium, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # As root and in a container: no sandbox, no GPU, no /dev/shm (often tiny); nothing from the network.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,760", f"--user-data-dir={tmp_path / 'profile'}",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver, path: Path) -> None:
    """A PNG of the window, reduced to a small palette: small enough to commit."""
    from PIL import Image

    raw = path.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colors=64).save(path, optimize=True)
    raw.unlink()


def test_the_grid_shows_every_run_succeeded(chromium, airflow_stack, airflow_scenario, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.wait import WebDriverWait

    api, wait = airflow_stack.api, WebDriverWait(browser, WAIT)
    browser.get(api.url + "/")
    wait.until(until.url_contains("/auth/login"))
    # The login page is an app of its own: its form appears once its script has run.
    wait.until(until.visibility_of_element_located((By.NAME, "username"))).send_keys(api.username)
    browser.find_element(By.NAME, "password").send_keys(api.password)
    wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
    wait.until(lambda driver: "/auth/login" not in driver.current_url)

    browser.get(f"{api.url}/dags/sparkify_dwh")
    # The grid at full width, every run in view.
    wait.until(until.element_to_be_clickable(
        (By.CSS_SELECTOR, "button[aria-label='Collapse Details Panel']")
    )).click()
    runs = [run["dag_run_id"] for run in airflow_scenario.runs]
    tasks = [task["task_id"] for task in api.call("GET", "/api/v2/dags/sparkify_dwh/tasks")["tasks"]]
    links = {
        (run, task): wait.until(until.presence_of_element_located(
            (By.CSS_SELECTOR, f"a[data-testid='grid-{run}-{task}']")
        ))
        for run in runs
        for task in tasks
    }
    assert len(links) == len(runs) * len(tasks) >= 8 * 12
    cells = {key: link.find_element(By.CSS_SELECTOR, "[data-testid='task-state-badge']") for key, link in links.items()}

    # The UI's own words for one cell of each run (its tooltip), then that colour in every cell.
    colours = set()
    for run in runs:
        link = links[(run, "run_quality_checks")]
        browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", link)
        ActionChains(browser).move_to_element(link).perform()
        tooltip = wait.until(lambda driver, run=run: next(
            (element for element in driver.find_elements(By.CSS_SELECTOR, "[data-part='content']")
             if f"Run ID: {run}" in element.text), None
        ))
        assert "Task ID: run_quality_checks" in tooltip.text and "State: Success" in tooltip.text, tooltip.text
        colours.add(cells[(run, "run_quality_checks")].value_of_css_property("background-color"))
    assert len(colours) == 1, colours
    different = {key for key, cell in cells.items() if cell.value_of_css_property("background-color") not in colours}
    assert not different, f"cells not in the success colour: {sorted(different)[:5]}"

    # Away from the cells, so no tooltip covers the grid.
    home = browser.find_element(By.CSS_SELECTOR, "[data-testid='nav-home-link']")
    ActionChains(browser).move_to_element(home).perform()
    browser.execute_script("document.querySelectorAll('*').forEach(element => { element.scrollTop = 0; })")
    screenshot = tmp_path / "ui-grid.png"
    save_screenshot(browser, screenshot)
    assert screenshot.stat().st_size > 5_000
    if target := os.environ.get("SPARKIFY_UI_SCREENSHOT"):
        shutil.copyfile(screenshot, REPO / target)
