"""Receivers of reports.signals for reports.critical (none yet); registers the beat task."""

from . import tasks  # noqa: F401  - Celery's autodiscovery looks at reports.tasks only
