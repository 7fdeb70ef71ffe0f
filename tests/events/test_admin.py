"""Operators' admin: events are listed read-only with filters; budgets and the ledger are shown."""

from __future__ import annotations

import pytest

from events.services import event_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):  # noqa: ANN001, ANN201
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_events_are_listed_filterable_and_read_only(admin_client, alice, movies):
    event, _ = event_record(user=alice, movie=movies[0], kind="rating", value=4.0, idempotency_key="adm")
    listing = admin_client.get("/admin/events/event/", {"kind": "rating", "applied_at__isnull": "True"})
    assert listing.status_code == 200 and str(movies[0].title) in listing.content.decode()
    assert admin_client.get("/admin/events/event/add/").status_code == 403
    detail = admin_client.get(f"/admin/events/event/{event.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content


def test_privacy_budgets_and_ledger_pages_render(admin_client, staff, settings):
    from events.privacy import privacy_budget_charge

    privacy_budget_charge(analyst=f"user:{staff.pk}", query="hour", epsilon=0.5, sensitivity=1.0)
    assert admin_client.get("/admin/events/privacybudget/").status_code == 200
    assert b"hour" in admin_client.get("/admin/events/privacybudgetledger/").content
    assert admin_client.get("/admin/recommendations/onlinecheckpoint/").status_code == 200
