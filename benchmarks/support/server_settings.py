"""Settings for the ASGI server the browser journeys drive: the project's settings, schema without migrations.

dj-stripe's migrations take about two minutes; the journeys build the same schema from the models
(like pytest's ``--nomigrations``) in a throw-away SQLite file, so a run starts in seconds.
"""

import os

from apex_site.settings import *  # noqa: F403
from apex_site.settings import INSTALLED_APPS


class _DisableMigrations(dict):
    def __contains__(self, item: object) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


MIGRATION_MODULES = _DisableMigrations()
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
assert "recommendations" in INSTALLED_APPS
if os.environ.get("APEX_FLOWS_STRIPE_HOST"):  # the journeys' local server of recorded Stripe responses
    STRIPE_API_HOST = os.environ["APEX_FLOWS_STRIPE_HOST"]
