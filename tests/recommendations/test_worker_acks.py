"""The admin cannot claim weights run where no worker said so (issue 20): each serving worker acknowledges what its
engine runs, the activation message and the weights list report those acknowledgements, and so does the status
endpoint."""

from __future__ import annotations

import pytest
from django.contrib import messages
from django.core.cache import cache

from recommendations import serving as workers  # the adapter holds the workers' acknowledgements
from recommendations.serving_services import ensemble_weights_create
from tests.recommendations.test_serving_api import alice_sci_fi, client_for, serving  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_acks():  # noqa: ANN202
    cache.delete_many([workers.REGISTRY_KEY])
    workers.worker_forget()
    yield
    workers.worker_forget()


def _other_worker(version: str) -> None:
    """A second serving process's acknowledgement, as it writes it."""
    cache.set(workers.WORKER_KEY_PREFIX + "other-host:4242",
              {"worker": "other-host:4242", "weights_version": version, "bundle_version": "b", "tier": "onnx",
               "seen_at": "2026-12-06T12:00:00+00:00"}, workers.ACK_TTL_S)
    cache.set(workers.REGISTRY_KEY, [*(cache.get(workers.REGISTRY_KEY) or []), "other-host:4242"], None)


def test_a_request_acknowledges_what_the_worker_runs_and_status_lists_it(serving, alice_sci_fi) -> None:  # noqa: ANN001, F811
    ensemble_weights_create(version="v1", weights={"sasrec": 0.5, "ease": 0.5}, activate=True)
    assert workers.serving_workers() == []
    assert client_for(alice_sci_fi).get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=3").status_code == 200
    [me] = workers.serving_workers()
    assert me["worker"] == workers.worker_id() and me["weights_version"] == "v1" and me["tier"]
    status = client_for(alice_sci_fi).get("/v1/platform/status").json()
    assert [w["weights_version"] for w in status["serving_workers"]] == ["v1"]


def test_activation_reports_acknowledgements_never_a_green_done(serving, alice_sci_fi, staff, client,  # noqa: ANN001, F811
                                                               django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    ensemble_weights_create(version="v1", weights={"sasrec": 0.5, "ease": 0.5}, activate=True)
    new = ensemble_weights_create(version="v2", weights={"ease": 1.0})
    api = client_for(alice_sci_fi)
    url = f"/v1/recommendations/user/{alice_sci_fi.pk}?k=3"
    assert api.get(url).status_code == 200  # this worker runs v1
    _other_worker("v1")
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):  # the version is published once committed
        response = client.post("/admin/recommendations/ensembleweights/", {"action": "activate",
                                                                          "_selected_action": [new.pk]}, follow=True)
    [message] = list(response.context["messages"])
    assert message.level == messages.INFO  # not SUCCESS: nothing runs v2 yet
    assert "0 of 2 workers heard from run them so far" in message.message
    assert api.get(url).json()["weights_version"] == "v2"  # this worker swaps on its next request
    assert workers.weights_running("v2") == (1, 2) and workers.weights_running("v1") == (1, 2)
    listing = client.get("/admin/recommendations/ensembleweights/").content.decode()
    assert "1 of 2" in listing and "ease 1.000" in listing  # the column, and the weights rounded


def test_a_silent_worker_drops_out(serving) -> None:  # noqa: ANN001, F811
    _other_worker("v1")
    assert [w["worker"] for w in workers.serving_workers()] == ["other-host:4242"]
    cache.delete(workers.WORKER_KEY_PREFIX + "other-host:4242")  # its acknowledgement expired (ACK_TTL_S)
    assert workers.serving_workers() == []
