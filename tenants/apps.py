from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        from . import rls, sessions, signals  # noqa: F401 - signals connects the login audit receivers

        rls.connect()
