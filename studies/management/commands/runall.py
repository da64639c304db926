from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.core.servers.basehttp import run
from django.db import close_old_connections

from studies import services
from studies.dimse.scp import start_server

log = logging.getLogger(__name__)


def _housekeeping(stop: threading.Event, interval: float) -> None:
    """What Celery beat does in production: the ready sweep and the reconciler."""
    last_reconcile = 0.0
    while not stop.wait(interval):
        try:
            services.sweep_ready_studies()
            if time.monotonic() - last_reconcile > 30:
                services.reconcile_receipts()
                last_reconcile = time.monotonic()
        except Exception:  # noqa: BLE001 - keep sweeping; the next turn retries
            log.exception("housekeeping failed")
        finally:
            close_old_connections()


class Command(BaseCommand):
    help = "Embedded mode in one process: web server, DICOM SCP and in-process tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--web", default="127.0.0.1:8000", help="host:port for the web server")
        parser.add_argument("--scp-host", default=settings.SKYLIGHT["SCP_HOST"])
        parser.add_argument("--scp-port", type=int, default=settings.SKYLIGHT["SCP_PORT"])

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.wsgi import get_wsgi_application

        host, _, port = options["web"].rpartition(":")
        scp = start_server(options["scp_host"], options["scp_port"])
        stop = threading.Event()
        threading.Thread(
            target=_housekeeping, args=(stop, 2.0), name="housekeeping", daemon=True
        ).start()
        self.stdout.write(f"DICOM SCP on {options['scp_host']}:{options['scp_port']}")
        self.stdout.write(f"Web on http://{host}:{port}/  (Ctrl-C to stop)")
        self.stdout.flush()
        try:
            run(host, int(port), get_wsgi_application(), threading=True)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            scp.shutdown()
