"""End to end: `zhiku ui` serves the real app, headless Chromium asks, reads sources, opens a summary.

Uses Debian's ``chromium`` and ``chromium-driver`` (installed by ``tests/ui/install_browser.sh``,
never downloaded by a test tool). Screenshots go to the test's temporary folder, never the repo.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium==4.51.0)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALLER = Path(__file__).with_name("install_browser.sh")
ROOT = Path(__file__).resolve().parents[2]
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000")

pytestmark = pytest.mark.slow


def ensure_browser() -> None:
    """Install Debian's Chromium if it is missing; skip (saying why) only when that is impossible."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    result = subprocess.run(["sh", str(INSTALLER)], capture_output=True, text=True, timeout=900)
    if result.returncode or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"Chromium is absent and {INSTALLER.name} could not install it: {result.stderr.strip()[-300:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"zhiku ui exited with {server.returncode}: {server.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"zhiku ui did not answer on {url} within {timeout:.0f} s")


@pytest.fixture()
def server(ui_kb: Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, ZHIKU_LLM="extractive")
    process = subprocess.Popen(
        [sys.executable, "-m", "zhiku.cli", "ui", "--port", str(port), "--kb", str(ui_kb)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    ensure_browser()
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def visible_text(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_ask_read_sources_and_open_a_summary_in_a_real_browser(server: str, browser: webdriver.Chrome,
                                                                 tmp_path: Path) -> None:
    wait = WebDriverWait(browser, 120)
    browser.get(server)
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']")))
    box.send_keys("How much can I spend on a hotel in Berlin?")
    box.send_keys(Keys.ENTER)
    card = wait.until(EC.presence_of_element_located(
        (By.XPATH, "//*[@data-testid='stChatMessage']//*[@data-testid='stExpander']//summary"
                   "[contains(., '[1] travel-policy.md')]")))
    assert "180 euros" in visible_text(browser)
    card.click()
    wait.until(lambda d: "Download travel-policy.md" in visible_text(d))
    browser.save_screenshot(str(tmp_path / "chat.png"))

    browser.find_element(By.CSS_SELECTOR, "[data-testid='stSidebarNav'] a[href$='/documents']").click()
    chooser = wait.until(EC.element_to_be_clickable(
        (By.XPATH, "//*[@data-testid='stSelectbox'][.//*[contains(text(), 'Open a document')]]//input")))
    chooser.click()
    chooser.send_keys("Travel policy")
    chooser.send_keys(Keys.ENTER)
    summarize = wait.until(EC.element_to_be_clickable((By.XPATH, "//button[.//*[text()='Summarize']]")))
    summarize.click()
    wait.until(lambda d: "Summary by extractive" in visible_text(d))
    text = visible_text(browser)
    assert "Employees may book hotels" in text and "Traceback" not in text
    browser.save_screenshot(str(tmp_path / "summary.png"))
    keep = os.environ.get("ZHIKU_SCREENSHOTS")  # set it to look at the screenshots after the run
    if keep:
        for shot in ("chat.png", "summary.png"):
            shutil.copy(tmp_path / shot, Path(keep) / shot)
