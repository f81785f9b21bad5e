"""A real browser on the real UI: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) logs in through SimpleAuthManager's login page and does what
a user does. It finds every run the service test made in the grid of
``sparkify_dwh``, every task of every run a success; triggers a run from
*Trigger* → *Single Run* for a logical date and backfills three hours from
*Trigger* → *Backfill* (hours the service test's scenario does not run, after a
song file for a song already played landed in the bucket); then reads the
triggered run's summary (its note) on the run's page and checks each figure
against the warehouse. It shares the services and runs of test_services.py
(session fixtures). With ``SPARKIFY_UI_SCREENSHOTS=docs`` (``make ui-screenshot``)
it refreshes the screenshots docs/operations.md shows: ``ui-grid.png``,
``ui-backfill.png`` and ``ui-run-summary.png``.

Skipped when Chromium is missing on a developer's machine; in CI (``$CI`` set),
where ``.ci/run`` installs it, a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import psycopg
import pytest
from airflow_client.client import BackfillResponse, DAGRunResponse

from tests.support.airflow_stack import (
    DAG_ID,
    RUNS_TIMEOUT,
    SCENARIO_END,
    UI_BACKFILL_HOURS,
    UI_BACKFILL_START,
    UI_TRIGGER_LOGICAL_DATE,
    hours,
)
from tests.support.paths import REPO
from tests.support.reference import EPOCH, build_reference
from tests.support.warehouse_checks import warehouse_tables

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT = 60
#: Where ``make ui-screenshot`` refreshes the README's screenshots (unset: they stay in tmp_path).
SCREENSHOTS = os.environ.get("SPARKIFY_UI_SCREENSHOTS")
#: The checks run_quality_checks runs over every hour (as the service test counts them).
QUALITY_CHECKS = 13
#: The hour the run triggered from the form loads, as its summary names it.
UI_TRIGGER_HOUR = f"{UI_TRIGGER_LOGICAL_DATE:%Y-%m-%d %H:%M} → {UI_TRIGGER_LOGICAL_DATE + timedelta(hours=1):%H:%M} UTC"

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


@contextmanager
def chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # As root and in a container: no sandbox, no GPU, no /dev/shm (often tiny); nothing from the network.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,760", f"--user-data-dir={profile}",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium, tmp_path):
    with chrome(tmp_path / "profile") as driver:
        yield driver


def save_screenshot(driver, path: Path, height: int | None = None) -> None:
    """A PNG of the window (its top ``height`` pixels, if given), reduced to a small palette: small
    enough to commit. Copied into SPARKIFY_UI_SCREENSHOTS when that is set."""
    from PIL import Image

    raw = path.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    with Image.open(raw) as image:
        image = image.convert("RGB")
        if height is not None:
            image = image.crop((0, 0, image.width, min(height, image.height)))
        image.quantize(colors=64).save(path, optimize=True)
    raw.unlink()
    assert path.stat().st_size > 5_000
    if SCREENSHOTS:
        shutil.copyfile(path, REPO / SCREENSHOTS / path.name)


def log_in(driver, api):
    """Through the login page, as a user; the wait the test goes on with."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.wait import WebDriverWait

    # The UI re-renders as it polls the API: an element found a moment ago may be gone by the time it
    # is read, and the condition is simply asked again (a real absence still ends in the timeout).
    wait = WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))
    driver.get(api.url + "/")
    wait.until(until.url_contains("/auth/login"))
    # The login page is an app of its own: its form appears once its script has run.
    wait.until(until.visibility_of_element_located((By.NAME, "username"))).send_keys(api.username)
    driver.find_element(By.NAME, "password").send_keys(api.password)
    wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
    wait.until(lambda driver: "/auth/login" not in driver.current_url)
    return wait


def dialog(wait, heading: str):
    """The open dialog whose heading starts with ``heading``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until

    return wait.until(until.visibility_of_element_located(
        (By.XPATH, f"//*[@role='dialog'][.//h2[starts-with(normalize-space(), '{heading}')]]")
    ))


def set_date_time(driver, wait, field, moment: datetime) -> None:
    """A date-time field of the trigger form (a button opening a popover with a date and a time
    input, in the UI's time zone, UTC here), set as a user types it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def shown(placeholder: str) -> list:
        return [element for element in driver.find_elements(By.CSS_SELECTOR, f"input[placeholder='{placeholder}']")
                if element.is_displayed()]

    field.click()
    (date,) = wait.until(lambda driver: shown("YYYY/MM/DD"))
    date.send_keys(Keys.CONTROL, "a")
    date.send_keys(f"{moment:%Y/%m/%d}")
    (clock,) = shown("HH:mm")
    clock.send_keys(Keys.CONTROL, "a")
    clock.send_keys(f"{moment:%H:%M}")
    clock.send_keys(Keys.ESCAPE)  # closes the popover, not the dialog
    wait.until(lambda driver: not shown("HH:mm"))
    wait.until(lambda driver: field.text == f"{moment:%b %d, %Y %H:%M}")


def test_the_grid_shows_every_run_succeeded(chromium, airflow_stack, airflow_scenario, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until

    api = airflow_stack.api
    wait = log_in(browser, api)
    browser.get(f"{api.url}/dags/{DAG_ID}")
    # The grid shows the latest 10 runs unless told otherwise: the scenario's and the other tests' runs
    # (whichever ran first) are more.
    wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Options']"))).click()
    wait.until(until.element_to_be_clickable(
        (By.CSS_SELECTOR, "[data-testid='display-dag-run-options'] button[role='combobox']")
    )).click()
    wait.until(until.element_to_be_clickable(
        (By.CSS_SELECTOR, "[data-testid='display-dag-run-options'] [role='option'][data-value='25']")
    )).click()
    wait.until(until.text_to_be_present_in_element(
        (By.CSS_SELECTOR, "[data-testid='display-dag-run-options'] button[role='combobox']"), "25"
    ))
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Options']").click()  # closes the options
    # The grid at full width, every run in view.
    wait.until(until.element_to_be_clickable(
        (By.CSS_SELECTOR, "button[aria-label='Collapse Details Panel']")
    )).click()
    runs = [run.dag_run_id for run in airflow_scenario.runs]
    tasks = [task.task_id for task in api.task_api.get_tasks(DAG_ID).tasks]
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
    save_screenshot(browser, tmp_path / "ui-grid.png")


def land_a_late_song_file(source: Path, before: datetime) -> dict:
    """Song metadata may land after the plays that need it: a song file for the song not in the
    catalog that was played most before ``before`` (title, artist and length as the plays have them),
    written into the bucket. Its title and artist are no catalog song's."""
    catalog = [json.loads(path.read_text()) for path in (source / "song_data").rglob("*.json")]
    titles, artists = {song["title"] for song in catalog}, {song["artist_name"] for song in catalog}
    played: Counter = Counter()
    for path in (source / "log_data").rglob("*.json"):
        for line in path.read_text().splitlines():
            event = json.loads(line) if line.strip() else {}
            if (event.get("page") == "NextSong" and EPOCH + timedelta(milliseconds=event["ts"]) < before
                    and event["song"] not in titles and event["artist"] not in artists):
                played[(event["song"], event["artist"], event["length"])] += 1
    assert played, f"no play before {before} of a song missing from the catalog"
    (title, artist, length), _ = max(played.items(), key=lambda item: (item[1], item[0]))
    song = {"num_songs": 1, "artist_id": "ARLATEUITEST000001", "artist_latitude": None, "artist_longitude": None,
            "artist_location": None, "artist_name": artist, "song_id": "SOLATEUITEST000001", "title": title,
            "duration": length, "year": 0}
    folder = source / "song_data" / "L" / "A" / "T"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "TRLATEUITEST000001.json").write_text(json.dumps(song))
    return song


@dataclass
class Triggered:
    run: DAGRunResponse
    #: The song file that landed just before the run was submitted.
    song: dict


@dataclass
class Backfilled:
    backfill: BackfillResponse
    runs: list[DAGRunResponse]
    #: What the dialog said the range would create, before it was submitted.
    planned: str


@pytest.fixture(scope="module")
def ui_triggered(chromium, airflow_stack, airflow_scenario, tmp_path_factory) -> Triggered:
    """A user triggers sparkify_dwh from Trigger → Single Run for a logical date the scenario did not
    run, just after a song file landed; the run once it finished."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until

    api = airflow_stack.api
    with chrome(tmp_path_factory.mktemp("trigger") / "profile") as driver:
        wait = log_in(driver, api)
        driver.get(f"{api.url}/dags/{DAG_ID}")
        wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button[data-testid='trigger-dag-button']"))).click()
        form = dialog(wait, "Trigger Dag")
        assert form.find_element(By.CSS_SELECTOR, "input[type='radio'][value='single']").is_selected()
        set_date_time(driver, wait, form.find_element(By.CSS_SELECTOR, "[data-testid='datetime-input']"),
                      UI_TRIGGER_LOGICAL_DATE)
        # The data interval inferred from the logical date, the DAG's option left off: the defaults.
        assert form.find_element(By.CSS_SELECTOR, "input[type='radio'][value='auto']").is_selected()
        assert not form.find_element(By.NAME, "element_full_restage_songs").is_selected()
        song = land_a_late_song_file(airflow_stack.source, UI_TRIGGER_LOGICAL_DATE)
        form.find_element(By.CSS_SELECTOR, "button[data-testid='trigger-dag-submit']").click()
        # The UI opens the new run's page.
        wait.until(until.url_contains(f"/dags/{DAG_ID}/runs/"))
        run_id = unquote(driver.current_url.split("/runs/", 1)[1].split("/")[0])
    (run,) = api.wait_for_runs(DAG_ID, 1, RUNS_TIMEOUT, logical_date_gte=UI_TRIGGER_LOGICAL_DATE,
                               logical_date_lt=UI_TRIGGER_LOGICAL_DATE + timedelta(hours=1))
    assert run.dag_run_id == run_id
    return Triggered(run, song)


@pytest.fixture(scope="module")
def ui_backfilled(chromium, airflow_stack, ui_triggered, tmp_path_factory) -> Backfilled:
    """Once the triggered run is done, a user backfills the next hours from Trigger → Backfill (Max
    Active Runs raised from the form's 1); the backfill and its runs once they finished. The dialog,
    filled in, is screenshot before it is submitted."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as until

    api = airflow_stack.api
    known = {backfill.id for backfill in api.backfill_api.list_backfills(dag_id=DAG_ID).backfills}
    first, last = UI_BACKFILL_START, UI_BACKFILL_START + timedelta(hours=UI_BACKFILL_HOURS - 1)
    folder = tmp_path_factory.mktemp("backfill")
    with chrome(folder / "profile") as driver:
        driver.set_window_size(1100, 900)  # the range, the runs it plans and Max Active Runs in view
        wait = log_in(driver, api)
        driver.get(f"{api.url}/dags/{DAG_ID}")
        wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button[data-testid='trigger-dag-button']"))).click()
        wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "label[for$=':radio:input:backfill']"))).click()
        form = dialog(wait, "Run Backfill")
        start, end = wait.until(lambda driver: (
            fields if len(fields := form.find_elements(By.CSS_SELECTOR, "[data-testid='datetime-input']")) == 2
            else None))
        set_date_time(driver, wait, start, first)
        set_date_time(driver, wait, end, last)
        # The dialog asks the API which runs the range makes (a dry run) and says how many.
        planned = wait.until(until.visibility_of_element_located(
            (By.XPATH, "//*[@role='dialog']//p[contains(., 'will be triggered')]")
        )).text
        # Missing Runs is the form's reprocess behaviour; Max Active Runs it proposes 1.
        assert form.find_element(By.CSS_SELECTOR, "input[type='radio'][value='none']").is_selected()
        max_active = form.find_element(By.NAME, "max_active_runs")
        assert max_active.get_attribute("value") == "1"
        max_active.send_keys(Keys.CONTROL, "a")
        max_active.send_keys(str(UI_BACKFILL_HOURS))
        # Shown for a paused DAG only (the scenario unpaused this one): its backfill runs would stay queued.
        for unpause in form.find_elements(By.XPATH, ".//label[@data-scope='checkbox'][contains(., 'Unpause')]"):
            if unpause.get_attribute("data-state") != "checked":
                unpause.click()
        save_screenshot(driver, folder / "ui-backfill.png")
        form.find_element(By.XPATH, ".//footer//button[normalize-space()='Run Backfill']").click()
        wait.until(until.invisibility_of_element(form))
    deadline = time.monotonic() + WAIT
    while not (new := [backfill for backfill in api.backfill_api.list_backfills(dag_id=DAG_ID).backfills
                       if backfill.id not in known]):
        assert time.monotonic() < deadline, "no backfill created from the dialog"
        time.sleep(1)
    (backfill,) = new
    runs = api.wait_for_runs(DAG_ID, UI_BACKFILL_HOURS, RUNS_TIMEOUT, run_type=["backfill"],
                             logical_date_gte=first, logical_date_lte=last)
    return Backfilled(api.wait_for_backfill(backfill.id), runs, planned)


def plays_by_row(warehouse: str, start: datetime, end: datetime) -> Counter:
    return Counter({row: count for row, count in warehouse_tables(warehouse)["songplays"].items()
                    if start <= row[0] < end})


def test_a_run_triggered_from_the_form_loads_the_hour_of_its_logical_date(airflow_stack, ui_triggered):
    run, hour = ui_triggered.run, (UI_TRIGGER_LOGICAL_DATE, UI_TRIGGER_LOGICAL_DATE + timedelta(hours=1))
    assert run.state == "success", run
    assert run.run_type == "manual" and run.triggered_by == "ui" and run.triggering_user_name == "admin"
    assert run.conf == {"full_restage_songs": False}
    assert run.logical_date == UI_TRIGGER_LOGICAL_DATE and UI_TRIGGER_LOGICAL_DATE >= SCENARIO_END
    assert (run.data_interval_start, run.data_interval_end) == hour
    expected = build_reference(airflow_stack.source, *hour)["songplays"]
    assert expected and plays_by_row(airflow_stack.warehouse, *hour) == expected


def test_a_backfill_from_the_dialog_runs_every_hour_of_its_range(airflow_stack, ui_backfilled):
    backfill, runs = ui_backfilled.backfill, ui_backfilled.runs
    first, end = UI_BACKFILL_START, UI_BACKFILL_START + timedelta(hours=UI_BACKFILL_HOURS)
    assert ui_backfilled.planned == f"{UI_BACKFILL_HOURS} runs will be triggered."
    assert (backfill.from_date, backfill.to_date) == (first, end - timedelta(hours=1))
    assert backfill.max_active_runs == UI_BACKFILL_HOURS and backfill.reprocess_behavior == "none"
    assert backfill.completed_at and not backfill.is_paused
    failed = {run.dag_run_id: run.state.value for run in runs if run.state != "success"}
    assert not failed
    assert sorted(run.data_interval_start for run in runs) == hours(first, end)
    assert {run.triggering_user_name for run in runs} == {"admin"}
    # Not every hour has plays (09:00 has none): a run of such an hour loads none and succeeds.
    expected = build_reference(airflow_stack.source, first, end)["songplays"]
    assert expected and plays_by_row(airflow_stack.warehouse, first, end) == expected


#: The run summary as the note's dialog shows it (run_summary.py writes it; Markdown rendered, so
#: no bold and no list markers).
SUMMARY = re.compile(
    r"Run summary: (?P<state>\w+), (?P<hour>[^\n]+ UTC)\n"
    r"Rows written: songplays (?P<songplays>[\d,]+) · users (?P<users>[\d,]+) · songs (?P<songs>[\d,]+)"
    r" · artists (?P<artists>[\d,]+) · time (?P<time>[\d,]+); late songs matched in earlier plays: (?P<late>[\d,]+)\n"
    r"Staged: (?P<events>[\d,]+) events \(event objects read: (?P<event_objects>[\d,]+)\),"
    r" (?P<staged_songs>[\d,]+) songs \(song files new or changed: (?P<song_files>[\d,]+)\)\n"
    r"Bad records set aside \(quarantine\): (?P<quarantined>[\d,]+)\n"
    r"Hours restated: (?P<restated>[^\n]+)\n"
    r"Quality checks: (?P<passed>\d+) of (?P<checks>\d+) passed$",
    re.MULTILINE,
)

#: What the warehouse holds for a run and its hour, counted from the tables themselves (not from
#: load_audit, where the summary's figures come from).
WAREHOUSE_FIGURES = {
    "songplays": "SELECT COUNT(*) FROM songplays WHERE start_time >= %(start)s AND start_time < %(end)s",
    "time": 'SELECT COUNT(*) FROM "time" WHERE start_time >= %(start)s AND start_time < %(end)s',
    # The hour's users: the upsert writes one row for each user seen in it (no later hour was loaded yet).
    "users": "SELECT COUNT(DISTINCT user_id) FROM staging_events WHERE user_id <> '' AND ts >= %(start_ms)s"
             " AND ts < %(end_ms)s",
    "songs": "SELECT COUNT(*) FROM songs WHERE song_id IN"
             " (SELECT song_id FROM staging_songs WHERE batch_id = %(batch)s)",
    "artists": "SELECT COUNT(*) FROM artists WHERE artist_id IN"
               " (SELECT artist_id FROM staging_songs WHERE batch_id = %(batch)s)",
    "late": "SELECT COUNT(*) FROM songplays WHERE start_time < %(start)s AND song_id IN"
            " (SELECT song_id FROM staging_songs WHERE batch_id = %(batch)s)",
    "events": "SELECT COALESCE(SUM(row_count), 0) FROM staged_objects WHERE table_name = 'staging_events'"
              " AND batch_id = %(batch)s",
    "event_objects": "SELECT COUNT(*) FROM staged_objects WHERE table_name = 'staging_events' AND batch_id = %(batch)s",
    "staged_songs": "SELECT COUNT(*) FROM staging_songs WHERE batch_id = %(batch)s",
    "song_files": "SELECT COUNT(*) FROM staged_objects WHERE table_name = 'staging_songs' AND batch_id = %(batch)s",
    "quarantined": "SELECT COUNT(*) FROM quarantine WHERE batch_id = %(batch)s",
}


def warehouse_figures(warehouse: str, run: DAGRunResponse) -> dict[str, int]:
    start, end = run.data_interval_start, run.data_interval_end
    parameters = {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None),
                  "start_ms": int(start.timestamp() * 1000), "end_ms": int(end.timestamp() * 1000),
                  "batch": f"{DAG_ID}/{run.dag_run_id}"}
    with psycopg.connect(warehouse) as connection:
        return {name: connection.execute(query, parameters).fetchone()[0] for name, query in WAREHOUSE_FIGURES.items()}


def test_the_run_page_shows_the_run_summary_with_the_warehouse_figures(chromium, airflow_stack, ui_triggered,
                                                                      browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until

    api, run, song = airflow_stack.api, ui_triggered.run, ui_triggered.song
    browser.set_window_size(1100, 900)
    wait = log_in(browser, api)
    browser.get(f"{api.url}/dags/{DAG_ID}/runs/{quote(run.dag_run_id, safe='')}")
    # The run's header shows the note's first line; its button opens the whole note.
    heading = wait.until(until.visibility_of_element_located(
        (By.XPATH, "//p[strong[normalize-space()='Run summary']]")
    ))
    assert heading.text.startswith(f"Run summary: success, {UI_TRIGGER_HOUR}"), heading.text
    wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Edit note']"))).click()
    note = dialog(wait, "Dag Run Note")
    text = wait.until(lambda driver: note.find_element(By.CSS_SELECTOR, "[role='list']") and note.text)
    summary = SUMMARY.search(text)
    assert summary, text
    shown = {name: int(value.replace(",", "")) for name, value in summary.groupdict().items()
             if name not in ("state", "hour", "restated")}
    assert (summary["state"], summary["hour"]) == ("success", UI_TRIGGER_HOUR)

    actual = warehouse_figures(airflow_stack.warehouse, run)
    assert {name: shown[name] for name in actual} == actual, text
    # The hour as the independent reference has it, and the song file that landed before the run:
    # staged by it, in songs and artists, and filling in the plays of it loaded before.
    hour = build_reference(airflow_stack.source, UI_TRIGGER_LOGICAL_DATE, UI_TRIGGER_LOGICAL_DATE + timedelta(hours=1))
    assert (shown["songplays"], shown["users"], shown["time"]) == (
        sum(hour["songplays"].values()), len(hour["users"]), len(hour["time"])), text
    assert shown["songs"] == shown["artists"] == shown["staged_songs"] == shown["song_files"] == 1, text
    with psycopg.connect(airflow_stack.warehouse) as connection:
        (earlier,) = connection.execute("SELECT COUNT(*) FROM songplays WHERE song_id = %s AND start_time < %s",
                                        (song["song_id"], UI_TRIGGER_LOGICAL_DATE.replace(tzinfo=None))).fetchone()
        (restated,) = connection.execute("SELECT COUNT(*) FROM restatements WHERE batch_id = %s",
                                         (f"{DAG_ID}/{run.dag_run_id}",)).fetchone()
    assert shown["late"] == earlier >= 1, text
    # The day's event file was staged by the scenario's first run: this one stages no events.
    assert (shown["events"], shown["event_objects"], shown["quarantined"]) == (0, 0, 0), text
    assert (summary["restated"], restated) == ("none", 0), text
    assert shown["passed"] == shown["checks"] == QUALITY_CHECKS, text
    (ti,) = [ti for ti in api.task_instance_api.get_task_instances(DAG_ID, run.dag_run_id).task_instances
             if ti.task_id == "run_quality_checks"]
    assert ti.state == "success"

    # The note's dialog, down to the end of the summary.
    bottom = note.find_element(By.CSS_SELECTOR, "[role='list']").rect
    save_screenshot(browser, tmp_path / "ui-run-summary.png", height=int(bottom["y"] + bottom["height"] + 40))
