"""The console in headless Chromium against a real worker and the real broker: the demo
fault opens an incident, the list shows it within seconds, the incident page names the
culprit and draws its chart, and the buttons change the incident on ``aiops.incidents`` and
in the page; an approved action is dispatched once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.scenario import ROOT_CAUSE, STEP_S, ScenarioShape, config_dir
from tests.integration.test_incident_flow import incident_worker, replay
from tests.kafka_harness import BrokerHandle, WorkerProcess, consume_all, free_port

pytestmark = pytest.mark.kafka

CHROMIUM = os.environ.get("AIOPS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AIOPS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
# where to save the README's screenshots (not saved when unset)
SCREENSHOTS = os.environ.get("AIOPS_TEST_SCREENSHOTS", "")
# the fault stays on until the data ends: the incident is still open when the browser looks
OPEN_FAULT = ScenarioShape(after_steps=0)

webdriver = pytest.importorskip("selenium.webdriver")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    _missing = (
        f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
        "bash .ci/install-producers installs them"
    )
    if os.environ.get("AIOPS_REQUIRE_PRODUCERS") == "1":
        pytest.fail(_missing, pytrace=False)
    pytest.skip(_missing, allow_module_level=True)

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class ConsoleProcess:
    """``aiops console`` over a worker's topics, with one user."""

    def __init__(
        self, worker: WorkerProcess, tmp: Path, users: str = "{alice: wonderland}"
    ) -> None:
        self.port = free_port()
        self.log = tmp / f"console-{self.port}.log"
        env = worker.env()
        env.update(
            {
                "AIOPS_CONSOLE__PORT": str(self.port),
                "AIOPS_CONSOLE__USERS": users,
                "AIOPS_WORKER__LOG_LEVEL": env.get("AIOPS_WORKER__LOG_LEVEL", "info"),
            }
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "console"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"console exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if orjson.loads(r.read()).get("ready"):
                        return
            except OSError:  # not listening yet, or 503 while it reads the topics
                pass
            time.sleep(0.3)
        raise RuntimeError(f"console not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=20)


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1100")
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def records_of(bootstrap: str, topic: str, incident_id: str) -> list[Any]:
    found = asyncio.run(consume_all(bootstrap, topic, idle_s=2, timeout_s=30))
    return [r for r in found if orjson.loads(r.value).get("id") == incident_id]


def snapshots(bootstrap: str, topic: str, incident_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records_of(bootstrap, topic, incident_id)]


def wait_for(driver: Any, predicate: Any, timeout: float, message: str) -> Any:
    def check(d: Any) -> Any:
        try:
            return predicate(d)
        except StaleElementReferenceException:
            return False  # a live update replaced the element: look again

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(check, message)


def facts(driver: Any) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, ".facts").text)


def test_console_shows_the_incident_and_its_buttons_change_it(
    kafka: BrokerHandle, tmp_path: Path, browser: Any
) -> None:
    # the demo's rules, with the restart of the culprit waiting for a person's approval
    rules = (config_dir() / "remediation.yaml").read_text()
    assert "mode: auto" in rules
    remediation = tmp_path / "remediation.yaml"
    remediation.write_text(rules.replace("mode: auto", "mode: approval"))
    worker = incident_worker(kafka, tmp_path, "console")
    worker.extra_env["AIOPS_INCIDENTS__REMEDIATION_FILE"] = str(remediation)
    worker.start()
    console = ConsoleProcess(worker, tmp_path)
    try:
        console.wait_ready()
        browser.get(f"{console.url}/login?next=/%3Fstate%3Dopen")
        browser.find_element(By.NAME, "user").send_keys("alice")
        browser.find_element(By.NAME, "password").send_keys("wonderland")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait_for(browser, lambda d: d.find_element(By.ID, "incident-rows"), 10, "list page")
        wait_for(
            browser,
            lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class"),
            10,
            "live updates connected",
        )

        # live data ending now, so that the page's ages read as a responder would see them;
        # replayed beside the browser, which watches the list page meanwhile
        start = time.time() - OPEN_FAULT.total_steps * STEP_S
        replayer = threading.Thread(
            target=lambda: asyncio.run(replay(kafka.bootstrap, worker.topics, start, OPEN_FAULT))
        )
        replayer.start()
        row = wait_for(
            browser,
            lambda d: d.find_element(By.CSS_SELECTOR, "#incident-rows tr[data-id]"),
            180,
            f"no incident row; worker log:\n{worker.log_text()[-2000:]}",
        )
        seen_at = time.time()
        incident_id = row.get_attribute("data-id")
        assert incident_id
        replayer.join(timeout=300)
        first = records_of(kafka.bootstrap, worker.topics["incidents"], incident_id)[0]
        assert orjson.loads(first.value)["state"] == "opened"
        # the page was not reloaded: the row came by a live update, seconds after the snapshot
        assert seen_at - first.timestamp / 1e3 < 5.0, seen_at - first.timestamp / 1e3

        browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{incident_id}'] a").click()
        wait_for(
            browser,
            lambda d: (
                d.find_element(By.CSS_SELECTOR, "ol.causes li.top .culprit").text == ROOT_CAUSE
            ),
            60,
            "the culprit is not on top",
        )
        chart = browser.find_element(By.CSS_SELECTOR, "ol.causes li.top img.chart")
        wait_for(
            browser,
            lambda d: d.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", chart
            ),
            30,
            "the culprit's chart did not load",
        )

        browser.find_element(By.ID, "acknowledge").click()
        wait_for(browser, lambda d: "acknowledged by alice" in facts(d), 15, "acknowledgement")
        acked = snapshots(kafka.bootstrap, worker.topics["incidents"], incident_id)[-1]
        assert acked["acknowledged_by"] == "alice"
        assert any(e["text"] == "acknowledged by alice" for e in acked["timeline"])

        approve = wait_for(
            browser, lambda d: d.find_element(By.CSS_SELECTOR, "button.approve"), 30, "pending"
        )
        action_row = approve.find_element(By.XPATH, "./ancestor::tr")
        action_id = action_row.get_attribute("data-action")
        assert action_row.find_element(By.CSS_SELECTOR, "td").text.startswith("restart")
        approve.click()
        status = f"tr[data-action='{action_id}'] .status"
        wait_for(
            browser,
            lambda d: d.find_element(By.CSS_SELECTOR, status).text == "dispatched by alice",
            15,
            "the page did not show the dispatch",
        )

        Select(browser.find_element(By.NAME, "duration_s")).select_by_value("3600")
        browser.find_element(By.NAME, "comment").send_keys("deploy in progress")
        browser.find_element(By.ID, "silence").click()
        wait_for(browser, lambda d: "silenced until" in facts(d), 15, "the silence")
        latest = snapshots(kafka.bootstrap, worker.topics["incidents"], incident_id)[-1]
        assert latest["silenced"] and latest["acknowledged_by"] == "alice"
        assert latest["state"] != "resolved"

        records = asyncio.run(
            consume_all(kafka.bootstrap, worker.topics["actions"], idle_s=2, timeout_s=30)
        )
        actions = [orjson.loads(r.value) for r in records]
        dispatched = [a for a in actions if a["id"] == action_id and a["status"] == "dispatched"]
        assert len(dispatched) == 1, actions
        assert dispatched[0]["decided_by"] == "alice"

        if SCREENSHOTS:  # the pictures in the README
            folder = Path(SCREENSHOTS)
            folder.mkdir(parents=True, exist_ok=True)
            wait_for(browser, lambda d: not d.find_element(By.ID, "flash").is_displayed(), 10, "")
            browser.save_screenshot(str(folder / "console-incident.png"))
            browser.get(f"{console.url}/")
            wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "tr[data-id]"), 10, "")
            browser.save_screenshot(str(folder / "console-list.png"))
    finally:
        console.stop()
        worker.stop()
