from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from apex_site.client_ip import trusted_networks

        from . import schema  # noqa: F401  (registers the OpenAPI description of Api-Key auth)

        trusted_networks()  # a bad TRUSTED_PROXIES entry stops start-up (ImproperlyConfigured), not every request
