"""Drives the web console (/ui) in Debian's headless chromium with Playwright,
as a new user would: enter the token, see the per-source counts, search with
json= and q=, open an event, replay it, turn the live tail on and see an
event posted meanwhile arrive. Screenshots go to the directory given.

Usage: drive.py QUERY_URL INGEST_URL TOKEN READ_ONLY_TOKEN SCREENSHOT_DIR
Exit 0 on success; a failed check raises (non-zero exit, message on stderr).
"""

import json
import os
import shutil
import sys
import urllib.request

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 15_000


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("chromium is not installed")


def post_webhook(ingest, body):
    request = urllib.request.Request(
        ingest + "/webhooks/stripe",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        assert response.status == 202, response.status
        return json.loads(response.read())["id"]


def log_in(page, query, token):
    page.goto(query + "/ui")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    expect(page.locator("#console")).to_be_visible()


def main():
    query, ingest, token, reader, shots = sys.argv[1:6]
    os.makedirs(shots, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        log_in(page, query, token)
        # The token is in session storage, never in the URL.
        assert token not in page.url
        assert page.evaluate("sessionStorage.getItem('hookgate.token')") == token
        expect(page.locator("#counts li", has_text="stripe")).to_contain_text("6")
        expect(page.locator("#events tbody tr")).to_have_count(6)
        page.screenshot(path=os.path.join(shots, "01-events.png"))

        # Search inside payloads.
        page.fill("#filters input[name=json]", "/data/object/customer:cus_A")
        page.click("#filters button[type=submit]")
        expect(page.locator("#events tbody tr")).to_have_count(3)
        page.fill("#filters input[name=q]", "refund")
        page.click("#filters button[type=submit]")
        expect(page.locator("#events tbody tr")).to_have_count(1)
        page.screenshot(path=os.path.join(shots, "02-search.png"))

        # The detail view: pretty JSON, headers, verification, Kafka provenance; then replay.
        page.click("#events tbody tr")
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#body-kind")).to_contain_text("JSON")
        expect(page.locator("#body")).to_contain_text('"customer": "cus_A"')
        expect(page.locator("#meta")).to_contain_text("partition")
        expect(page.locator("#meta")).to_contain_text("none: not verified")
        expect(page.locator("#headers")).to_contain_text("content-type")
        expect(page.locator("#replay")).to_be_visible()
        page.click("#replay")
        expect(page.locator("#replay-result")).to_contain_text("Replayed to")
        page.screenshot(path=os.path.join(shots, "03-detail-replayed.png"))

        # A binary body is shown as hex.
        page.fill("#filters input[name=json]", "")
        page.fill("#filters input[name=q]", "")
        page.click("#filters button[type=submit]")
        expect(page.locator("#events tbody tr")).to_have_count(6)
        page.click("#events tbody tr:last-child")
        expect(page.locator("#body-kind")).to_contain_text("hex")
        expect(page.locator("#body")).to_contain_text("00000000  ff fe")

        # The live tail shows an event posted after it was turned on.
        page.click("#live")
        expect(page.locator("#status")).to_contain_text("Live tail connected")
        new_id = post_webhook(ingest, {"id": "evt_live", "type": "charge.succeeded",
                                       "data": {"object": {"customer": "cus_live"}}})
        expect(page.locator("#events tbody tr.new", has_text=new_id)).to_have_count(1)
        page.screenshot(path=os.path.join(shots, "04-live.png"))
        page.click("#live")
        assert not errors, errors

        # A token without the replay scope sees no replay button.
        page.click("#logout")
        log_in(page, query, reader)
        page.click("#events tbody tr")
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#replay")).to_be_hidden()
        assert not errors, errors
        browser.close()
    print("console checks passed")


if __name__ == "__main__":
    main()
