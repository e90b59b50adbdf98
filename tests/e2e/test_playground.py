"""The playground in headless Chromium: a job goes pending -> processing (text streaming in) -> completed.

With job tokens on, the playground follows jobs with EventSource, and a page on another origin follows a job
with its token alone (and can read no other job, nor cancel).

The app runs on a live port with the mock provider; the test plays Inngest (see tests/e2e/live.py) and
holds each queued job pending until the page has shown it, so every state is observed, not raced.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from agentic.domain.jobs import Job, JobStatus
from agentic.domain.llm import LLMRequest, Message
from agentic.providers.mock import MockLLMRepository
from tests.e2e.live import EVENT_CANCEL, LiveStack, live_stack

CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_BINARY", "/usr/bin/chromedriver"))
_MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(bool(_MISSING), reason=f"headless browser tests need {' and '.join(_MISSING)} "
                                               "(apt-get install chromium chromium-driver)"),
]

T = TypeVar("T")
Driver = Any  # selenium's WebDriver; imported lazily so collection works without selenium


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    from selenium import webdriver

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1100", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stack(sqlite_url: str) -> Iterator[LiveStack]:
    with live_stack(sqlite_url, hold=True) as live:
        yield live


# ---- helpers ---------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T], timeout: float = 20, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.03)


def text(driver: Driver, element_id: str) -> str:
    value = driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)
    return str(value)


def status(driver: Driver) -> str:
    return text(driver, "status")


def visible(driver: Driver, element_id: str) -> bool:
    return bool(driver.execute_script("return !document.getElementById(arguments[0]).hidden", element_id))


def open_page(driver: Driver, stack: LiveStack) -> None:
    driver.get(stack.url + "/")
    wait_for(lambda: driver.execute_script("return document.documentElement.dataset.ready") == "true",
             what="the page script")


def fill(driver: Driver, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(value)


def submit(driver: Driver, stack: LiveStack, prompt: str, model: str, max_tokens: int | None = None,
           key: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    fill(driver, "api-key", key if key is not None else stack.api_key)
    fill(driver, "model", model)
    fill(driver, "max-tokens", str(max_tokens) if max_tokens else "")
    fill(driver, "prompt", prompt)
    driver.find_element(By.ID, "send").click()


def mock_answer(prompt: str, model: str, max_tokens: int | None = None) -> str:
    request = LLMRequest(messages=[Message(role="user", content=prompt)], model=model, max_tokens=max_tokens)
    return MockLLMRepository().generate(request).content


def timeline(driver: Driver) -> list[str]:
    return list(driver.execute_script(
        "return [...document.querySelectorAll('#timeline li')].map(li => li.dataset.status)"))


# ---- the tests -------------------------------------------------------------------------------------------------


def test_a_queued_job_goes_pending_then_streams_then_completes(browser: Driver, stack: LiveStack) -> None:
    from selenium.webdriver.common.by import By

    prompt, model, max_tokens = "Explain durable execution", "mock-slow-1", 120
    open_page(browser, stack)
    submit(browser, stack, prompt, model, max_tokens)

    wait_for(lambda: status(browser) == "pending", what="status pending")
    job_id = text(browser, "job-id")
    assert job_id.startswith("job_")
    assert text(browser, "output") == ""
    assert browser.find_element(By.ID, "cancel").is_enabled()

    stack.release()  # the fake executor starts the job now
    wait_for(lambda: status(browser) == "processing", what="status processing")
    seen: list[int] = []  # output lengths observed while the job was still processing
    while status(browser) == "processing":
        length = len(text(browser, "output"))
        if length and (not seen or length != seen[-1]):
            seen.append(length)
        time.sleep(0.03)
    assert len(seen) >= 3, f"text should stream in pieces while processing, saw lengths {seen}"
    assert seen == sorted(seen)

    wait_for(lambda: status(browser) == "completed", what="status completed")
    assert text(browser, "output") == mock_answer(prompt, model, max_tokens)
    assert visible(browser, "usage")
    assert re.search(r"Tokens: \d+ prompt \+ \d+ completion = \d+ total", text(browser, "usage"))
    assert timeline(browser) == ["sending", "pending", "processing", "completed"]
    assert not browser.find_element(By.ID, "cancel").is_enabled()
    assert not visible(browser, "error")

    # The recent-jobs table lists it; the key survives a reload (localStorage).
    wait_for(lambda: job_id in text(browser, "jobs") and "completed" in text(browser, "jobs"),
             what="the job in the recent jobs list")
    browser.refresh()
    wait_for(lambda: browser.execute_script("return document.documentElement.dataset.ready") == "true")
    assert browser.find_element(By.ID, "api-key").get_attribute("value") == stack.api_key
    assert browser.find_element(By.ID, "model").get_attribute("value") == model

    # Opening the job from the list shows it again, as stored.
    wait_for(lambda: job_id in text(browser, "jobs"), what="the recent jobs list after the reload")
    browser.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job-id="{job_id}"] button').click()
    wait_for(lambda: status(browser) == "completed" and text(browser, "job-id") == job_id, what="the opened job")
    assert text(browser, "output") == mock_answer(prompt, model, max_tokens)
    assert "Tokens:" in text(browser, "usage")
    assert stack.errors == []


def test_a_quick_model_answers_directly(browser: Driver, stack: LiveStack) -> None:
    prompt, model = "Say something quick", "mock-quick-1"
    open_page(browser, stack)
    submit(browser, stack, prompt, model, 12)
    wait_for(lambda: status(browser) == "completed", what="status completed")
    assert text(browser, "output") == mock_answer(prompt, model, 12)
    assert text(browser, "job-id") == "–"
    assert "Tokens:" in text(browser, "usage")
    assert timeline(browser) == ["sending", "completed"]
    assert stack.events == []


def test_cancel_stops_a_running_job_and_keeps_its_partial_text(browser: Driver, stack: LiveStack) -> None:
    from selenium.webdriver.common.by import By

    prompt, model, max_tokens = "Write at length", "mock-slow-1", 3000
    open_page(browser, stack)
    submit(browser, stack, prompt, model, max_tokens)
    wait_for(lambda: status(browser) == "pending", what="status pending")
    job_id = text(browser, "job-id")
    stack.release()
    wait_for(lambda: status(browser) == "processing" and len(text(browser, "output")) > 20,
             what="streamed text")

    browser.find_element(By.ID, "cancel").click()
    wait_for(lambda: status(browser) == "cancelled", timeout=15, what="status cancelled")
    partial = text(browser, "output")
    assert partial and mock_answer(prompt, model, max_tokens).startswith(partial.rstrip())
    assert len(partial) < len(mock_answer(prompt, model, max_tokens))
    assert not browser.find_element(By.ID, "cancel").is_enabled()
    assert "cancelled" in text(browser, "usage")

    def finished_job() -> Job | None:
        job = stack.container.jobs.get(job_id)
        return job if job is not None and job.is_terminal else None

    job = wait_for(finished_job, what="the job row to finish")
    assert job is not None and job.status is JobStatus.CANCELLED
    assert EVENT_CANCEL in stack.event_names()


def test_a_pending_job_can_be_cancelled_before_it_starts(browser: Driver, stack: LiveStack) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, stack)
    submit(browser, stack, "Not needed after all", "mock-slow-1", 50)
    wait_for(lambda: status(browser) == "pending", what="status pending")
    browser.find_element(By.ID, "cancel").click()
    wait_for(lambda: status(browser) == "cancelled", what="status cancelled")
    assert text(browser, "output") == ""
    job = stack.container.jobs.get(text(browser, "job-id"))
    assert job is not None and job.status is JobStatus.CANCELLED


def test_an_invalid_key_shows_the_problem_details(browser: Driver, stack: LiveStack) -> None:
    open_page(browser, stack)
    submit(browser, stack, "hello", "mock-quick-1", key="agk_" + "n" * 40)
    wait_for(lambda: visible(browser, "error"), what="the error box")
    assert "(401)" in text(browser, "error-title")
    assert text(browser, "error-code")  # the problem's machine-readable code is shown
    assert status(browser) == "error"


def test_a_validation_problem_names_the_field(browser: Driver, stack: LiveStack) -> None:
    open_page(browser, stack)
    submit(browser, stack, "hello", "not a model id!")
    wait_for(lambda: visible(browser, "error"), what="the error box")
    assert "(422)" in text(browser, "error-title")
    assert "field: model" in text(browser, "error-code")
    assert text(browser, "error-detail")


def test_missing_input_is_reported_without_a_request(browser: Driver, stack: LiveStack) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, stack)
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: visible(browser, "error"), what="the error box")
    assert "API key" in text(browser, "error-detail")
    assert browser.switch_to.active_element.get_attribute("id") == "api-key"


def test_the_page_has_no_console_errors(browser: Driver, stack: LiveStack) -> None:
    open_page(browser, stack)
    logs = browser.get_log("browser")
    assert [entry for entry in logs if entry.get("level") == "SEVERE"] == []


# ---- job tokens: EventSource, and a page on another origin ---------------------------------------------------

TOKEN_SECRET = "e2e-job-token-secret-" + "x" * 20

FOLLOWER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>follower on another origin</title></head>
<body><div id="status"></div><pre id="out"></pre>
<script>
"use strict";
const p = new URLSearchParams(location.hash.slice(1));
const api = p.get("api"), job = p.get("job"), token = p.get("token"), other = p.get("other");
const results = {};
window.results = results;
async function probe(name, url, init) {
  try { results[name] = (await fetch(url, init)).status; }
  catch (error) { results[name] = "blocked"; }  // the browser refused to let this page read the answer
}
(async () => {
  const q = "token=" + encodeURIComponent(token);
  await probe("own", `${api}/api/jobs/${job}?${q}`);
  await probe("own_by_bearer", `${api}/api/jobs/${job}`, { headers: { Authorization: "Bearer " + token } });
  await probe("other", `${api}/api/jobs/${other}?${q}`);
  await probe("other_events", `${api}/api/jobs/${other}/events?${q}`);
  await probe("cancel_by_bearer", `${api}/api/jobs/${job}/cancel`,
              { method: "POST", headers: { Authorization: "Bearer " + token } });
  await probe("cancel_by_query", `${api}/api/jobs/${job}/cancel?${q}`, { method: "POST" });
  await probe("list", `${api}/api/jobs?${q}`);
  await probe("no_token", `${api}/api/jobs/${job}`);
  document.documentElement.dataset.probed = "true";
  let text = "";
  const source = new EventSource(`${api}/api/jobs/${job}/events?${q}`);
  const out = document.getElementById("out"), status = document.getElementById("status");
  source.addEventListener("status", (e) => { status.textContent = JSON.parse(e.data).status; });
  source.addEventListener("delta", (e) => { text += JSON.parse(e.data).text; out.textContent = text; });
  source.addEventListener("reset", (e) => {
    text = [...text].slice(0, JSON.parse(e.data).offset || 0).join(""); out.textContent = text;
  });
  source.addEventListener("done", (e) => { source.close(); status.textContent = "done:" + JSON.parse(e.data).status; });
})();
</script></body></html>
"""


class _QuietPageHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@contextmanager
def page_server(html: str) -> Iterator[str]:
    """A second loopback origin serving one page (the API's origin differs by its port)."""
    server = make_server("127.0.0.1", 0, Response(html, mimetype="text/html"), threaded=True,
                         request_handler=_QuietPageHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()



def queue(stack: LiveStack, prompt: str, max_tokens: int) -> dict[str, Any]:
    response = httpx.post(f"{stack.url}/api/llm/generate", headers={"Authorization": f"Bearer {stack.api_key}"},
                          json={"model": "mock-slow-1", "max_tokens": max_tokens,
                                "messages": [{"role": "user", "content": prompt}]}, timeout=10)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_page_on_another_origin_follows_a_job_with_its_token_alone(browser: Driver, sqlite_url: str) -> None:
    with page_server(FOLLOWER_PAGE) as page_origin, \
            live_stack(sqlite_url, hold=True, job_token_secret=TOKEN_SECRET, cors_allowed_origins=page_origin,
                       sse_max_seconds=0.5) as stack:  # streams end early: EventSource must reconnect
        followed = queue(stack, "Follow me from afar", 150)
        other = queue(stack, "Not yours to read", 20)
        assert followed["token"] and other["token"]
        fragment = urlencode({"api": stack.url, "job": followed["job_id"], "token": followed["token"],
                              "other": other["job_id"]})
        browser.get(f"{page_origin}/follow.html#{fragment}")
        wait_for(lambda: browser.execute_script("return document.documentElement.dataset.probed") == "true",
                 what="the page's probes")
        results = browser.execute_script("return window.results")
        assert results == {
            "own": 200, "own_by_bearer": 200,          # the token reads its job, cross-origin
            "other": 404, "other_events": 404,         # not another job (readable: a plain not-found)
            "cancel_by_bearer": "blocked",             # no CORS on cancel: the preflight fails, nothing is sent
            "cancel_by_query": "blocked",              # sent without a preflight, refused (401), unreadable
            "list": "blocked",
            "no_token": 401,
        }, results
        for job_id in (followed["job_id"], other["job_id"]):
            job = stack.container.jobs.get(job_id)
            assert job is not None and job.status is JobStatus.PENDING and job.cancel_requested_at is None

        wait_for(lambda: text(browser, "status") == "pending", what="the stream's first status")
        stack.release()
        wait_for(lambda: text(browser, "status") == "done:completed", what="the done event")
        assert text(browser, "out") == mock_answer("Follow me from afar", "mock-slow-1", 150)
        connections = browser.execute_script(
            "return performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes(arguments[0] + '/events?')).length", followed["job_id"])
        assert connections >= 2, "the stream should have been resumed across the server's time limit"
        assert stack.errors == []


def test_the_playground_follows_a_job_with_eventsource_and_its_token(browser: Driver, sqlite_url: str) -> None:
    prompt, model, max_tokens = "Stream with a token", "mock-slow-1", 120
    with live_stack(sqlite_url, hold=True, job_token_secret=TOKEN_SECRET) as stack:
        open_page(browser, stack)
        submit(browser, stack, prompt, model, max_tokens)
        wait_for(lambda: status(browser) == "pending", what="status pending")
        stack.release()
        wait_for(lambda: status(browser) == "completed", what="status completed")
        assert text(browser, "output") == mock_answer(prompt, model, max_tokens)
        assert timeline(browser) == ["sending", "pending", "processing", "completed"]
        streams = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/events'))")
        assert streams and all("token=agt_" in url for url in streams), streams
        assert stack.errors == []
