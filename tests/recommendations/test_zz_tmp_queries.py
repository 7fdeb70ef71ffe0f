import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from tests.recommendations.test_serving_api import serving, alice_sci_fi, client_for  # noqa: F401

pytestmark = pytest.mark.django_db

def test_count(serving, alice_sci_fi, api_key_for_alice, settings):  # noqa
    from rest_framework.test import APIClient
    import time
    c = APIClient()
    c.get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=10", **api_key_for_alice.headers)
    with CaptureQueriesContext(connection) as q:
        t = time.perf_counter(); r = c.get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=10", **api_key_for_alice.headers); dt = time.perf_counter() - t
    print("REC", r.status_code, len(q.captured_queries), dt)
    for x in q.captured_queries: print("  ", x["sql"][:150])
    with CaptureQueriesContext(connection) as q:
        r = c.get("/v1/platform/status", **api_key_for_alice.headers)
    print("STATUS", len(q.captured_queries))
