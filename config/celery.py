"""The Celery application. Queues: ``ingest`` (indexing), ``derive`` (derived data), ``prefetch``."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("skylight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("ingest"), Queue("derive"), Queue("prefetch"))
app.autodiscover_tasks()
