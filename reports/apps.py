import importlib

from django.apps import AppConfig

# The features whose receivers.py connects to the lifecycle's signals (reports/signals.py).
FEATURES = ("collab", "critical", "delivery", "evidence", "review", "templating")


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        for feature in FEATURES:
            importlib.import_module(f"reports.{feature}.receivers")
