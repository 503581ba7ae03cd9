"""The search page in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven
by selenium; nothing is downloaded at test time), against a real `ernte serve` process over a
harvested sample. `make test` installs Chromium; where it cannot, this test skips and says why.
Screenshots are saved under the test's temporary directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from tests.web_server import (
    HOSTILE,
    HOSTILE_TITLE,
    SEED,
    RunningServer,
    ernte_serve,
    harvest_sample,
)

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=de-DE",
)


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "Chromium is not installed (apt-get install chromium chromium-driver; "
            "`make test` does it where apt-get can)"
        )
    return browser, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    _chromium()
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    harvest_sample(data_dir)
    with ernte_serve(data_dir, data_dir.parent / "serve.log") as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    browser_path, driver_path = _chromium()
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must not look for a driver online

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def _total(driver: WebDriver) -> int:
    return int(driver.find_element(By.ID, "total").get_attribute("data-total"))


def _no_alert(driver: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def test_search_tick_a_facet_open_the_record(
    server: RunningServer, browser: WebDriver, tmp_path: Path
) -> None:
    driver = browser
    driver.get(server.url + "/")
    box = driver.find_element(By.ID, "q")
    assert driver.find_element(By.CSS_SELECTOR, "label[for=q]").text == "Suchbegriffe"
    box.send_keys("Stadtteile", Keys.ENTER)
    _wait(driver, seen.url_contains("q=Stadtteile"))
    hits = [e.get_attribute("data-id") for e in driver.find_elements(By.CSS_SELECTOR, "li.hit")]
    assert SEED in hits
    before = _total(driver)
    assert before > 0
    driver.save_screenshot(str(tmp_path / "1-search.png"))

    # tick `Soziale Stadt` with the keyboard, as a screen-reader user would
    facet = driver.find_element(
        By.CSS_SELECTOR, 'input[type=checkbox][value="subject:Soziale Stadt"]'
    )
    label = driver.find_element(By.CSS_SELECTOR, f"label[for={facet.get_attribute('id')}]")
    assert "Soziale Stadt" in label.text
    facet.send_keys(Keys.SPACE)
    _wait(driver, seen.url_contains("filter="))
    state = parse_qs(urlsplit(driver.current_url).query)
    assert state["q"] == ["Stadtteile"] and state["filter"] == ["subject:Soziale Stadt"]
    after = _total(driver)
    assert 0 < after < before
    ticked = driver.find_element(
        By.CSS_SELECTOR, 'input[type=checkbox][value="subject:Soziale Stadt"]'
    )
    assert ticked.is_selected()
    assert driver.switch_to.active_element == ticked  # the keyboard focus stayed on the facet
    assert driver.find_elements(By.CSS_SELECTOR, ".timeline svg rect")
    assert driver.find_elements(By.CSS_SELECTOR, "li.hit mark")
    driver.save_screenshot(str(tmp_path / "2-facet.png"))

    # the URL is the whole state: opened afresh it shows the same search
    driver.get(driver.current_url)
    assert _total(driver) == after

    link = driver.find_element(By.CSS_SELECTOR, f'li.hit[data-id="{SEED}"] h3 a')
    link.click()
    heading = _wait(driver, seen.presence_of_element_located((By.TAG_NAME, "h1")))
    assert heading.text == "Städte in sozialer Verantwortung"
    page = driver.find_element(By.ID, "inhalt").text
    assert "Kocks, Martina" in page and "Zeitschriftenaufsatz" in page
    issn = driver.find_element(By.LINK_TEXT, "0303-2493")
    assert issn.get_attribute("href").startswith("https://portal.issn.org/")
    handle = driver.find_element(By.LINK_TEXT, "https://orlis.difu.de/handle/difu/167832")
    assert handle.get_attribute("href") == "https://orlis.difu.de/handle/difu/167832"
    driver.save_screenshot(str(tmp_path / "3-record.png"))
    assert all(
        (tmp_path / name).stat().st_size > 10_000 for name in ("1-search.png", "3-record.png")
    )


def test_hostile_record_text_stays_text_in_the_browser(
    server: RunningServer, browser: WebDriver, tmp_path: Path
) -> None:
    driver = browser
    driver.get(f"{server.url}/?q=eingeschleusten")
    _no_alert(driver)
    title = driver.find_element(By.CSS_SELECTOR, f'li.hit[data-id="{HOSTILE}"] h3 a')
    assert title.text == HOSTILE_TITLE
    title.click()
    _no_alert(driver)
    assert driver.find_element(By.TAG_NAME, "h1").text == HOSTILE_TITLE
    assert not driver.find_elements(By.CSS_SELECTOR, "#inhalt script, #inhalt img, #inhalt b")
    hrefs = [a.get_attribute("href") or "" for a in driver.find_elements(By.TAG_NAME, "a")]
    assert not [h for h in hrefs if h.lower().startswith("javascript:")]
    driver.save_screenshot(str(tmp_path / "hostile.png"))


def test_readable_on_a_phone(server: RunningServer, browser: WebDriver, tmp_path: Path) -> None:
    driver = browser
    driver.set_window_size(390, 844)
    driver.get(f"{server.url}/?q=Stadtteile")
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    driver.save_screenshot(str(tmp_path / "phone.png"))
