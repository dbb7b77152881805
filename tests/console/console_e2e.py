"""The web console in a real browser: Debian's headless Chromium driven by Selenium against a
daemon and simulator that tests/console.rs starts on loopback. Each step prints one line saying
what it saw (the Rust test echoes them); any unmet expectation exits 1, naming the step.

Environment (set by tests/console.rs; the same names work by hand against `campaignd serve`):
  CONSOLE_URL          the console, e.g. http://127.0.0.1:8780/console/
  CONSOLE_TOKEN        an API token of that daemon
  CONSOLE_UPLOAD_FILE  a 10,000-line recipients file (one duplicate, one bad line)
  CONSOLE_SLOW_ID      a slow draft with recipients to start, pause and resume (group CONSOLE_GROUP)
  CONSOLE_GROUP        the task group both campaigns share
  CONSOLE_SCREENSHOTS  folder for one PNG per page
  CONSOLE_TIMEOUT      seconds for the whole script (every wait is bounded by it too)
"""

import json
import os
import sys
import time
from urllib.parse import urlparse

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["CONSOLE_URL"]
TOKEN = os.environ["CONSOLE_TOKEN"]
UPLOAD = os.environ["CONSOLE_UPLOAD_FILE"]
SLOW_ID = os.environ["CONSOLE_SLOW_ID"]
GROUP = os.environ["CONSOLE_GROUP"]
SHOTS = os.environ["CONSOLE_SCREENSHOTS"]
DEADLINE = time.monotonic() + float(os.environ.get("CONSOLE_TIMEOUT", "150"))
ORIGIN = "{0.scheme}://{0.netloc}".format(urlparse(URL))


def say(step, text):
    print("%-13s %s" % (step + ":", text), flush=True)


def fail(step, why):
    say(step, "FAILED: " + why)
    sys.exit(1)


def left(at_most):
    """Seconds a wait may take: at most `at_most`, and never past the script's deadline."""
    return max(1.0, min(at_most, DEADLINE - time.monotonic()))


def wait(driver, step, what, condition, at_most=20):
    # Pages that refresh themselves replace their elements; one read between two renders is
    # stale, and the next poll reads the new ones.
    try:
        return WebDriverWait(
            driver, left(at_most), poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition)
    except TimeoutException:
        shot(driver, "failed-" + step)
        fail(step, "timed out waiting for " + what)


def shot(driver, name):
    """A PNG of the whole page: the window grows to the page's height (at most 2400 px) for it."""
    path = os.path.join(SHOTS, name + ".png")
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    grown = min(max(height + 140, size["height"]), 2400)
    if grown != size["height"]:
        driver.set_window_size(size["width"], grown)
        time.sleep(0.2)
    driver.save_screenshot(path)
    if grown != size["height"]:
        driver.set_window_size(size["width"], size["height"])
    return path


def one_line(text):
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())


def text_of(driver, css):
    els = driver.find_elements(By.CSS_SELECTOR, css)
    return els[0].text.strip() if els else ""


def go(driver, hash_route):
    driver.execute_script("location.hash = arguments[0]", hash_route)


def start_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--lang=en-US",
    ]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(left(30))
    driver.set_script_timeout(left(30))
    return driver


def campaign_state(driver):
    return driver.find_element(By.ID, "campaign-title").get_attribute("data-state") or ""


def wait_state(driver, step, states, at_most):
    wait(
        driver,
        step,
        "state in %s" % (states,),
        lambda d: campaign_state(d) in states,
        at_most,
    )
    return campaign_state(driver)


def buttons(driver):
    return {
        b.get_attribute("data-action"): b.is_enabled()
        for b in driver.find_elements(By.CSS_SELECTOR, "#campaign-actions button")
    }


def main():
    driver = start_browser()
    try:
        run(driver)
    finally:
        driver.quit()


def run(driver):
    # 1. Sign in: a wrong token is refused with a clear message, the right one lists campaigns.
    driver.get(URL)
    token = wait(driver, "signin", "the token field", EC.element_to_be_clickable((By.ID, "token")))
    say("signin", "page title %r, sign-in form shown" % driver.title)
    token.send_keys("not-the-token-0123456789")
    token.send_keys(Keys.ENTER)
    wait(driver, "signin", "the 401 message", lambda d: "401" in text_of(d, "#signin-status"))
    say("signin", "wrong token -> %r" % text_of(driver, "#signin-status"))
    shot(driver, "signin")
    token = driver.find_element(By.ID, "token")
    token.clear()
    token.send_keys(TOKEN)
    token.send_keys(Keys.ENTER)
    wait(driver, "signin", "the campaign list", EC.presence_of_element_located((By.CSS_SELECTOR, "table.campaigns")))
    stored = driver.execute_script("return sessionStorage.getItem('campaignd.console.token') === arguments[0]", TOKEN)
    cookies = driver.get_cookies()
    if not stored or cookies or TOKEN in driver.current_url:
        fail("signin", "token storage: sessionStorage %s, cookies %s, url %s" % (stored, cookies, driver.current_url))
    say("signin", "right token -> campaign list; token in sessionStorage only (no cookie, not in the URL)")

    # 2. Create through the form: a 51-character title is refused beside the title field.
    go(driver, "#/new")
    name = wait(driver, "create", "the form", EC.element_to_be_clickable((By.ID, "name")))
    labelled = driver.execute_script(
        "return [...document.querySelectorAll('#create-form input, #create-form select, #create-form textarea')]"
        ".filter(c => c.type !== 'hidden').map(c => [c.id, c.labels.length > 0])"
    )
    unlabelled = [c for c, ok in labelled if not ok]
    if unlabelled:
        fail("create", "controls without a label: %s" % unlabelled)
    say("create", "form has %d controls, every one labelled" % len(labelled))
    # Schedules are typed in Beijing time and echoed in local time (set by script: the
    # datetime-local widget's keystrokes depend on the browser's locale).
    driver.execute_script(
        "const s = document.getElementById('schedule'); s.value = '2030-01-02T09:30';"
        "s.dispatchEvent(new Event('input'));"
    )
    say("create", "schedule 2030-01-02 09:30 -> %r" % text_of(driver, "#schedule-echo"))
    if "2030-01-02 09:30 Beijing" not in text_of(driver, "#schedule-echo") or "local" not in text_of(driver, "#schedule-echo"):
        fail("create", "the schedule echo")
    driver.execute_script(
        "const s = document.getElementById('schedule'); s.value = ''; s.dispatchEvent(new Event('input'));"
    )
    name.send_keys("春季促销 A")
    Select(driver.find_element(By.ID, "mode")).select_by_value("list")
    driver.find_element(By.ID, "n-title").send_keys("x" * 51)
    driver.find_element(By.ID, "n-body").send_keys("全场八折，今天有效")
    driver.find_element(By.ID, "group").send_keys(GROUP)
    driver.find_element(By.ID, "create-submit").click()
    wait(driver, "create", "the title's field error", lambda d: text_of(d, "#n-title-error") != "")
    say("create", "51-character title -> beside the title: %r" % text_of(driver, "#n-title-error"))
    invalid = driver.find_element(By.ID, "n-title").get_attribute("aria-invalid")
    say("create", "title aria-invalid=%s; summary %r" % (invalid, text_of(driver, "#form-errors")))
    shot(driver, "create-error")
    title = driver.find_element(By.ID, "n-title")
    title.clear()
    title.send_keys("春季大促")
    driver.find_element(By.ID, "create-submit").click()
    wait(driver, "create", "the campaign page", lambda d: d.current_url.split("#")[-1].startswith("/campaigns/"))
    made_id = driver.current_url.rsplit("/", 1)[-1]
    state = wait_state(driver, "create", ["draft"], 20)
    say("create", "created campaign %s, state %s, title %r" % (made_id, state, text_of(driver, "#campaign-title")))

    # 3. Upload a 10,000-line file; the counts and the first rejected lines come back.
    file_input = wait(driver, "upload", "the file input", EC.presence_of_element_located((By.ID, "recipients-file")))
    file_input.send_keys(UPLOAD)
    driver.find_element(By.ID, "upload-submit").click()
    wait(driver, "upload", "the upload counts", EC.presence_of_element_located((By.ID, "upload-counts")), 60)
    counts = {
        dd.get_attribute("data-count"): dd.text
        for dd in driver.find_elements(By.CSS_SELECTOR, "#upload-counts dd")
    }
    bar = driver.find_element(By.ID, "upload-progress")
    say("upload", "counts %s; progress bar %s/%s" % (counts, bar.get_attribute("value"), bar.get_attribute("max")))
    if counts.get("accepted") != "9,998" or counts.get("duplicates") != "1" or counts.get("rejected") != "1":
        fail("upload", "expected 9,998 accepted, 1 duplicate, 1 rejected")
    rejected = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#rejected-lines tbody tr")]
    say("upload", "first rejected lines: %s" % rejected)
    shot(driver, "upload")

    # 4. Start it and watch it reach `completed`; read the per-code table.
    before = buttons(driver)
    if not before.get("start") or before.get("pause") or before.get("resume"):
        fail("start", "draft buttons wrong: %s" % before)
    say("start", "draft buttons enabled: %s" % sorted(k for k, v in before.items() if v))
    driver.find_element(By.ID, "action-start").click()
    seen = set()
    deadline = time.monotonic() + left(90)
    while time.monotonic() < deadline:
        state = campaign_state(driver)
        seen.add(state)
        if state == "completed":
            break
        time.sleep(0.1)
    if campaign_state(driver) != "completed":
        shot(driver, "failed-start")
        fail("start", "not completed within 90 s; states seen %s" % sorted(seen))
    wait(driver, "start", "the results table", EC.presence_of_element_located((By.ID, "results-table")))
    say("start", "states seen %s; progress %r" % (sorted(seen), text_of(driver, "#progress-text")))
    rows = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#results-table tbody tr")
    ]
    say("results", "per-code table: %s" % rows)
    total = sum(int(r[1].replace(",", "")) for r in rows)
    if total != 9998:
        fail("results", "the table adds up to %d, not 9,998" % total)
    bars = len(driver.find_elements(By.CSS_SELECTOR, "#campaign-results svg rect"))
    say("results", "bar chart with %d bars; buttons now %s" % (bars, buttons(driver)))
    shot(driver, "completed")

    # 5. Start the other (slow) campaign, pause it and resume it.
    go(driver, "#/campaigns/" + SLOW_ID)
    wait_state(driver, "pause", ["draft"], 20)
    driver.find_element(By.ID, "action-start").click()
    wait_state(driver, "pause", ["running"], 20)
    say("pause", "campaign %s started: running, buttons %s" % (SLOW_ID, buttons(driver)))
    driver.find_element(By.ID, "action-pause").click()
    wait_state(driver, "pause", ["paused"], 20)
    b = buttons(driver)
    if b.get("pause") or not b.get("resume"):
        fail("pause", "paused buttons wrong: %s" % b)
    say("pause", "paused: %r; buttons %s" % (text_of(driver, "#action-status"), b))
    shot(driver, "paused")
    driver.find_element(By.ID, "action-resume").click()
    state = wait_state(driver, "resume", ["running", "completed"], 20)
    say("resume", "resumed: %r; state %s" % (text_of(driver, "#action-status"), state))

    # 6. The list: both campaigns; the state filter keeps the completed one only.
    go(driver, "#/campaigns")
    wait(driver, "list", "both campaigns", lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.campaigns tbody tr")) >= 2)
    listed = [
        (tr.get_attribute("data-id"), tr.get_attribute("data-state"))
        for tr in driver.find_elements(By.CSS_SELECTOR, "table.campaigns tbody tr")
    ]
    say("list", "rows (id, state): %s" % listed)
    shot(driver, "list")
    Select(driver.find_element(By.ID, "state-filter")).select_by_value("completed")
    wait(
        driver,
        "list",
        "only completed rows",
        lambda d: [tr.get_attribute("data-state") for tr in d.find_elements(By.CSS_SELECTOR, "table.campaigns tbody tr")]
        == ["completed"],
    )
    say("list", "filter state=completed -> %s" % one_line(text_of(driver, "table.campaigns tbody tr")))
    Select(driver.find_element(By.ID, "state-filter")).select_by_value("")
    wait(driver, "pages", "the per-page choice", EC.element_to_be_clickable((By.ID, "per-page")))
    Select(driver.find_element(By.ID, "per-page")).select_by_value("10")

    def page_ids(d):
        return [tr.get_attribute("data-id") for tr in d.find_elements(By.CSS_SELECTOR, "table.campaigns tbody tr")]

    wait(driver, "pages", "a first page of 10", lambda d: len(page_ids(d)) == 10 and d.find_element(By.ID, "next-page").is_enabled())
    first = page_ids(driver)
    driver.find_element(By.ID, "next-page").click()
    wait(driver, "pages", "a second page", lambda d: page_ids(d) and page_ids(d)[0] not in first)
    second = page_ids(driver)
    say("pages", "10 a page: first %s, next %s" % (first, second))
    driver.find_element(By.ID, "prev-page").click()
    wait(driver, "pages", "the first page again", lambda d: page_ids(d) == first)
    say("pages", "previous -> the first page again")

    # 7. The group: both campaigns side by side with their result shares.
    go(driver, "#/groups/" + GROUP)
    wait(driver, "group", "two campaigns side by side", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#group-charts > section")) == 2)

    def both_have_results(d):
        return all(
            len(section.find_elements(By.CSS_SELECTOR, "svg rect")) > 0
            and any(not t.text.startswith("0 ") for t in section.find_elements(By.CSS_SELECTOR, "svg text.chart-value"))
            for section in d.find_elements(By.CSS_SELECTOR, "#group-charts > section")
        )

    wait(driver, "group", "results of both campaigns (the page refreshes every 3 s)", both_have_results, 30)
    head = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#group-table thead th")]
    say("group", "columns %s" % head[1:])
    for tr in driver.find_elements(By.CSS_SELECTOR, "#group-table tbody tr"):
        say("group", " | ".join(c.text for c in tr.find_elements(By.CSS_SELECTOR, "th, td")))
    shot(driver, "group")

    # 8. WeCom suppressions: add one, see it, remove it.
    go(driver, "#/suppressions/staff")
    user = wait(driver, "suppress", "the add form", EC.element_to_be_clickable((By.ID, "supp-user")))
    user.send_keys("lisi")
    user.send_keys(Keys.ENTER)
    wait(driver, "suppress", "lisi listed", EC.presence_of_element_located((By.CSS_SELECTOR, "#supp-table tr[data-user='lisi']")))
    say("suppress", "added: %r" % text_of(driver, "#supp-table tr[data-user='lisi']"))
    shot(driver, "suppressions")
    driver.find_element(By.CSS_SELECTOR, "#supp-table tr[data-user='lisi'] button").click()
    wait(driver, "suppress", "lisi gone", lambda d: not d.find_elements(By.CSS_SELECTOR, "#supp-table tr[data-user='lisi']"))
    say("suppress", "removed: %r" % text_of(driver, "#supp-status"))

    # 9. An app campaign through the form: another message kind, and audience conditions.
    go(driver, "#/new")
    wait(driver, "create-app", "the form", EC.element_to_be_clickable((By.ID, "name"))).send_keys("浙江安卓用户")
    Select(driver.find_element(By.ID, "mode")).select_by_value("app")
    Select(driver.find_element(By.ID, "kind")).select_by_value("transmission")
    driver.find_element(By.ID, "t-content").send_keys('{"k":1}')
    driver.find_element(By.ID, "add-condition").click()
    driver.find_element(By.ID, "cond-0-values").send_keys("android")
    driver.find_element(By.ID, "add-condition").click()
    Select(driver.find_element(By.ID, "cond-1-key")).select_by_value("region")
    driver.find_element(By.ID, "cond-1-values").send_keys("浙江，上海")
    driver.find_element(By.ID, "wifi-only").click()
    driver.find_element(By.ID, "create-submit").click()
    wait(driver, "create-app", "the campaign page", lambda d: text_of(d, "#campaign-title").startswith("浙江安卓用户"))
    facts = one_line(text_of(driver, "#campaign-facts"))
    if "app" not in facts or "transmission" not in facts or driver.find_elements(By.ID, "upload-form"):
        fail("create-app", "facts %r, upload form %s" % (facts, bool(driver.find_elements(By.ID, "upload-form"))))
    say("create-app", "app campaign created (no upload form): %s" % facts)

    # 10. Phone width: the page itself does not scroll sideways (wide tables scroll in place).
    driver.set_window_size(390, 844)
    for route, name in [("#/campaigns", "phone-list"), ("#/campaigns/" + made_id, "phone-campaign")]:
        go(driver, route)
        time.sleep(0.5)
        wait(driver, "phone", "the page", EC.presence_of_element_located((By.CSS_SELECTOR, "main section")))
        widths = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        if widths[0] > widths[1] + 1:
            shot(driver, "failed-" + name)
            fail("phone", "%s is %d px wide in a %d px window" % (route, widths[0], widths[1]))
        say("phone", "%s fits: scrollWidth %d <= innerWidth %d" % (route, widths[0], widths[1]))
        shot(driver, name)
    driver.set_window_size(1280, 900)

    # 11. No third-party request, no CSP violation, no script error.
    others = set()
    for entry in driver.get_log("performance"):
        if '"Network.requestWillBeSent"' in entry["message"]:
            url = json.loads(entry["message"])["message"]["params"]["request"]["url"]
            # data: URLs are the browser's own widgets (the date picker's icon), not requests.
            if not url.startswith(ORIGIN + "/") and not url.startswith("data:"):
                others.add(url)
    if others:
        fail("network", "requests to other origins: %s" % sorted(others))
    say("network", "every request went to %s" % ORIGIN)
    problems = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "/v1/" not in e["message"] and "favicon" not in e["message"]
    ]
    if problems:
        fail("console-log", "browser errors: %s" % problems)
    say("console-log", "no CSP violation or script error in the browser log")

    # 12. A token that stops working mid-session: the tab signs out and says why.
    driver.execute_script("sessionStorage.setItem('campaignd.console.token', 'revoked-token-0123456789')")
    go(driver, "#/campaigns?state=draft")
    wait(driver, "revoked", "the sign-in form and a 401 message", lambda d: d.find_elements(By.ID, "token") and "401" in text_of(d, "#flash"))
    say("revoked", "refused token mid-session -> %r" % text_of(driver, "#flash"))


if __name__ == "__main__":
    main()
