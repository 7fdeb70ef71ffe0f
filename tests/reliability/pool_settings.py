"""The site's settings with a test-only URLconf (pool occupancy, views that fail on purpose)."""

from apex_site.settings import *  # noqa: F403

ROOT_URLCONF = "tests.reliability.pool_urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # as the tests hash (tests/conftest.py)
