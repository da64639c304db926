"""Query/Retrieve through dcmtk against the real SCP: C-FIND at every level, C-MOVE to a storescp
the test starts (byte for byte, or decompressed when the peer takes only uncompressed syntaxes),
C-GET, unknown destinations, and two hospitals holding the same UIDs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from studies.dicom import synthetic
from studies.dicom.part10 import data_set_offset
from studies.models import Instance, Receipt, ReceiptStatus
from studies.storage import object_store
from tenants.models import AuditAction, AuditEvent
from tenants.services import register_destination
from tests.conftest import free_port, storescu, wait_for

# A JPEG 2000 image from pydicom's test files: stored compressed, for the decompression cases.
J2K_FILE = Path(get_testdata_file("JPEG2000.dcm"))


@dataclass
class Stored:
    study_uid: str
    series_uid: str
    sop_uids: list[str]
    paths: list[Path]


def _uids(path: Path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _indexed(tenant, uids: list[str]) -> bool:  # noqa: ANN001
    pending = Receipt.objects.filter(tenant=tenant, status=ReceiptStatus.PENDING).exists()
    found = Instance.objects.filter(tenant=tenant, sop_instance_uid__in=uids).count()
    return not pending and found == len(uids)


def _send(port: int, called: str, paths: list[Path], tenant) -> None:  # noqa: ANN001
    storescu(port, called, paths)
    wait_for(lambda: _indexed(tenant, [_uids(p)[2] for p in paths]), what="indexing")


def _stored_data_set(tenant, sop_uid: str) -> bytes:  # noqa: ANN001
    instance = Instance.objects.get(tenant=tenant, sop_instance_uid=sop_uid)
    with object_store().open(instance.storage_key, "rb") as f:
        raw = f.read()
    return raw[data_set_offset(raw) :]


def _data_set(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[data_set_offset(raw) :]


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small CT slices (Explicit VR Little Endian)."""
    out = tmp_path_factory.mktemp("qr-ct")
    spec = synthetic.StudySpec(
        seed=77,
        patient=synthetic.PatientSpec("QR0001", "QUERY^RETRIEVE", "19700101", "F"),
        modality="CT",
        description="CT QR",
        accession_number="ACCQR1",
        study_date="20261102",
        study_time="090000",
        referring_physician="REFERRER^QR",
        body_part="CHEST",
        slices=3,
        rows=64,
        columns=64,
    )
    synthetic.write_study(spec, out)
    return sorted(out.rglob("*.dcm"))


@pytest.fixture
def demo_series(scp, people, series_files) -> Stored:  # noqa: ANN001
    _send(scp.port, "DEMOHOSP", series_files, people.demo)
    study, series, _ = _uids(series_files[0])
    return Stored(study, series, [_uids(p)[2] for p in series_files], series_files)


@pytest.fixture
def demo_j2k(scp, people) -> str:  # noqa: ANN001
    storescu(scp.port, "DEMOHOSP", [J2K_FILE], extra=["-R", "-xw"])
    uid = _uids(J2K_FILE)[2]
    wait_for(lambda: _indexed(people.demo, [uid]), what="indexing")
    return uid


class StoreScp:
    """dcmtk's storescp on a free port, writing what it receives, bit-preserving."""

    def __init__(self, directory: Path, ae_title: str, *, accept: list[str]):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ae_title = ae_title
        self.port = free_port()
        self.process = subprocess.Popen(
            ["storescp", "-od", str(directory), "+B", *accept, "-aet", ae_title, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._listening, timeout=20, what="storescp start")

    def _listening(self) -> bool:
        result = subprocess.run(
            ["echoscu", "-aec", self.ae_title, "127.0.0.1", str(self.port)],
            capture_output=True,
            timeout=20,
        )
        return result.returncode == 0

    def received(self) -> dict[str, Path]:
        return {_uids(p)[2]: p for p in self.directory.iterdir() if p.is_file()}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def _registered_storescp(people, tmp_path: Path, ae_title: str, accept: str) -> Iterator[StoreScp]:  # noqa: ANN001
    node = StoreScp(tmp_path / ae_title, ae_title, accept=[accept])
    register_destination(tenant=people.demo, ae_title=ae_title, host="127.0.0.1", port=node.port)
    yield node
    node.stop()


@pytest.fixture
def destination(people, tmp_path) -> Iterator[StoreScp]:  # noqa: ANN001
    """A storescp taking every transfer syntax dcmtk knows, registered for demo-hospital."""
    yield from _registered_storescp(people, tmp_path, "DESTALL", "+xa")


@pytest.fixture
def plain_destination(people, tmp_path) -> Iterator[StoreScp]:  # noqa: ANN001
    """A storescp taking only Explicit and Implicit VR Little Endian."""
    yield from _registered_storescp(people, tmp_path, "DESTPLAIN", "+xe")


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd)


def movescu(port: int, called: str, dest: str, keys: dict[str, str], *, root: str = "-S"):
    args = ["movescu", "-v", "-aet", "MOVER", "-aec", called, "-aem", dest, root]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}"]
    return _run([*args, "127.0.0.1", str(port)])


def getscu(port: int, called: str, keys: dict[str, str], out: Path, *extra: str):
    out.mkdir(parents=True, exist_ok=True)
    args = ["getscu", "-v", "-aet", "GETTER", "-aec", called, "-S", *extra, "-od", str(out)]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}"]
    return _run([*args, "127.0.0.1", str(port)])


def findscu(port: int, called: str, keys: dict[str, str], out: Path, *, root: str = "-S"):
    """C-FIND with findscu; the responses are read back from the files it extracts."""
    out.mkdir(parents=True, exist_ok=True)
    args = ["findscu", "-aet", "FINDER", "-aec", called, root, "-X", "-od", str(out)]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}" if value else key]
    result = _run([*args, "127.0.0.1", str(port)])
    assert result.returncode == 0, result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def _audits(action: str, tenant) -> list[AuditEvent]:  # noqa: ANN001
    return list(AuditEvent.objects.filter(action=action, tenant=tenant).order_by("id"))


# ---------------------------------------------------------------------------------------------
# C-MOVE
# ---------------------------------------------------------------------------------------------


def test_move_delivers_every_instance_of_a_series_byte_identical(
    scp, people, demo_series, demo_j2k, destination
):
    result = movescu(
        scp.port,
        "DEMOHOSP",
        "DESTALL",
        {
            "QueryRetrieveLevel": "SERIES",
            "StudyInstanceUID": demo_series.study_uid,
            "SeriesInstanceUID": demo_series.series_uid,
        },
    )
    assert result.returncode == 0, result.stderr
    assert "Received Final Move Response (Success)" in result.stderr
    received = destination.received()
    assert set(received) == set(demo_series.sop_uids)
    for path in demo_series.paths:
        uid = _uids(path)[2]
        # What arrives is the data set storescu sent, byte for byte.
        assert _data_set(received[uid]) == _data_set(path)

    # A compressed instance goes out in its stored syntax when the peer accepts it.
    movescu(
        scp.port,
        "DEMOHOSP",
        "DESTALL",
        {
            "QueryRetrieveLevel": "IMAGE",
            "StudyInstanceUID": _uids(J2K_FILE)[0],
            "SeriesInstanceUID": _uids(J2K_FILE)[1],
            "SOPInstanceUID": demo_j2k,
        },
    )
    j2k = destination.received()[demo_j2k]
    assert _data_set(j2k) == _stored_data_set(people.demo, demo_j2k)

    events = _audits(AuditAction.DIMSE_MOVE, people.demo)
    assert len(events) == 2
    first = events[0]
    assert first.outcome == "success"
    assert first.detail["destination"] == "DESTALL"
    assert sorted(first.detail["sop_instance_uids"]) == sorted(demo_series.sop_uids)
    assert first.detail["completed"] == 3 and first.detail["failed"] == 0
    assert first.study_instance_uid == demo_series.study_uid
    assert first.actor_ae_title == "MOVER"


def test_move_decompresses_for_a_peer_that_takes_only_uncompressed_syntaxes(
    scp, people, demo_j2k, plain_destination
):
    study, series, _ = _uids(J2K_FILE)
    result = movescu(
        scp.port,
        "DEMOHOSP",
        "DESTPLAIN",
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": study},
    )
    assert "Received Final Move Response (Success)" in result.stderr, result.stderr
    received = pydicom.dcmread(plain_destination.received()[demo_j2k])
    assert received.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    assert np.array_equal(received.pixel_array, pydicom.dcmread(J2K_FILE).pixel_array)
    event = _audits(AuditAction.DIMSE_MOVE, people.demo)[-1]
    assert event.detail["decompressed"] == 1


def test_move_to_an_unregistered_ae_title_fails_with_a801_and_sends_nothing(
    scp, people, demo_series, destination
):
    result = movescu(
        scp.port,
        "DEMOHOSP",
        "NOTREGISTERED",
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": demo_series.study_uid},
    )
    assert "MoveDestinationUnknown" in result.stderr, result.stderr
    assert destination.received() == {}
    event = _audits(AuditAction.DIMSE_MOVE, people.demo)[-1]
    assert event.outcome == "failure" and event.detail["destination"] == "NOTREGISTERED"


def test_an_instance_that_cannot_be_read_fails_alone_and_is_listed(
    scp, people, demo_series, destination
):
    lost = demo_series.sop_uids[1]
    object_store().delete(
        Instance.objects.get(tenant=people.demo, sop_instance_uid=lost).storage_key
    )
    result = movescu(
        scp.port,
        "DEMOHOSP",
        "DESTALL",
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": demo_series.study_uid},
    )
    # B000: sub-operations complete, one or more failed.
    assert "SubOperationsCompleteOneOrMoreFailures" in result.stderr, result.stderr
    assert set(destination.received()) == set(demo_series.sop_uids) - {lost}
    event = _audits(AuditAction.DIMSE_MOVE, people.demo)[-1]
    assert event.outcome == "warning"
    assert event.detail["failed_sop_instance_uids"] == [lost] and event.detail["completed"] == 2


def test_move_at_a_level_the_model_lacks_fails_with_a900_and_stores_nothing(
    scp, people, demo_series, destination
):
    # PATIENT is a level of Patient Root only.
    result = movescu(
        scp.port, "DEMOHOSP", "DESTALL", {"QueryRetrieveLevel": "PATIENT", "PatientID": "QR0001"}
    )
    assert "DataSetDoesNotMatchSOPClass" in result.stderr, result.stderr
    assert destination.received() == {}
    event = _audits(AuditAction.DIMSE_MOVE, people.demo)[-1]
    assert event.outcome == "failure" and "QueryRetrieveLevel" in event.detail["error"]


# ---------------------------------------------------------------------------------------------
# C-GET
# ---------------------------------------------------------------------------------------------


def test_get_retrieves_a_series_byte_identical_on_the_same_association(
    scp, people, demo_series, tmp_path
):
    result = getscu(
        scp.port,
        "DEMOHOSP",
        {
            "QueryRetrieveLevel": "SERIES",
            "StudyInstanceUID": demo_series.study_uid,
            "SeriesInstanceUID": demo_series.series_uid,
        },
        tmp_path / "get",
    )
    assert "Number of Completed Suboperations : 3" in result.stderr, result.stderr
    received = {_uids(p)[2]: p for p in (tmp_path / "get").iterdir()}
    assert set(received) == set(demo_series.sop_uids)
    for path in demo_series.paths:
        assert _data_set(received[_uids(path)[2]]) == _data_set(path)
    event = _audits(AuditAction.DIMSE_GET, people.demo)[-1]
    assert event.outcome == "success" and event.detail["completed"] == 3


def test_get_decompresses_when_the_requestor_accepts_only_uncompressed(
    scp, people, demo_j2k, tmp_path
):
    study, _, _ = _uids(J2K_FILE)
    # getscu proposes uncompressed storage syntaxes unless told otherwise.
    result = getscu(
        scp.port, "DEMOHOSP", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": study}, tmp_path
    )
    assert "Number of Completed Suboperations : 1" in result.stderr, result.stderr
    [path] = [p for p in tmp_path.iterdir() if p.is_file()]
    received = pydicom.dcmread(path)
    assert not received.file_meta.TransferSyntaxUID.is_compressed
    assert np.array_equal(received.pixel_array, pydicom.dcmread(J2K_FILE).pixel_array)


def test_get_without_the_unique_key_of_its_level_fails_with_a900(
    scp, people, demo_series, tmp_path
):
    result = getscu(
        scp.port,
        "DEMOHOSP",
        {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": demo_series.study_uid},
        tmp_path / "get",
    )
    assert "DataSetDoesNotMatchSOPClass" in result.stderr, result.stderr
    assert not any((tmp_path / "get").iterdir())
    event = _audits(AuditAction.DIMSE_GET, people.demo)[-1]
    assert event.outcome == "failure"
    assert event.detail["error"] == "SeriesInstanceUID is required at the SERIES level."


# ---------------------------------------------------------------------------------------------
# Two hospitals, the same UIDs
# ---------------------------------------------------------------------------------------------


def test_a_called_ae_of_one_hospital_never_reaches_the_other_hospitals_data(
    scp, people, demo_series, demo_j2k, destination, tmp_path
):
    # The series exists in both hospitals; the JPEG 2000 image only in demo-hospital.
    _send(scp.port, "SECONDHOSP", demo_series.paths, people.second)
    # second-hospital registers the same storescp under its own name.
    register_destination(
        tenant=people.second, ae_title="SECONDDEST", host="127.0.0.1", port=destination.port
    )
    study, series, _ = _uids(J2K_FILE)
    only_demo = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": study}

    moved = movescu(scp.port, "SECONDHOSP", "SECONDDEST", only_demo)
    assert "Received Final Move Response (Success)" in moved.stderr, moved.stderr
    assert destination.received() == {}
    # demo-hospital's destination does not exist for second-hospital.
    refused = movescu(scp.port, "SECONDHOSP", "DESTALL", only_demo)
    assert "MoveDestinationUnknown" in refused.stderr

    got = getscu(scp.port, "SECONDHOSP", only_demo, tmp_path / "get")
    assert "Number of Completed Suboperations : 0" in got.stderr or "Success" in got.stderr
    assert not any((tmp_path / "get").iterdir())

    # The shared UIDs retrieve second-hospital's own copy.
    movescu(
        scp.port,
        "SECONDHOSP",
        "SECONDDEST",
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": demo_series.study_uid},
    )
    assert set(destination.received()) == set(demo_series.sop_uids)
    events = _audits(AuditAction.DIMSE_MOVE, people.second)
    assert [e.detail.get("matches") for e in events] == [0, None, 3]
    assert not _audits(AuditAction.DIMSE_MOVE, people.demo)
    assert _audits(AuditAction.DIMSE_GET, people.second)[-1].detail["matches"] == 0
    found = findscu(
        scp.port,
        "SECONDHOSP",
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": study},
        tmp_path / "find",
    )
    assert found == []


# ---------------------------------------------------------------------------------------------
# C-FIND
# ---------------------------------------------------------------------------------------------


def test_find_answers_at_every_level_of_both_models(scp, people, demo_series, tmp_path):
    study_keys = {"QueryRetrieveLevel": "STUDY", "PatientID": "QR0001", "StudyInstanceUID": ""}
    [study] = findscu(scp.port, "DEMOHOSP", study_keys, tmp_path / "study")
    assert study.StudyInstanceUID == demo_series.study_uid
    assert study.QueryRetrieveLevel == "STUDY"

    series_keys = {
        "QueryRetrieveLevel": "SERIES",
        "StudyInstanceUID": demo_series.study_uid,
        "SeriesInstanceUID": "",
        "Modality": "",
    }
    [series] = findscu(scp.port, "DEMOHOSP", series_keys, tmp_path / "series")
    assert series.SeriesInstanceUID == demo_series.series_uid and series.Modality == "CT"

    image_keys = {
        "QueryRetrieveLevel": "IMAGE",
        "StudyInstanceUID": demo_series.study_uid,
        "SeriesInstanceUID": demo_series.series_uid,
        "SOPInstanceUID": "",
    }
    images = findscu(scp.port, "DEMOHOSP", image_keys, tmp_path / "image")
    assert sorted(str(i.SOPInstanceUID) for i in images) == sorted(demo_series.sop_uids)

    patient_keys = {"QueryRetrieveLevel": "PATIENT", "PatientID": "QR0001", "PatientName": ""}
    [patient] = findscu(scp.port, "DEMOHOSP", patient_keys, tmp_path / "patient", root="-P")
    assert patient.PatientName == "QUERY^RETRIEVE"

    # Nothing of it in the other hospital.
    assert findscu(scp.port, "SECONDHOSP", study_keys, tmp_path / "other") == []

    events = _audits(AuditAction.DIMSE_FIND, people.demo)
    assert [e.detail["level"] for e in events] == ["STUDY", "SERIES", "IMAGE", "PATIENT"]
    assert [e.detail["results"] for e in events] == [1, 1, 3, 1]
    assert events[0].detail["keys"]["StudyInstanceUID"] == ""
    assert _audits(AuditAction.DIMSE_FIND, people.second)[0].detail["results"] == 0


def test_find_with_a_level_the_model_lacks_fails_with_a900(scp, people, demo_series, tmp_path):
    result = _run(
        [
            "findscu",
            "-v",
            "-aet",
            "FINDER",
            "-aec",
            "DEMOHOSP",
            "-S",
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientID=QR0001",
            "127.0.0.1",
            str(scp.port),
        ]
    )
    assert "DataSetDoesNotMatchSOPClass" in result.stderr + result.stdout, result.stderr
    event = _audits(AuditAction.DIMSE_FIND, people.demo)[-1]
    assert event.outcome == "failure"


def test_nothing_is_logged_about_patients(scp, people, demo_series, destination, caplog):
    caplog.set_level("DEBUG", logger="studies")
    movescu(
        scp.port,
        "DEMOHOSP",
        "DESTALL",
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": demo_series.study_uid},
    )
    text = caplog.text
    assert "dimse.move at tenant" in text
    assert "QR0001" not in text and "QUERY" not in text


def test_find_audit_keys_keep_uids_and_codes_and_hide_patient_values():
    from studies.query import audit_keys as _query_keys

    identifier = pydicom.Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = "1.2.3"
    identifier.PatientName = "DOE^JANE"
    identifier.PatientID = "SECRET-ID"
    identifier.PatientBirthDate = "19700101"
    identifier.ModalitiesInStudy = "CT"
    identifier.StudyDescription = ""
    assert _query_keys(identifier) == {
        "QueryRetrieveLevel": "STUDY",
        "StudyInstanceUID": "1.2.3",
        "PatientName": "(value)",
        "PatientID": "(value)",
        "PatientBirthDate": "(value)",
        "ModalitiesInStudy": "CT",
        "StudyDescription": "",
    }
