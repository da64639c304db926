"""C-ECHO and C-STORE through dcmtk against the real SCP: tenancy at the association, durable
bytes, indexing, duplicates, and two hospitals sending the same UIDs."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pydicom
import pytest

from studies.dicom.part10 import data_set_offset
from studies.models import Instance, Receipt, ReceiptStatus, Series, Study
from studies.storage import object_store
from tenants.models import AuditAction, AuditEvent
from tests.conftest import storescu, storescu_each_syntax, wait_for


def _echo(port: int, called: str, calling: str = "MODALITY1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _data_set_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[data_set_offset(raw) :]


def _stored(instance: Instance) -> bytes:
    with object_store().open(instance.storage_key, "rb") as f:
        return f.read()


def _all_indexed(tenant, expected: int) -> bool:  # noqa: ANN001
    pending = Receipt.objects.filter(tenant=tenant, status=ReceiptStatus.PENDING).count()
    return pending == 0 and Instance.objects.filter(tenant=tenant).count() >= expected


@pytest.mark.smoke
def test_echo_to_a_known_ae_title_succeeds(scp):
    result = _echo(scp.port, "DEMOHOSP")
    assert result.returncode == 0, result.stderr


@pytest.mark.smoke
def test_unknown_called_ae_title_is_rejected_with_its_reason(scp):
    result = _echo(scp.port, "NOSUCHAE")
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stderr
    event = AuditEvent.objects.get(action=AuditAction.ASSOCIATION_REJECTED)
    assert (
        event.tenant is None
        and event.detail["reason"] == 7
        and event.detail["called_ae"] == "NOSUCHAE"
    )


def test_calling_ae_title_not_allowed_by_the_tenant_is_rejected(scp, people):
    from tenants.models import AllowedCaller

    AllowedCaller.objects.filter(tenant=people.demo).update(ae_title="CT_SCANNER")
    refused = _echo(scp.port, "DEMOHOSP", calling="INTRUDER")
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stderr
    assert _echo(scp.port, "DEMOHOSP", calling="CT_SCANNER").returncode == 0
    # The other hospital's rules are its own: it still admits any title from loopback.
    assert _echo(scp.port, "SECONDHOSP", calling="INTRUDER").returncode == 0


def test_known_calling_ae_title_from_a_network_not_allowed_is_rejected(scp, people):
    from tenants.models import AllowedCaller

    AllowedCaller.objects.filter(tenant=people.demo).update(
        ae_title="CT_SCANNER", network="10.99.0.0/16"
    )
    result = _echo(scp.port, "DEMOHOSP", calling="CT_SCANNER")
    assert result.returncode != 0
    assert "Rejected Permanent" in result.stderr


def test_a_300_slice_ct_and_every_pydicom_file_are_stored_byte_exact_and_indexed(
    scp, people, ct_series, pydicom_files, storescu_reference
):
    storescu(scp.port, "DEMOHOSP", ct_series)
    storescu_each_syntax(scp.port, "DEMOHOSP", pydicom_files)

    ct_files = sorted(ct_series.rglob("*.dcm"))
    sent = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): _data_set_bytes(p)
        for p in ct_files
    }
    assert not set(sent) & set(storescu_reference)
    sent.update(storescu_reference)  # what storescu put on the wire for pydicom's files
    wait_for(lambda: _all_indexed(people.demo, len(sent)), timeout=180, what="indexing")

    instances = {i.sop_instance_uid: i for i in Instance.objects.filter(tenant=people.demo)}
    assert set(instances) == set(sent)
    for uid, data_set in sent.items():
        stored = _stored(instances[uid])
        # The stored object is our File Meta header followed by exactly the data set that was sent.
        assert stored[data_set_offset(stored) :] == data_set, f"instance {uid} changed in storage"
        assert hashlib.sha256(stored).hexdigest() == instances[uid].sha256
        assert instances[uid].storage_key.startswith(f"tenants/{people.demo.id}/")
    # storescu sends canonical files unchanged: the CT's stored data sets are the files' own bytes.
    assert all(
        sent[uid] == _data_set_bytes(p) for uid, p in zip(list(sent)[:300], ct_files, strict=True)
    )

    ct = Study.objects.get(tenant=people.demo, accession_number="ACC300")
    assert ct.number_of_study_related_instances == 300
    assert ct.number_of_study_related_series == 1
    assert ct.modalities_in_study == "\\CT\\"
    series = Series.objects.get(study=ct)
    assert series.number_of_series_related_instances == 300
    # Nothing of it exists for the other hospital.
    assert not Instance.objects.filter(tenant=people.second).exists()
    assert not Study.objects.filter(tenant=people.second).exists()


@pytest.mark.smoke
def test_every_stored_instance_leaves_an_audit_row_naming_the_sending_ae(
    scp, people, pydicom_files
):
    sample = pydicom_files[:5]
    storescu_each_syntax(scp.port, "DEMOHOSP", sample, calling="CT_ROOM_2")
    events = AuditEvent.objects.filter(tenant=people.demo, action=AuditAction.DIMSE_STORE)
    assert events.count() == len(sample)
    assert {e.actor_ae_title for e in events} == {"CT_ROOM_2"}
    assert all(e.source_address == "127.0.0.1" and e.sop_instance_uid for e in events)
    receipts = dict(
        Receipt.objects.filter(tenant=people.demo).values_list("id", "sop_instance_uid")
    )
    assert {e.detail["receipt"]: e.sop_instance_uid for e in events} == receipts
    assert all(e.detail["called_ae"] == "DEMOHOSP" and e.detail["size"] > 0 for e in events)


@pytest.mark.smoke
def test_the_same_instance_sent_twice_is_stored_once(scp, people, pydicom_files):
    path = next(p for p in pydicom_files if p.name == "CT_small.dcm")
    storescu(scp.port, "DEMOHOSP", [path])
    wait_for(lambda: _all_indexed(people.demo, 1), what="first copy indexed")
    storescu(scp.port, "DEMOHOSP", [path])
    wait_for(
        lambda: Receipt.objects.filter(
            tenant=people.demo, status=ReceiptStatus.DUPLICATE, object_deleted=True
        ).exists(),
        what="second copy recognised as duplicate and its bytes removed",
    )
    assert Instance.objects.filter(tenant=people.demo).count() == 1
    kept = Instance.objects.get(tenant=people.demo)
    duplicate = Receipt.objects.get(tenant=people.demo, status=ReceiptStatus.DUPLICATE)
    assert not object_store().exists(duplicate.storage_key)
    assert object_store().exists(kept.storage_key)
    assert AuditEvent.objects.filter(tenant=people.demo, action=AuditAction.DUPLICATE).count() == 1


@pytest.mark.smoke
def test_same_uids_sent_to_the_second_hospital_become_a_separate_copy_only_it_sees(
    scp, people, pydicom_files
):
    path = next(p for p in pydicom_files if p.name == "MR_small.dcm")
    storescu(scp.port, "DEMOHOSP", [path])
    storescu(scp.port, "SECONDHOSP", [path])
    wait_for(
        lambda: _all_indexed(people.demo, 1) and _all_indexed(people.second, 1),
        what="both copies indexed",
    )
    a = Instance.objects.get(tenant=people.demo)
    b = Instance.objects.get(tenant=people.second)
    assert a.sop_instance_uid == b.sop_instance_uid
    assert a.pk != b.pk and a.study_id != b.study_id and a.storage_key != b.storage_key
    assert b.storage_key.startswith(f"tenants/{people.second.id}/")
    assert Receipt.objects.filter(status=ReceiptStatus.DUPLICATE).count() == 0


TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
]


def test_every_transfer_syntax_and_a_private_sop_class_are_accepted_and_recorded(scp, people):
    """A pynetdicom SCU proposes each syntax alone; what is accepted is what gets stored."""
    import copy

    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset, FileMetaDataset
    from pynetdicom import AE

    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del template.PixelData  # the header is what travels here; pixels are the codecs' business
    sent: dict[str, str] = {}
    for n, ts in enumerate([*TRANSFER_SYNTAXES, "private"]):
        ae = AE(ae_title="TSPROBE")
        sop_class = "1.2.826.0.1.3680043.9.9999.1" if ts == "private" else template.SOPClassUID
        syntax = "1.2.840.10008.1.2.1" if ts == "private" else ts
        ae.add_requested_context(sop_class, [syntax])
        ds = Dataset()  # a fresh data set, encoded in whatever syntax the context says
        ds.update(copy.deepcopy(template))
        ds.file_meta = FileMetaDataset()
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.9999.2.{n + 1}"
        ds.file_meta.TransferSyntaxUID = syntax
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="DEMOHOSP")
        assert assoc.is_established, ts
        try:
            assert [cx.transfer_syntax[0] for cx in assoc.accepted_contexts] == [syntax]
            status = assoc.send_c_store(ds)
        finally:
            assoc.release()
        assert status.Status == 0x0000, (ts, status)
        sent[str(ds.SOPInstanceUID)] = syntax
    wait_for(lambda: _all_indexed(people.demo, len(sent)), what="indexing")
    stored = dict(
        Instance.objects.filter(tenant=people.demo).values_list(
            "sop_instance_uid", "transfer_syntax_uid"
        )
    )
    assert stored == sent
    private = Instance.objects.get(tenant=people.demo, sop_class_uid="1.2.826.0.1.3680043.9.9999.1")
    assert private.study.study_instance_uid == template.StudyInstanceUID


def test_several_associations_at_once_are_all_stored(scp, people, tmp_path):
    from studies.dicom import synthetic

    folders = []
    for seed in (21, 22, 23):
        spec = synthetic.simple_spec(
            seed=seed,
            modality="CT",
            slices=30,
            rows=128,
            columns=128,
            series_count=1,
            patient_id=f"CONC{seed}",
            body_part="CHEST",
        )
        folders.append(synthetic.write_study(spec, tmp_path / str(seed))[0].parent.parent)
    senders = [
        subprocess.Popen(
            [
                "storescu",
                "-aet",
                f"MOD{i}",
                "-aec",
                "DEMOHOSP",
                "+sd",
                "+r",
                "127.0.0.1",
                str(scp.port),
                str(folder),
            ],
            stderr=subprocess.PIPE,
        )
        for i, folder in enumerate(folders)
    ]
    assert [s.wait(timeout=300) for s in senders] == [0, 0, 0]
    wait_for(lambda: _all_indexed(people.demo, 90), timeout=120, what="indexing")
    assert sorted(
        Study.objects.filter(tenant=people.demo).values_list(
            "number_of_study_related_instances", flat=True
        )
    ) == [30, 30, 30]
    accepted = AuditEvent.objects.filter(
        tenant=people.demo, action=AuditAction.ASSOCIATION_ACCEPTED
    )
    assert set(accepted.values_list("actor_ae_title", flat=True)) == {"MOD0", "MOD1", "MOD2"}


def test_an_association_over_the_limit_is_refused_and_audited_as_refused(people, indexer, settings):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    from studies.dimse.scp import start_server
    from tests.conftest import free_port

    settings.SKYLIGHT = {**settings.SKYLIGHT, "SCP_MAX_ASSOCIATIONS": 1}
    port = free_port()
    server = start_server("127.0.0.1", port)
    try:
        holder = AE(ae_title="HOLDER")
        holder.add_requested_context(Verification)
        held = holder.associate("127.0.0.1", port, ae_title="DEMOHOSP")
        assert held.is_established
        refused = _echo(port, "DEMOHOSP", calling="SECOND")
        held.release()
    finally:
        server.shutdown()
    assert refused.returncode != 0 and "Local Limit Exceeded" in refused.stderr
    rejected = AuditEvent.objects.get(action=AuditAction.ASSOCIATION_REJECTED)
    assert (
        rejected.actor_ae_title == "SECOND" and rejected.detail["reason"] == "local-limit-exceeded"
    )
    assert set(
        AuditEvent.objects.filter(action=AuditAction.ASSOCIATION_ACCEPTED).values_list(
            "actor_ae_title", flat=True
        )
    ) == {"HOLDER"}
