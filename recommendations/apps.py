from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommendations"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects the events signals (docs/ARCHITECTURE.md)
