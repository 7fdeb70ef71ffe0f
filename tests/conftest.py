"""The shared test cast and environment-aware markers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    have_services = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    have_java = shutil.which("java") is not None
    skip_services = pytest.mark.skip(reason="needs DATABASE_URL/REDIS_URL (real PostgreSQL/Redis)")
    skip_spark = pytest.mark.skip(reason="needs Java for local Spark")
    for item in items:
        if "services" in item.keywords and not have_services:
            item.add_marker(skip_services)
        if "spark" in item.keywords and not have_java:
            item.add_marker(skip_spark)


@pytest.fixture(autouse=True)
def _fast_hasher(settings: settings) -> None:  # type: ignore[valid-type]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- The cast: accounts and plans (accounts/billing) ------------------------------------------------
STRIPE_TEST_PRICES = {"STRIPE_PRICE_PRO": "price_1QApexPro000000000000000",
                      "STRIPE_PRICE_ENTERPRISE": "price_1QApexEnterprise000000000"}


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters and cached quota refusals must not leak between tests."""
    from django.core.cache import cache

    from accounts.selectors import API_KEY_MEMORY
    from events.services import known_movies_forget
    from experiments.assignment import SNAPSHOT_MEMORY

    cache.clear()
    API_KEY_MEMORY.clear()
    SNAPSHOT_MEMORY.clear()
    known_movies_forget()  # a rolled-back test's movies send no post_delete: forget the confirmed ids


@pytest.fixture
def stripe_configured(settings):  # noqa: ANN001, ANN201
    """A Stripe test key in the settings: pages offer paid plans (nothing here calls Stripe; fake_stripe does)."""
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_51QApexOfflineFakeKeyForTests0000000000000000"


@pytest.fixture
def plans(db, settings):  # noqa: ANN001, ANN201
    """Free/Pro/Enterprise synced from billing/plans.py, with test-mode Stripe price ids."""
    from billing.services import plans_sync

    for name, price in STRIPE_TEST_PRICES.items():
        setattr(settings, name, price)
    return {plan.code: plan for plan in plans_sync()}


@pytest.fixture
def alice(db, plans):  # noqa: ANN001, ANN201
    """Free plan, has history (apps add hers), likes Sci-Fi and Drama, onboarded."""
    from accounts.services import onboarding_complete
    from tests.factories import UserFactory

    user = UserFactory(username="alice", email="alice@example.com")
    onboarding_complete(user=user, favourite_genres=["Sci-Fi", "Drama"])
    return user


@pytest.fixture
def bob(db, plans):  # noqa: ANN001, ANN201
    """Paid plan (Pro, active Stripe subscription)."""
    from accounts.services import onboarding_complete
    from billing.services import account_plan_set
    from tests.factories import UserFactory

    user = UserFactory(username="bob", email="bob@example.com")
    onboarding_complete(user=user, favourite_genres=["Action"])
    account_plan_set(user=user, plan=plans["pro"], subscription_id="sub_1QBobPro0000000000000000", status="active")
    return user


@pytest.fixture
def carol(db, plans):  # noqa: ANN001, ANN201
    """New: no history, onboarding not done, Free plan."""
    from tests.factories import UserFactory

    return UserFactory(username="carol", email="carol@example.com")


@pytest.fixture
def staff(db):  # noqa: ANN001, ANN201
    from tests.factories import UserFactory

    return UserFactory(username="staff", email="staff@example.com", is_staff=True)


@pytest.fixture
def api_key_for_alice(alice):  # noqa: ANN001, ANN201
    """An active key of alice's: ``.raw`` is the secret, ``.headers`` the Django test-client kwargs."""
    from accounts.services import api_key_create
    from tests.factories import IssuedApiKey

    key, raw = api_key_create(user=alice, name="alice's app")
    return IssuedApiKey(key=key, raw=raw)


# --- serving: one tiny real bundle per test session (tests/ml_core/serving_bundle.py) ---------------------
@pytest.fixture(scope="session")
def serving_bundle(tmp_path_factory):  # noqa: ANN001, ANN201
    """Path of a tiny serving bundle (sasrec, lightgcn, ease, diffusion + ONNX; FAISS, TF-IDF, KG; DR weights)."""
    from tests.ml_core.serving_bundle import build_tiny_bundle

    root = tmp_path_factory.mktemp("serving-artifacts")
    build_tiny_bundle(root)
    return root / "serving"


@pytest.fixture
def serve_tiny(settings, serving_bundle, tmp_path, db):  # noqa: ANN001, ANN201
    """A callable ``serve_tiny(tier="1")``: serves a private copy of the tiny bundle on that tier, with the
    catalogue movies it knows, and returns the copy's folder. The engine is forgotten again after the test."""
    from recommendations import serving as serving_adapter
    from tests.factories import MovieFactory
    from tests.ml_core.serving_bundle import tiny_metadata

    def serve(tier: str = "1") -> Path:
        root = tmp_path / "artifacts"
        shutil.copytree(serving_bundle, root / "serving")
        settings.ML_ARTIFACTS_DIR = root
        settings.APEX_SERVING_TIER = tier
        for movie_id, meta in tiny_metadata().items():
            MovieFactory(id=movie_id, title=meta["title"], year=meta["year"], overview=meta["overview"],
                         genres=meta["genres"])
        serving_adapter.reset_engine()
        return root / "serving"

    yield serve
    serving_adapter.reset_engine()


@pytest.fixture
def tiny_serving(settings, serve_tiny):  # noqa: ANN001, ANN201
    """A private copy of the tiny bundle served on Tier 1 (CPU), the catalogue movies it knows, no consumer linger;
    yields the copy's folder."""
    settings.ONLINE_CONSUME_LINGER_S = 0.0  # with REDIS_URL an event's eager consume run would wait 2 s for more
    return serve_tiny("1")


@pytest.fixture(autouse=True)
def _celery_eager_unless_services(request: pytest.FixtureRequest):
    """Run Celery tasks inline, as in the embedded default, except in `services` tests with real workers."""
    if "services" in request.keywords:
        yield
        return
    from apex_site.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def probe(request: pytest.FixtureRequest):  # noqa: ANN201
    """Record probe counts for docs/RELIABILITY.md (tests/probes.py)."""
    from tests.probes import Probe

    return Probe(test=request.node.nodeid)
