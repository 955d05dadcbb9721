"""The admin's pages as a staff user uses them: the index health page and the queue's entries, with their actions.

Through Django's test client on the test database (SQLite, or PostgreSQL with
``REINDEX_TEST_DB=postgres``) against a real osmem-server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from reindex.models import QueueEntry

HEALTH = "/admin/reindex/indexhealth/"
ENTRIES = "/admin/reindex/queueentry/"


def entry(object_id: str, state: str = "pending", alias: str = "products", **fields: Any) -> QueueEntry:
    now = timezone.now()
    return QueueEntry.objects.create(
        alias=alias, object_id=object_id, state=state, available_at=now, changed_at=now, **fields
    )


def staff(*permissions: str) -> Client:
    """A client logged in as a staff user holding ``permissions`` (``"reindex.view_indexhealth"``)."""
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def site(indexed_catalog: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The catalog indexed, the site's settings pointing at its server; the server's URL."""
    monkeypatch.setenv("REINDEX_ES_URL", indexed_catalog)
    return indexed_catalog


def test_the_health_page_shows_each_alias_from_the_health_report(site):
    entry("7", state="dead", attempts=5, last_error="mapper_parsing_exception: failed to parse [price]")
    entry("8")

    page = staff("reindex.view_indexhealth").get(HEALTH)

    assert page.status_code == 200
    html = page.content.decode()
    assert "Unhealthy" in html
    assert "queue lag 300 s, dead entries 0, verify sample 100, stream lag 300 s, WAL kept 1024 MB" in html
    products = section(html, "products")
    assert "50 documents against 50 rows" in products
    assert "the live index matches the definition in code" in products
    # in UTC, as the page's other times, whatever the site's TIME_ZONE (the tests': America/Chicago)
    assert re.search(r"<th>Watermark</th><td>\d{4}-\d\d-\d\dT[\d:.]+\+00:00 \(rebuild\)", products), products
    assert "2 waiting" not in products and "1 waiting</span> (1 pending, 0 claimed)" in products
    assert "1 dead</a>" in products and "queue: 1 dead entries (over 0)" in products
    assert "<svg" in products  # the entry waiting, by the hour it was queued
    assert "python manage.py reindex rebuild products" in products  # no rebuild permission: the command
    categories = section(html, "categories")
    assert "not built" in categories and "the alias does not exist (not built)" in categories


def section(html: str, alias: str) -> str:
    """The part of the health page about ``alias``."""
    start = html.index(f'id="alias-{alias}"')
    end = html.find('class="module reindex-alias"', start)
    return html[start : end if end >= 0 else len(html)]


def test_the_health_page_says_when_the_server_is_down(catalog, monkeypatch):
    catalog(products=5)
    monkeypatch.setenv("REINDEX_ES_URL", "http://127.0.0.1:9")

    page = staff("reindex.view_indexhealth").get(HEALTH)

    assert page.status_code == 200
    assert "cannot reach the search server at http://127.0.0.1:9" in page.content.decode()


def test_the_health_page_says_what_is_wrong_with_the_settings(site, settings):
    settings.REINDEX = {**settings.REINDEX, "HEALTH_MAX_DEAD": -1}

    page = staff("reindex.view_indexhealth", "reindex.queue_rebuild").get(HEALTH)

    assert page.status_code == 200
    html = page.content.decode()
    assert "Unhealthy" in html and "configuration: " in html and "HEALTH_MAX_DEAD" in html


@pytest.mark.parametrize(
    ("permissions", "status"),
    [((), 403), (("reindex.view_queueentry",), 403), (("reindex.view_indexhealth",), 200)],
)
def test_only_staff_with_the_view_permission_see_the_health_page(site, permissions, status):
    assert staff(*permissions).get(HEALTH).status_code == status


def test_someone_not_logged_in_is_sent_to_the_login_page(site):
    response = Client().get(HEALTH)

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_entries_list_filters_by_alias_state_and_attempts_and_finds_an_object_id(site):
    entry("7", state="dead", attempts=5, last_error="mapper_parsing_exception: failed to parse [price]")
    entry("8")
    entry("9", alias="categories")
    client = staff("reindex.view_queueentry")

    assert listed(client.get(ENTRIES, {"state": "dead"})) == ["7"]
    assert listed(client.get(ENTRIES, {"alias": "categories"})) == ["9"]
    assert listed(client.get(ENTRIES, {"attempts": "5"})) == ["7"]
    assert listed(client.get(ENTRIES, {"q": "8"})) == ["8"]
    dead = client.get(ENTRIES, {"state": "dead"}).content.decode()
    assert "mapper_parsing_exception: failed to parse [price]" in dead


def listed(response: Any) -> list[str]:
    """The object ids a changelist page shows, in its order."""
    assert response.status_code == 200
    return sorted(str(e.object_id) for e in response.context["cl"].result_list)


def test_retry_asks_for_confirmation_then_makes_the_dead_entries_pending_and_logs_it(site):
    dead = entry("7", state="dead", attempts=5, last_error="boom")
    pending = entry("8")
    client = staff("reindex.view_queueentry", "reindex.change_queueentry")
    chosen = {"action": "retry", "_selected_action": [dead.pk, pending.pk]}

    confirm = client.post(ENTRIES, chosen)

    assert confirm.status_code == 200
    assert "1 of the 2 entries selected are dead" in confirm.content.decode()
    assert QueueEntry.objects.get(pk=dead.pk).state == "dead"  # nothing done yet

    done = client.post(ENTRIES, {**chosen, "post": "yes"}, follow=True)

    assert "1 dead entries made pending again: products 1." in done.content.decode()
    retried = QueueEntry.objects.get(pk=dead.pk)
    assert (retried.state, retried.attempts) == ("pending", 0)
    [log] = LogEntry.objects.all()
    assert (log.action_flag, log.object_id, log.change_message) == (
        CHANGE,
        str(dead.pk),
        "Retried: made pending again (reindex queue retry)",
    )


def test_purge_deletes_only_the_selected_entries_and_logs_each(site):
    gone = [entry("7", state="dead", attempts=5), entry("8")]
    kept = entry("9", state="dead", attempts=5)
    client = staff("reindex.view_queueentry", "reindex.delete_queueentry")
    chosen = {"action": "purge", "_selected_action": [e.pk for e in gone]}

    assert "2 entries will be deleted" in client.post(ENTRIES, chosen).content.decode()
    done = client.post(ENTRIES, {**chosen, "post": "yes"}, follow=True)

    assert "2 entries purged: products 2." in done.content.decode()
    assert list(QueueEntry.objects.values_list("pk", flat=True)) == [kept.pk]
    logged = LogEntry.objects.filter(action_flag=DELETION).values_list("object_id", flat=True)
    assert sorted(logged) == sorted(str(e.pk) for e in gone)


def test_the_actions_need_their_permissions(site):
    entry("7", state="dead", attempts=5)
    viewer = staff("reindex.view_queueentry")

    page = viewer.get(ENTRIES).content.decode()

    assert 'value="retry"' not in page and 'value="purge"' not in page and 'value="delete_selected"' not in page
    assert viewer.post(ENTRIES, {"action": "retry", "_selected_action": [1], "post": "yes"}).status_code in (
        200,
        302,
    )
    assert QueueEntry.objects.get().state == "dead"


def test_an_entry_cannot_be_added_or_edited_by_hand(site):
    dead = entry("7", state="dead", attempts=5, last_error="boom")
    client = staff("reindex.view_queueentry", "reindex.change_queueentry", "reindex.add_queueentry")

    assert client.get(ENTRIES + "add/").status_code == 403
    detail = client.get(f"{ENTRIES}{dead.pk}/change/")
    assert detail.status_code == 200 and "boom" in detail.content.decode()
    client.post(f"{ENTRIES}{dead.pk}/change/", {"state": "pending"})
    assert QueueEntry.objects.get().state == "dead"


def test_without_celery_set_up_the_page_says_how_to_rebuild(site, settings):
    settings.REINDEX = {k: v for k, v in settings.REINDEX.items() if k != "CELERY_APP"}
    client = staff("reindex.view_indexhealth", "reindex.queue_rebuild")

    html = client.get(HEALTH).content.decode()

    assert "Queue a rebuild" not in html
    assert "run <code>python manage.py reindex rebuild products</code>" in html
    assert "set up Celery" in html
