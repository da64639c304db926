"""DICOM over TLS (PS3.15 Annex B.1, the Basic TLS Secure Transport Connection Profile).

An optional second listener (port 2762 by convention) speaks the same DIMSE services as the plain
one, inside TLS 1.2 or later. With a CA configured, the sender must present a certificate that CA
signed (mutual TLS): a hospital's modalities and PACS get certificates from the hospital's or our
CA, and a machine without one cannot even open an association. The called AE title still picks the
tenant and the tenant's caller rules still apply: the certificate proves the machine, not the
tenant.

The handshake runs in the association's own thread with a time limit, not in the accept loop, so
a peer that connects and never speaks TLS holds up nobody else.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from django.conf import settings

HANDSHAKE_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class TlsListener:
    port: int
    context: ssl.SSLContext


def server_context(
    *, certificate: str, key: str, ca: str = "", require_client_certificate: bool = True
) -> ssl.SSLContext:
    """A server-side context: our certificate and key, and the CA that signs the senders'."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=certificate, keyfile=key)
    if ca:
        context.load_verify_locations(cafile=ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context


def configured_listener() -> TlsListener | None:
    """The TLS listener the settings ask for, or None when TLS is off (the default)."""
    cfg = settings.SKYLIGHT
    if not cfg["SCP_TLS_PORT"]:
        return None
    context = server_context(
        certificate=cfg["SCP_TLS_CERT"],
        key=cfg["SCP_TLS_KEY"],
        ca=cfg["SCP_TLS_CA"],
        require_client_certificate=cfg["SCP_TLS_REQUIRE_CLIENT_CERT"],
    )
    return TlsListener(port=cfg["SCP_TLS_PORT"], context=context)
