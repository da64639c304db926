from django.apps import AppConfig


class WorklistsConfig(AppConfig):
    name = "worklists"
    verbose_name = "Reading worklists"

    def ready(self) -> None:
        from studies.signals import study_ready

        from .signals import on_study_ready

        study_ready.connect(on_study_ready, dispatch_uid="worklists.on_study_ready")
