from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from studies import services
from studies.dimse.scp import start_server
from studies.dispatch import dispatcher
from tenants import audit
from tenants.usage import metrics
from worklists import services as worklist_services

log = logging.getLogger(__name__)
HOURLY = 3600.0


def _housekeeping(stop: threading.Event, sweep_every: float, reconcile_every: float) -> None:
    """What Celery beat does in production: the ready sweep, the worklist's housekeeping, the
    sealing of the audit log and the escalation of overdue critical results; with the reconciler,
    the sweep of lost report deliveries; hourly, credential reminders and retention."""
    from reports.critical.tasks import escalate_critical
    from reports.delivery.tasks import sweep_deliveries
    from studies.retention.tasks import apply_retention
    from worklists.groupadmin.tasks import remind_expiring_credentials

    last_reconcile = time.monotonic()
    last_hourly = time.monotonic() - HOURLY  # once soon after start, then every hour
    while not stop.wait(sweep_every):
        try:
            services.sweep_ready_studies()
            worklist_services.housekeeping()
            audit.seal()
            escalate_critical()
            if time.monotonic() - last_reconcile > reconcile_every:
                services.reconcile_receipts()
                sweep_deliveries()
                last_reconcile = time.monotonic()
            if time.monotonic() - last_hourly > HOURLY:
                last_hourly = time.monotonic()
                remind_expiring_credentials()
                apply_retention()
        except Exception:  # noqa: BLE001 - keep sweeping; the next turn retries
            log.exception("housekeeping failed")
        finally:
            close_old_connections()


class Command(BaseCommand):
    help = "Embedded mode on one machine: web server, DICOM SCP and in-process tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--web", default="127.0.0.1:8000", help="host:port for the web server")
        parser.add_argument("--scp-host", default=settings.SKYLIGHT["SCP_HOST"])
        parser.add_argument("--scp-port", type=int, default=settings.SKYLIGHT["SCP_PORT"])

    def handle(self, *args: Any, **options: Any) -> None:
        # Values left by an earlier run's processes would be added to this run's.
        metrics.empty_directory()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        # gunicorn serves the web tier even here: it streams request bodies (chunked STOW-RS
        # uploads included), which Django's development server does not.
        # Two malloc arenas keep the workers' memory flat under large uploads (docs/performance.md).
        web = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", options["web"],
                "--workers", "2", "--worker-class", "gthread", "--threads", "8", "--timeout", "600",
            ],
            env={**os.environ, "MALLOC_ARENA_MAX": "2"},
        )  # fmt: skip
        scp = start_server(options["scp_host"], options["scp_port"])
        threading.Thread(
            target=_housekeeping,
            args=(
                stop,
                settings.SKYLIGHT["READY_SWEEP_SECONDS"],
                settings.SKYLIGHT["RECONCILE_SECONDS"],
            ),
            name="housekeeping",
            daemon=True,
        ).start()
        self.stdout.write(
            f"Skylight is running: web http://{options['web']}/  DICOM {options['scp_host']}:"
            f"{options['scp_port']} (AE titles DEMOHOSP, SECONDHOSP). Ctrl-C stops it."
        )
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                if web.poll() is not None:
                    self.stderr.write("the web server stopped; shutting down")
                    break
        finally:
            scp.shutdown()
            dispatcher.wait_idle(timeout=30)
            if web.poll() is None:
                web.terminate()
                web.wait(timeout=30)
