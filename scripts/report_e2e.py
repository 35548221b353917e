"""The HTML report in a real browser, as finance reads it (run by
scripts/test.sh on the demo's report).

    scripts/report_e2e.py REPORT.html REPORT.json --screenshots DIR

1. Headless Chromium opens the HTML file at a desk's width (1280 px) and a
   phone's (390 px: the weekly report is read in a mail app too): nothing
   is fetched from anywhere, nothing scrolls sideways but the tables' own
   scroll boxes, and every total read from the DOM is the JSON report's
   (the same data, the same instant): each currency's open total and
   buckets, DSO and CEI per window, the effectiveness table's rows.
2. A screenshot at each width goes into DIR (one is the README's).
3. Chromium prints it on A4 (its own print to PDF): at most 2 pages.
"""

import argparse
import base64
import json
import os
import re
import sys

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.print_page_options import PrintOptions

failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures += 1


def browser(width, height):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}})
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=opts, service=service)


def attr(driver, selector, name):
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].get_attribute(name) if found else None


def figures(driver, report):
    for code, aging in report["by_currency"].items():
        got = attr(driver, f'[data-total="{code}"]', "data-amount")
        check(got == aging["open"]["amount"], f"{code}: the open total in the page is the JSON's ({got} vs {aging['open']['amount']})")
        shown = driver.find_element(By.CSS_SELECTOR, f'[data-total="{code}"]').text.splitlines()[0]
        digits = re.sub(r"[^0-9]", "", shown)
        check(digits == re.sub(r"[^0-9]", "", aging["open"]["amount"]), f"{code}: the open total reads {shown}")
        for bucket, total in zip(report["buckets_order"], aging["buckets"]):
            got = attr(driver, f'[data-bucket="{code}-{bucket}"]', "data-amount")
            check(got == total["amount"], f"{code} {bucket}: {got} in the page, {total['amount']} in the JSON")
    for code, windows in report["collection"].items():
        for w in windows:
            key = f"{code}-{w['days']}"
            if code not in report["by_currency"]:
                continue
            dso = attr(driver, f'[data-dso="{key}"]', "data-value")
            cei = attr(driver, f'[data-cei="{key}"]', "data-value")
            check(dso == (w["dso"] or ""), f"{key}: DSO {dso!r} in the page, {w['dso']!r} in the JSON")
            check(cei == (w["cei"] or ""), f"{key}: CEI {cei!r} in the page, {w['cei']!r} in the JSON")
    rows = driver.find_elements(By.CSS_SELECTOR, "#effectiveness tr[data-step]")
    expected = report["effectiveness"]["rows"]
    check(len(rows) == len(expected), f"effectiveness: {len(rows)} rows in the page, {len(expected)} in the JSON")
    for row, e in zip(rows, expected):
        channel = e["channel"] or "none"
        same = (row.get_attribute("data-step") == e["step"] and row.get_attribute("data-channel") == channel)
        shares = [c.get_attribute("data-share") for c in row.find_elements(By.CSS_SELECTOR, "[data-share]")]
        invoices = row.find_element(By.CSS_SELECTOR, "[data-invoices]").get_attribute("data-invoices")
        check(same and shares == [s or "" for s in e["share"]] and invoices == str(e["invoices"]),
              f"effectiveness {e['step']} {channel}: {invoices} invoices, shares {shares}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("html")
    p.add_argument("json")
    p.add_argument("--screenshots", required=True)
    args = p.parse_args()
    with open(args.json) as f:
        report = json.load(f)
    report["buckets_order"] = ["not_due", "1-30", "31-60", "61-90", "91-120", "over_120"]
    check(bool(report["by_currency"]), f"the report has receivables ({', '.join(report['by_currency'])})")
    url = "file://" + os.path.abspath(args.html)
    os.makedirs(args.screenshots, exist_ok=True)
    for width, height, name in ((1280, 900, "report.png"), (390, 844, "report-phone.png")):
        driver = browser(width, height)
        try:
            driver.get(url)
            got = driver.execute_script("return window.innerWidth")
            check(got == width, f"the viewport is {width} px (got {got})")
            # Nothing but the file itself is loaded.
            requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
            fetched = sorted({r["params"]["request"]["url"] for r in requests if r["method"] == "Network.requestWillBeSent"})
            check(fetched == [url], f"{width} px: nothing fetched but the file ({fetched})")
            fits = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
            check(fits, f"{width} px: the page does not scroll sideways")
            check(len(driver.find_elements(By.CSS_SELECTOR, "svg")) >= 1, f"{width} px: the charts are inline SVG")
            figures(driver, report)
            driver.set_window_size(width, driver.execute_script("return document.body.scrollHeight") + 40)
            driver.save_screenshot(os.path.join(args.screenshots, name))
            if width == 1280:
                options = PrintOptions()
                options.page_width = 21.0
                options.page_height = 29.7
                pdf = base64.b64decode(driver.print_page(options))
                with open(os.path.join(args.screenshots, "report.pdf"), "wb") as f:
                    f.write(pdf)
                pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
                check(1 <= pages <= 2, f"printed on A4: {pages} page(s)")
        finally:
            driver.quit()
    if failures:
        sys.exit(f"{failures} check(s) failed")


if __name__ == "__main__":
    main()
