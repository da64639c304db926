from __future__ import annotations

import signal
import socketserver
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from studies.dimse.scp import start_server
from studies.dimse.tls import configured_listener
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
        servers = [server]
        self.stdout.write(
            f"DICOM SCP listening on {options['host']}:{options['port']}", ending="\n"
        )
        tls = configured_listener()
        if tls is not None:
            servers.append(start_server(options["host"], tls.port, tls=tls.context))
            self.stdout.write(f"DICOM TLS listening on {options['host']}:{tls.port}", ending="\n")
        self.stdout.flush()
        stop.wait()
        self.stdout.write("stopping: refusing new associations, finishing the current ones")
        for each in servers:
            socketserver.BaseServer.shutdown(each)  # stop accepting; pynetdicom's would abort all
        deadline = time.monotonic() + 30
        while any(each.active_associations for each in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        for each in servers:
            each.shutdown()
        dispatcher.wait_idle(timeout=30)
