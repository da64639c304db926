from __future__ import annotations

import signal
import socketserver
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from studies.dimse.scp import start_server
from studies.dispatch import dispatcher


class Command(BaseCommand):
    help = "Run the DICOM SCP (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET) for every tenant; the called AE title picks the tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.SKYLIGHT["SCP_HOST"])
        parser.add_argument("--port", type=int, default=settings.SKYLIGHT["SCP_PORT"])

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server = start_server(options["host"], options["port"])
        self.stdout.write(
            f"DICOM SCP listening on {options['host']}:{options['port']}", ending="\n"
        )
        self.stdout.flush()
        stop.wait()
        self.stdout.write("stopping: refusing new associations, finishing the current ones")
        socketserver.BaseServer.shutdown(server)  # stop accepting; pynetdicom's would abort all
        deadline = time.monotonic() + 30
        while server.active_associations and time.monotonic() < deadline:
            time.sleep(0.1)
        server.shutdown()
        dispatcher.wait_idle(timeout=30)
