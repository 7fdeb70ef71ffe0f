"""The standing reliability suite (issue 14): schema fuzzing, faults, load. Fixtures shared by its files go here."""

from __future__ import annotations

import pytest


# --- faults (test_redis_outage.py, test_faults.py) --------------------------------------------------------
@pytest.fixture
def needs_postgres(settings):  # noqa: ANN001, ANN201
    """Skip unless the tests run on PostgreSQL (the fault tests stop and exhaust real services)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs a PostgreSQL DATABASE_URL")


@pytest.fixture
def own_redis(needs_postgres, settings, tmp_path):  # noqa: ANN001, ANN201
    """A redis-server of the test's own (tests/reliability/servers.py) serving as the cache, the event stream and
    the quota counter; Celery runs inline, so a relay run consumes at once. The shared Redis is never touched."""
    from apex_site.celery import app
    from recommendations import serving as serving_adapter
    from recommendations.online.learner import learner_reset as online_reset
    from tests.reliability.servers import EphemeralRedis

    server = EphemeralRedis()
    server.start()
    settings.REDIS_URL = server.url
    settings.CACHES = {"default": {"BACKEND": "apex_site.cache.SharedRedisCache", "LOCATION": server.url}}
    settings.ONLINE_CONSUME_LINGER_S = 0.0
    settings.ML_ARTIFACTS_DIR = tmp_path / "no-artifacts"
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    serving_adapter.reset_engine()
    online_reset()
    yield server
    app.conf.task_always_eager, app.conf.task_eager_propagates = before
    server.stop()
    online_reset()
    serving_adapter.reset_engine()
