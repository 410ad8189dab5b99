#!/usr/bin/env python3
"""The web console in headless Chromium through WebDriver (Debian's chromium and
chromium-driver, PyPI's selenium), against a real `paddock server` and a real kazoo client:

- the landing page shows the ensemble and the root's children, a znode kazoo created among them;
- the tree browser shows its data (text, JSON, hex), Stat and ACL, and pages a long child list;
- an edit is refused without login and applied with it (kazoo reads the new data back);
- sessions (with their ephemerals) need a login with ADMIN on /; charts and the ensemble load.

  tests/ops/console.py [--bin target/release/paddock] [--screenshots DIR] [--keep]

With --screenshots the pages are saved there as PNGs (docs/console-*.png come from this).
"""

import argparse
import base64
import hashlib
import os
import shutil
import sys
import tempfile
import time

from kazoo.client import KazooClient
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import Server, case, failures, free_port  # noqa: E402

SUPER_PW = "console-super-pw"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PW}".encode()).digest()).decode()


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1000"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=o)


def waits(wait, condition):
    """Whether `condition` came true within the wait's timeout."""
    try:
        wait.until(condition)
        return True
    except TimeoutException:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--screenshots")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    for need in (binary, shutil.which("chromium"), shutil.which("chromedriver")):
        if not need or not os.path.exists(need):
            print(f"FAIL missing {need or 'chromium/chromedriver'} (scripts/install-deps.sh)")
            return 1
    work = tempfile.mkdtemp(prefix="paddock-console-")
    admin = free_port()
    pd = Server(binary, work, "console", [
        "clientPort={port}", f"admin.serverPort={admin}",
        f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"])
    base = f"http://127.0.0.1:{admin}"
    k = driver = None

    def shot(name):
        if a.screenshots:
            os.makedirs(a.screenshots, exist_ok=True)
            driver.save_screenshot(os.path.join(a.screenshots, f"console-{name}.png"))

    try:
        pd.wait_listening(pd.port)
        k = KazooClient(f"127.0.0.1:{pd.port}", timeout=10)
        k.start(15)
        k.create("/console-demo", b'{"service": "billing", "replicas": 3}')
        k.create("/console-demo/config", b"a=1")
        k.create("/services/billing/instance-1", b"10.0.0.5:8443", makepath=True)
        k.create("/eph-of-kazoo", b"", ephemeral=True)
        k.create("/odd%41?x#y", b"odd name")
        k.create("/many")
        tx = k.transaction()
        for i in range(250):
            tx.create(f"/many/n{i:04d}", b"")
        tx.commit()
        for i in range(200):
            k.set("/console-demo/config", f"a={i}".encode())
        driver = browser()
        wait = WebDriverWait(driver, 15)
        driver.get(base + "/")
        ok = waits(wait, EC.presence_of_element_located(
            (By.CSS_SELECTOR, '#root-children a[data-name="console-demo"]')))
        case("the landing page lists the root's children, kazoo's znode among them", ok,
             driver.page_source[:500])
        cards = driver.find_element(By.CSS_SELECTOR, ".cards").text
        case("the landing page shows the server at a glance", "standalone" in cards
             and "znodes" in cards, cards)
        shot("overview")
        driver.find_element(By.CSS_SELECTOR, '#root-children a[data-name="console-demo"]').click()
        ok = waits(wait, EC.text_to_be_present_in_element((By.ID, "data-text"), "billing"))
        case("the tree browser shows the znode's data", ok)
        driver.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="json"]').click()
        case("data as JSON", '"replicas": 3' in driver.find_element(By.ID, "data-text").text)
        driver.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="hex"]').click()
        case("data as hex", driver.find_element(By.ID, "data-text").text.startswith(
            "00000000  7b 22 73"))
        body = driver.find_element(By.TAG_NAME, "body").text
        acl = [(r.find_element(By.CSS_SELECTOR, ".s").get_attribute("value"),
                r.find_element(By.CSS_SELECTOR, ".i").get_attribute("value"),
                r.find_element(By.CSS_SELECTOR, ".p").get_attribute("value"))
               for r in driver.find_elements(By.CSS_SELECTOR, "#acl tr.acl")]
        case("Stat and ACL are shown, with what the viewer may do",
             "numChildren" in body and acl == [("world", "anyone", "cdrwa")]
             and driver.find_element(By.ID, "may").text == "rwcda", f"{acl} {body[-300:]}")
        shot("tree")
        # An edit without login is refused; the data stays.
        edit = driver.find_element(By.ID, "edit-data")
        edit.clear()
        edit.send_keys("edited in the console")
        driver.find_element(By.ID, "save-button").click()
        ok = waits(wait, EC.text_to_be_present_in_element((By.ID, "status"), "refused"))
        case("an edit without login is refused", ok
             and k.get("/console-demo")[0].startswith(b'{"service"'),
             driver.find_element(By.ID, "status").text)
        driver.find_element(By.ID, "login-user").send_keys("super")
        driver.find_element(By.ID, "login-password").send_keys(SUPER_PW)
        driver.find_element(By.ID, "login-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "whoami"), "logged in as super"))
        wait.until(EC.presence_of_element_located((By.ID, "edit-data")))
        time.sleep(0.3)
        edit = driver.find_element(By.ID, "edit-data")
        edit.clear()
        edit.send_keys("edited in the console")
        driver.find_element(By.ID, "save-button").click()
        ok = waits(wait, EC.text_to_be_present_in_element((By.ID, "status"), "done"))
        case("with login the edit is applied (kazoo reads it back)",
             ok and k.get("/console-demo")[0] == b"edited in the console",
             driver.find_element(By.ID, "status").text)
        # Paging a long child list.
        driver.get(base + "/#/tree/many")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#children a[data-name="n0000"]')))
        names = [e.get_attribute("data-name") for e in driver.find_elements(By.CSS_SELECTOR, "#children a")]
        driver.find_element(By.ID, "next-page").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#children a[data-name="n0100"]')))
        case("a long child list comes a page (100) at a time", names == [f"n{i:04d}" for i in range(100)]
             and driver.find_elements(By.CSS_SELECTOR, '#children a[data-name="n0199"]'))
        # Names with %, ? and # are links that lead to their znode.
        driver.get(base + "/")
        odd = 'a[data-name="odd%41?x#y"]'
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#root-children " + odd)))
        driver.find_element(By.CSS_SELECTOR, "#root-children " + odd).click()
        ok = waits(wait, EC.text_to_be_present_in_element((By.ID, "data-text"), "odd name"))
        case("a znode named odd%41?x#y opens from its link", ok, driver.current_url)
        # Zxids and session ids reach the page unrounded (they pass 2^53).
        driver.get(base + "/#/tree/eph-of-kazoo")
        sid = f"0x{k.client_id[0]:x}"
        ok = waits(wait, EC.text_to_be_present_in_element((By.TAG_NAME, "main"), sid))
        case("the Stat shows the ephemeral owner's session id exactly", ok, sid)
        driver.get(base + "/#/sessions")
        ok = waits(wait, EC.text_to_be_present_in_element((By.TAG_NAME, "main"), sid))
        case("logged in as super: sessions with their ephemerals",
             ok and "/eph-of-kazoo" in driver.find_element(By.TAG_NAME, "main").text)
        shot("sessions")
        driver.find_element(By.ID, "logout-button").click()
        ok = waits(wait, EC.presence_of_element_located((By.ID, "sessions-refused")))
        case("logged out: sessions are refused", ok)
        driver.get(base + "/#/ensemble")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "main table")))
        case("the ensemble page lists the members",
             "standalone" in driver.find_element(By.TAG_NAME, "main").text)
        driver.get(base + "/#/charts")
        # A few seconds of load, so that the charts have something to draw.
        end = time.time() + 5
        i = 0
        while time.time() < end:
            k.set("/console-demo/config", f"a={i}".encode())
            k.get("/console-demo")
            i += 1
        time.sleep(1.2)
        canvases = driver.find_elements(By.TAG_NAME, "canvas")
        case("live charts: throughput, latency, outstanding requests, fsync time",
             len(canvases) == 5)
        shot("charts")
        # Refusals (401, 403) are logged by the browser as failed loads; script errors are not
        # expected at all.
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
                and not (e.get("source") == "network" and ("401" in e["message"] or "403" in e["message"]))]
        case("no script errors in the browser", not logs, str(logs[:3]))
    finally:
        if driver:
            driver.quit()
        if k:
            k.stop()
        pd.stop()
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"console: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
