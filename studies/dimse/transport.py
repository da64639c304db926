"""pynetdicom's acceptor, made event-driven.

pynetdicom 3 runs each association as two polling threads: the DUL thread sleeps
``_run_loop_delay`` (1 ms) whenever no PDU is waiting, the association reactor sleeps 1 ms per
turn, and a PDU is read 4 KiB per ``recv``. With one instance per round trip that polling, not the
work, sets the C-STORE rate. These subclasses keep pynetdicom's state machine and handlers
untouched and change only how the threads wait:

- the DUL thread blocks in ``select`` on the socket and on a wake-up pipe that is written whenever
  the association queues a PDU to send, so it reacts at once to both directions;
- PDUs are read with ``recv_into`` straight into a buffer of the PDU's size;
- the association reactor blocks on its message queue instead of sleeping and polling;
- TCP_NODELAY is set on every accepted socket: DIMSE is request/response, and Nagle's algorithm
  plus delayed ACKs would otherwise stall each exchange by ~40 ms on Linux.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
import types
from typing import Any

import pynetdicom.association as _association_module
from pynetdicom.dul import DULServiceProvider
from pynetdicom.transport import AssociationSocket, RequestHandler

from .tls import HANDSHAKE_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

# How long a blocked thread waits before re-checking timers (ARTIM, idle, release, abort).
_WAKE_INTERVAL = 0.01
_real_sleep = time.sleep


def _reactor_sleep(seconds: float) -> None:
    # The reactor's per-turn ``time.sleep(0.001)`` is skipped only in our acceptor threads, whose
    # get_msg blocks instead; any other association in the process (an SCU) keeps pynetdicom's.
    if seconds == 0.001 and getattr(threading.current_thread(), "_skylight_event_driven", False):
        return
    _real_sleep(seconds)


def install() -> None:
    """Route the association module's sleeps through ``_reactor_sleep`` (idempotent)."""
    if not isinstance(getattr(_association_module, "time", None), types.SimpleNamespace):
        shim = types.SimpleNamespace(
            **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
        )
        shim.sleep = _reactor_sleep
        _association_module.time = shim  # type: ignore[assignment]


class _WakeQueue(queue.Queue):
    def __init__(self, wake_fd: int):
        super().__init__()
        self._wake_fd = wake_fd

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        try:
            os.write(self._wake_fd, b"\x00")
        except (BlockingIOError, OSError):
            pass  # the pipe is full, so the DUL thread is already awake


class EventDrivenDUL(DULServiceProvider):
    def __init__(self, assoc: Any):
        super().__init__(assoc)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.to_provider_queue = _WakeQueue(self._wake_w)
        self._run_loop_delay = 0

    def _is_transport_event(self) -> bool:
        sock = self.socket
        if (
            sock is not None
            and sock.socket is not None
            and getattr(sock, "_is_connected", False)
            and self.state_machine.current_state != "Sta13"
            and self.to_provider_queue.empty()
            and self.event_queue.empty()
            # TLS may hold a decrypted record that select() on the socket cannot see.
            and not (isinstance(sock.socket, ssl.SSLSocket) and sock.socket.pending())
        ):
            try:
                select.select([sock.socket, self._wake_r], [], [], _WAKE_INTERVAL)  # type: ignore[type-var]
            except (OSError, ValueError):
                pass
            try:
                os.read(self._wake_r, 4096)
            except (BlockingIOError, OSError):
                pass
        return super()._is_transport_event()

    def run_reactor(self) -> None:
        try:
            super().run_reactor()
        finally:
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass


class FastSocket(AssociationSocket):
    def recv(self, nr_bytes: int) -> bytearray:
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        received = 0
        sock = self.socket
        assert sock is not None
        while received < nr_bytes:
            n = sock.recv_into(view[received:], nr_bytes - received)
            if not n:
                return buffer[:received]
            received += n
        return buffer


class FastRequestHandler(RequestHandler):
    def handle(self) -> None:
        tls: ssl.SSLContext | None = getattr(self.server, "skylight_tls", None)
        if tls is not None and not self._tls_handshake(tls):
            return
        super().handle()

    def _tls_handshake(self, context: ssl.SSLContext) -> bool:
        """Wrap the accepted socket in TLS; a peer that fails the handshake (no certificate, one
        our CA did not sign, plain DICOM on the TLS port) is disconnected before any PDU."""
        raw = self.request
        raw.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        try:
            self.request = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info(
                "TLS handshake from %s refused: %s", self.client_address[0], type(exc).__name__
            )
            try:
                raw.close()
            except OSError:
                pass
            return False
        self.request.settimeout(None)
        return True

    def _create_association(self) -> Any:
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        assoc = super()._create_association()
        assoc.dul = EventDrivenDUL(assoc)
        assoc.set_socket(FastSocket(assoc, client_socket=self.request))
        dimse = assoc.dimse

        def get_msg(block: bool = False) -> Any:
            # Only the reactor asks without blocking; it now waits briefly on the queue instead
            # of sleeping. Blocking callers (C-GET sub-operations) keep pynetdicom's timeout.
            try:
                if block:
                    return dimse.msg_queue.get(block=True, timeout=dimse.dimse_timeout)
                return dimse.msg_queue.get(timeout=_WAKE_INTERVAL)
            except queue.Empty:
                return None, None

        dimse.get_msg = get_msg  # type: ignore[method-assign]
        assoc._skylight_event_driven = True  # type: ignore[attr-defined]  # the Association is the thread running its reactor
        return assoc
