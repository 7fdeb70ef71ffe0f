from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def site_name_and_domain(**_: Any) -> None:
    """After migrate (and test-database creation): the Site is APEX at SITE_DOMAIN, not example.com."""
    from django.conf import settings
    from django.contrib.sites.models import Site

    Site.objects.update_or_create(id=settings.SITE_ID, defaults={"name": settings.SITE_NAME,
                                                                 "domain": settings.SITE_DOMAIN})


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from apex_site.client_ip import trusted_networks

        from . import receivers, schema  # noqa: F401  (schema registers the OpenAPI description of Api-Key auth)

        trusted_networks()  # a bad TRUSTED_PROXIES entry stops start-up (ImproperlyConfigured), not every request
        post_migrate.connect(site_name_and_domain, sender=self, dispatch_uid="accounts.site_name_and_domain")
        receivers.connect()  # a changed user leaves every process's JWT memory
