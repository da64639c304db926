"""The connection test: Skylight sends a C-ECHO to one of the hospital's registered DICOM nodes.

The node is always a ``DicomDestination`` of the tenant, read by id within the tenant: the request
names which node, never an address, so the test cannot be pointed at an arbitrary host. The name
is resolved once and the address checked before connecting (a name that resolves to a link-local
or metadata address is refused), and the connection goes to that checked address.

A dead host must not hold a web worker: every network step has a short timeout, and the whole
test runs in a small thread pool with an overall deadline, so even a DNS lookup that hangs (which
no socket timeout covers) returns "timed out" to the page on time.

Why a TCP connect before the association: pynetdicom reports a failed connection only in its
log, so "refused" and "timed out" would look the same; a plain connect first tells them apart in
words a hospital's network team can act on.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tenants.models import DicomDestination

# Seconds per network step (connect, A-ASSOCIATE, C-ECHO), and for the whole test.
STEP_TIMEOUT = 3.0
DEADLINE = 8.0
# Tests at once, per web process; more wait their turn (within the deadline).
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="echo-test")

# A-ASSOCIATE-RJ reasons (PS3.8 9.3.4) when the peer (service user) rejects.
_USER_REASONS = {
    1: "no reason given",
    2: "application context name not supported",
    3: "calling AE not recognised",
    7: "called AE not recognised",
}
_PROVIDER_REASONS = {
    1: "no reason given",
    2: "protocol version not supported",
}


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    outcome: str  # a short code for the audit row: success, refused, timeout, rejected, ...
    message: str  # what the admin reads


def _check_address(address: str) -> str | None:
    ip = ipaddress.ip_address(address)
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "that address is link-local, multicast or reserved; Skylight does not call it"
    return None


def _echo(destination: DicomDestination, calling_ae_title: str) -> EchoResult:
    where = f"{destination.host}:{destination.port}"
    try:
        infos = socket.getaddrinfo(
            destination.host, destination.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror:
        return EchoResult(False, "unknown-host", f"Host not found: {destination.host}.")
    address = str(infos[0][4][0])
    refused = _check_address(address)
    if refused:
        return EchoResult(False, "not-allowed", f"Not tested: {refused}.")
    try:
        with socket.create_connection((address, destination.port), timeout=STEP_TIMEOUT):
            pass
    except ConnectionRefusedError:
        return EchoResult(False, "refused", f"Refused: nothing accepts connections on {where}.")
    except TimeoutError:
        return EchoResult(
            False, "timeout", f"Timed out: {where} did not answer within {STEP_TIMEOUT:g} s."
        )
    except OSError as exc:
        return EchoResult(False, "unreachable", f"Unreachable: {where} ({exc.strerror or exc}).")

    ae = AE(ae_title=calling_ae_title)
    ae.add_requested_context(Verification)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = STEP_TIMEOUT
    ae.network_timeout = STEP_TIMEOUT
    started = time.monotonic()
    assoc = ae.associate(address, destination.port, ae_title=destination.ae_title)
    # pynetdicom aborts on its own ACSE timeout too: a peer that stayed silent until then
    # timed out; one that ended it sooner aborted it (or spoke something other than DICOM).
    silent = time.monotonic() - started >= STEP_TIMEOUT
    if assoc.is_rejected:
        answer = assoc.acceptor.primitive
        source = getattr(answer, "result_source", None)
        reason = getattr(answer, "diagnostic", None)
        reasons = _USER_REASONS if source == 1 else _PROVIDER_REASONS
        words = reasons.get(reason or 0, f"reason {reason}")
        return EchoResult(False, "rejected", f"Association rejected: {words}.")
    if assoc.is_aborted and not silent:
        return EchoResult(
            False,
            "aborted",
            f"Aborted: {where} answered, but aborted the association (is it a DICOM node?).",
        )
    if not assoc.is_established:
        return EchoResult(
            False,
            "timeout",
            f"Timed out: {where} accepted the connection but did not answer the association "
            f"request within {STEP_TIMEOUT:g} s.",
        )
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or "Status" not in status:
        return EchoResult(False, "timeout", f"Timed out: {where} did not answer the C-ECHO.")
    code = int(status.Status)
    if code != 0:
        return EchoResult(False, "failed", f"The C-ECHO was answered with status 0x{code:04X}.")
    elapsed = (time.monotonic() - started) * 1000
    return EchoResult(
        True,
        "success",
        f"Success: {destination.ae_title} at {where} answered the C-ECHO ({elapsed:.0f} ms).",
    )


def echo(destination: DicomDestination, *, calling_ae_title: str) -> EchoResult:
    """C-ECHO ``destination`` as ``calling_ae_title``; an answer within ``DEADLINE`` seconds."""
    future = _POOL.submit(_echo, destination, calling_ae_title)
    try:
        return future.result(timeout=DEADLINE)
    except FutureTimeout:
        return EchoResult(
            False,
            "timeout",
            f"Timed out: no answer from {destination.host}:{destination.port} "
            f"within {DEADLINE:g} s.",
        )
