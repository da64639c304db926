"""Helpers of the usage tests: a real DICOM peer, and /metrics read with prometheus_client's own
text parser."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from tests.worklists.conftest import reading  # noqa: F401 - the fixture

CT = get_testdata_file("CT_small.dcm")


def c_store(port: int, called: str, calling: str = "MODALITY1", path: str = CT) -> int:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, "association refused"
    try:
        return int(assoc.send_c_store(dcmread(path)).Status)
    finally:
        assoc.release()


def c_find_studies(port: int, called: str, calling: str = "MODALITY1") -> int:
    """Matches of a study-level C-FIND for every study."""
    from pydicom.dataset import Dataset

    ae = AE(ae_title=calling)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, "association refused"
    matches = 0
    try:
        for status, found in assoc.send_c_find(
            identifier, StudyRootQueryRetrieveInformationModelFind
        ):
            if status and status.Status in (0xFF00, 0xFF01) and found is not None:
                matches += 1
    finally:
        assoc.release()
    return matches


def refused(port: int, called: str, calling: str) -> bool:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if assoc.is_established:
        assoc.release()
        return False
    return bool(assoc.is_rejected)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics body, by (name, labels)."""
    result = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            result[(s.name, frozenset(s.labels.items()))] = s.value
    return result


def value(parsed: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in parsed.items() if n == name and wanted <= ls)
