"""Receivers of reports.signals for reports.delivery: every signed version is delivered."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from ..signals import version_signed
from . import admin as _admin  # noqa: F401 - registers the admin pages (not autodiscovered here)
from . import services
from . import tasks as _tasks  # noqa: F401 - registers the tasks with Celery in every process


@receiver(version_signed, dispatch_uid="reports.delivery.start")
def deliver_signed_version(sender: Any, version: Any, **kwargs: Any) -> None:
    services.start(version)
