"""One walk through the admin in a real browser: log in, open Index health, retry a dead entry, see it pending.

Headless Chromium from Debian (``apt-get install chromium chromium-driver``) driven by
selenium, against the site served by pytest-django's ``live_server``. Skipped when no
Chromium is installed, but a failure under CI (``REINDEX_REQUIRE_SERVICES=1``, set by
``.ci/run``, which installs it). ``REINDEX_SCREENSHOT=docs/operations.png`` saves the
health page as docs/operations.md shows it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

if not (CHROMIUM and DRIVER):
    if os.environ.get("REINDEX_REQUIRE_SERVICES"):
        raise RuntimeError("no chromium and chromedriver on PATH (apt-get install chromium chromium-driver)")
    pytest.skip(
        "no headless Chromium: apt-get install chromium chromium-driver to run the browser test",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium, 1280 pixels wide."""
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(10)
    try:
        yield driver
    finally:
        driver.quit()


def test_an_operator_logs_in_sees_a_dead_entry_and_retries_it(
    indexed_catalog, live_server, browser, monkeypatch, transactional_db
):
    from catalog.models import Product
    from django.contrib.auth.models import User
    from selenium.webdriver.common.by import By

    import reindex
    from reindex.models import QueueEntry

    monkeypatch.setenv("REINDEX_ES_URL", indexed_catalog)
    reindex.rebuild("categories")
    reindex.rebuild("products", keep=1)  # last night's index kept for a rollback
    for product in Product.objects.order_by("pk")[:7]:
        product.save()
    reindex.drain()  # seven changes drained (and their categories'): the rate of that pass
    reindex.enqueue("products", [Product.objects.order_by("pk").last().pk])  # one change waits
    User.objects.create_superuser("ops", password="a long passphrase")
    now = timezone.now()
    QueueEntry.objects.create(
        alias="products", object_id="17", state="dead", attempts=5, available_at=now, changed_at=now,
        last_error="mapper_parsing_exception: failed to parse field [price]",
    )  # fmt: skip

    browser.get(f"{live_server.url}/admin/reindex/indexhealth/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("a long passphrase")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    assert browser.find_element(By.ID, "reindex-verdict").text.startswith("Unhealthy")
    products = browser.find_element(By.ID, "alias-products")
    assert "products: queue: 1 dead entries (over 0)" not in products.text  # the alias's own list omits its name
    assert "queue: 1 dead entries (over 0)" in products.text
    assert "50 documents against 50 rows" in products.text
    assert "1 waiting (1 pending, 0 claimed)" in products.text and "1 dead" in products.text
    assert "7 entries in" in products.text  # the last drain pass
    assert "Healthy" not in browser.find_element(By.ID, "alias-categories").text
    if os.environ.get("REINDEX_SCREENSHOT"):
        browser.save_screenshot(os.environ["REINDEX_SCREENSHOT"])

    products.find_element(By.CLASS_NAME, "reindex-dead").click()
    assert "mapper_parsing_exception: failed to parse field [price]" in browser.find_element(By.ID, "result_list").text
    browser.find_element(By.ID, "action-toggle").click()
    browser.find_element(By.CSS_SELECTOR, "select[name=action] option[value=retry]").click()
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    confirm = browser.find_element(By.CSS_SELECTOR, "input[type=submit][value='Retry 1 entries']")  # the new page
    assert "1 of the 1 entries selected are dead" in browser.find_element(By.ID, "content").text
    confirm.click()

    assert "1 dead entries made pending again: products 1." in browser.find_element(By.CLASS_NAME, "messagelist").text
    assert QueueEntry.objects.get(object_id="17").state == "pending"
    browser.get(f"{live_server.url}/admin/reindex/indexhealth/")
    products = browser.find_element(By.ID, "alias-products")
    assert "0 dead" in products.text and "2 waiting" in products.text
