"""Fixtures of the DICOM set-up tests: alice's browser session, Skylight's SCP, a hospital PACS."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.conftest import free_port


@pytest.fixture
def alice(people: Any) -> Client:
    """The demo hospital's admin, signed in."""
    client = Client()
    client.force_login(people.alice)
    return client


@pytest.fixture
def skylight_port(people: Any) -> Iterator[int]:
    """Skylight's real SCP on a free loopback port (C-ECHO and association handling only)."""
    from studies.dimse.scp import start_server

    port = free_port()
    server = start_server("127.0.0.1", port)
    try:
        yield port
    finally:
        server.shutdown()


@pytest.fixture
def hospital_pacs() -> Iterator[int]:
    """A hospital PACS that answers C-ECHO only when called as HOSPPACS (pynetdicom)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="HOSPPACS")
    ae.add_supported_context(Verification)
    ae.require_called_aet = True
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        yield port
    finally:
        server.shutdown()


def echoscu(port: int, called: str, calling: str) -> subprocess.CompletedProcess[str]:
    """dcmtk's echoscu, as a modality's engineer would run it."""
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
