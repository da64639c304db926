"""DICOM over TLS: dcmtk's ``echoscu +tls`` and ``storescu +tls`` against the SCP's TLS listener,
with a CA and certificates made here by openssl. A sender with our CA's certificate is served; one
without a certificate, with one from another CA, or speaking plain DICOM is refused before any
association."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from studies.dimse.tls import server_context
from studies.models import Instance
from tenants.models import AuditAction, AuditEvent
from tests.conftest import free_port, wait_for


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}-ca.key", folder / f"{name}-ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={name} test CA", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return cert, key


def _signed(folder: Path, name: str, ca: tuple[Path, Path], san: str) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    ext = folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(csr))  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ours = _ca(folder, "skylight")
    theirs = _ca(folder, "stranger")
    server = _signed(folder, "scp", ours, "IP:127.0.0.1,DNS:localhost")
    client = _signed(folder, "modality", ours, "DNS:modality.demo-hospital.test")
    stranger = _signed(folder, "stranger", theirs, "DNS:somewhere.test")
    return Pki(ours[0], *server, *client, *stranger)


@pytest.fixture
def tls_scp(people, indexer, pki: Pki) -> Iterator[int]:  # noqa: ANN001
    from studies.dimse.scp import start_server
    from studies.dispatch import dispatcher

    context = server_context(
        certificate=str(pki.server_cert), key=str(pki.server_key), ca=str(pki.ca)
    )
    port = free_port()
    server = start_server("127.0.0.1", port, tls=context)
    try:
        yield port
    finally:
        server.shutdown()
        dispatcher.wait_idle(timeout=30)


def _tls(pki: Pki, cert: Path | None, key: Path | None) -> list[str]:
    own = ["+tls", str(key), str(cert)] if cert and key else ["+tla"]
    return [*own, "+cf", str(pki.ca)]


def _echo(port: int, extra: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["echoscu", "-aet", "MODALITY1", "-aec", "DEMOHOSP", *extra, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_echo_over_tls_with_a_certificate_from_our_ca_succeeds(tls_scp, pki):
    result = _echo(tls_scp, _tls(pki, pki.client_cert, pki.client_key))
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_over_tls_is_stored_and_indexed_for_the_called_tenant(tls_scp, pki, people):
    ct = get_testdata_file("CT_small.dcm")
    result = subprocess.run(
        ["storescu", "-aet", "MODALITY1", "-aec", "DEMOHOSP",
         *_tls(pki, pki.client_cert, pki.client_key), "127.0.0.1", str(tls_scp), ct],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: Instance.objects.filter(tenant=people.demo).count() == 1, what="indexing")
    assert not Instance.objects.filter(tenant=people.second).exists()
    assert AuditEvent.objects.filter(tenant=people.demo, action=AuditAction.DIMSE_STORE).exists()


def test_a_sender_without_a_certificate_is_refused(tls_scp, pki):
    result = _echo(tls_scp, _tls(pki, None, None))
    assert result.returncode != 0
    assert not AuditEvent.objects.filter(action=AuditAction.ASSOCIATION_ACCEPTED).exists()


def test_a_sender_with_another_cas_certificate_is_refused(tls_scp, pki):
    result = _echo(tls_scp, _tls(pki, pki.stranger_cert, pki.stranger_key))
    assert result.returncode != 0
    assert not AuditEvent.objects.filter(action=AuditAction.ASSOCIATION_ACCEPTED).exists()


def test_plain_dicom_on_the_tls_port_is_refused_and_the_listener_keeps_serving(tls_scp, pki):
    assert _echo(tls_scp, []).returncode != 0
    result = _echo(tls_scp, _tls(pki, pki.client_cert, pki.client_key))
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_ca_the_listener_encrypts_but_asks_no_client_certificate(people, pki):
    from studies.dimse.scp import start_server

    context = server_context(certificate=str(pki.server_cert), key=str(pki.server_key))
    port = free_port()
    server = start_server("127.0.0.1", port, tls=context)
    try:
        result = _echo(port, _tls(pki, None, None))
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.shutdown()
