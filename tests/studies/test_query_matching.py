"""The query engine on index rows made directly: PS3.4 matching rules, return keys, hierarchy,
paging, tenancy and a constant number of SQL queries. No stored object exists for these rows,
which also shows that a query never opens one."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from pydicom import Dataset, config
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement

from studies.dicom.attributes import search_form
from studies.models import Instance, Patient, Receipt, ReceiptSource, Series, Study
from studies.query import IMAGE, PATIENT, SERIES, STUDY, QueryError, find_matches
from tenants.services import create_tenant

_serial = itertools.count(1)


def _uid() -> str:
    return f"1.2.826.0.1.3680043.10.1.{next(_serial)}"


def _patient(tenant: Any, patient_id: str, name: str, birth: str = "19800101") -> Patient:
    return Patient.objects.create(
        tenant=tenant,
        patient_id=patient_id,
        patient_name=name,
        patient_name_search=search_form(name),
        patient_birth_date=dt.date.fromisoformat(birth),
        patient_sex="F",
    )


def _study(
    tenant: Any,
    patient: Patient,
    *,
    uid: str | None = None,
    date: str = "2020-01-15",
    time: dt.time = dt.time(8, 30),
    accession: str = "",
    description: str = "",
    referring: str = "",
    modalities: tuple[str, ...] = ("CT",),
    series: int = 1,
    instances: int = 1,
) -> Study:
    """A study with its series and instances, as the indexer would have written them."""
    study = Study.objects.create(
        tenant=tenant,
        patient=patient,
        study_instance_uid=uid or _uid(),
        study_date=dt.date.fromisoformat(date),
        study_time=time,
        accession_number=accession,
        study_description=description,
        referring_physician_name=referring,
        referring_physician_name_search=search_form(referring),
        modalities_in_study="\\" + "\\".join(modalities) + "\\",
        number_of_study_related_series=series,
        number_of_study_related_instances=series * instances,
    )
    for s in range(series):
        row = Series.objects.create(
            tenant=tenant,
            study=study,
            series_instance_uid=_uid(),
            modality=modalities[s % len(modalities)],
            series_number=s + 1,
            number_of_series_related_instances=instances,
        )
        receipts = Receipt.objects.bulk_create(
            Receipt(
                tenant=tenant, storage_key="none", size=1, sha256="0", source=ReceiptSource.INTERNAL
            )
            for _ in range(instances)
        )
        Instance.objects.bulk_create(
            Instance(
                tenant=tenant,
                study=study,
                series=row,
                receipt=receipt,
                sop_instance_uid=_uid(),
                sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                instance_number=i + 1,
                rows=32,
                columns=32,
                bits_allocated=16,
                storage_key="none",
                size=1,
                sha256="0",
            )
            for i, receipt in enumerate(receipts)
        )
    return study


@pytest.fixture
def hospitals(db: None) -> tuple[Any, Any]:
    return create_tenant(slug="hospital-a", name="A"), create_tenant(slug="hospital-b", name="B")


@pytest.fixture
def rows(hospitals: tuple[Any, Any]) -> dict[str, Study]:
    a, b = hospitals
    zoe = _patient(a, "P1", "Müller^Zoë")
    john = _patient(a, "P2", "Doe^John", "19700505")
    made = {
        "morning": _study(
            a, zoe, accession="ACC1", description="CT CHEST", referring="House^Gregory",
            time=dt.time(8, 30, 0, 700000),
        ),
        "night": _study(
            a, john, date="2021-06-20", time=dt.time(23, 30), accession="ACC2",
            description="MR BRAIN", referring="Wilson^James", modalities=("MR",),
        ),
        "early": _study(
            a, zoe, date="2022-12-31", time=dt.time(0, 30), accession="ACC3",
            description="CT ABDOMEN", modalities=("CT", "MR"), series=2, instances=2,
        ),
    }  # fmt: skip
    # Hospital B holds a study with the same UID as A's "morning", for a patient of its own.
    other = _patient(b, "P1", "Other^Person")
    _study(b, other, uid=made["morning"].study_instance_uid, accession="B-ACC")
    return made


def _find(tenant: Any, level: str = STUDY, fuzzy: bool = False, **keys: str) -> list[Dataset]:
    identifier = Dataset()
    identifier.AccessionNumber = ""
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return find_matches(tenant, level, identifier, fuzzy=fuzzy, include_required=True).datasets


def _accessions(tenant: Any, fuzzy: bool = False, **keys: str) -> set[str]:
    return {str(ds.AccessionNumber) for ds in _find(tenant, STUDY, fuzzy, **keys)}


MATCHES: list[tuple[dict[str, str], bool, set[str]]] = [
    # Single values: exact and case-sensitive, except person names.
    ({"PatientID": "P1"}, False, {"ACC1", "ACC3"}),
    ({"PatientID": "p1"}, False, set()),
    ({"StudyDescription": "CT CHEST"}, False, {"ACC1"}),
    ({"StudyDescription": "ct chest"}, False, set()),
    # Wildcards: * any run, ? one character, anywhere in the value.
    ({"StudyDescription": "CT*"}, False, {"ACC1", "ACC3"}),
    ({"StudyDescription": "*B*"}, False, {"ACC2", "ACC3"}),
    ({"AccessionNumber": "ACC?"}, False, {"ACC1", "ACC2", "ACC3"}),
    ({"AccessionNumber": "AC?"}, False, set()),
    # Person names: upper-case, accent-free form of the whole name; wildcards on that form.
    ({"PatientName": "müller^zoë"}, False, {"ACC1", "ACC3"}),
    ({"PatientName": "MULLER^ZOE"}, False, {"ACC1", "ACC3"}),
    ({"PatientName": "mul*"}, False, {"ACC1", "ACC3"}),
    ({"PatientName": "*^J?HN"}, False, {"ACC2"}),
    ({"PatientName": "zoe"}, False, set()),
    ({"ReferringPhysicianName": "wilson^james"}, False, {"ACC2"}),
    # Fuzzy: every word must begin a component of the name, in any order.
    ({"PatientName": "zoe"}, True, {"ACC1", "ACC3"}),
    ({"PatientName": "ZOË mül"}, True, {"ACC1", "ACC3"}),
    ({"PatientName": "ller"}, True, set()),
    ({"PatientName": "zoe^doe"}, True, set()),
    ({"ReferringPhysicianName": "greg"}, True, {"ACC1"}),
    # Dates: single, open and closed ranges.
    ({"StudyDate": "20200115"}, False, {"ACC1"}),
    ({"StudyDate": "20210101-"}, False, {"ACC2", "ACC3"}),
    ({"StudyDate": "-20211231"}, False, {"ACC1", "ACC2"}),
    ({"StudyDate": "20210620-20210620"}, False, {"ACC2"}),
    ({"PatientBirthDate": "19700505"}, False, {"ACC2"}),
    # Times cover their precision, as single values and as the end of a range.
    ({"StudyTime": "08"}, False, {"ACC1"}),
    ({"StudyTime": "0830"}, False, {"ACC1"}),
    ({"StudyTime": "083000"}, False, {"ACC1"}),
    ({"StudyTime": "083000.7"}, False, {"ACC1"}),
    ({"StudyTime": "083000.1"}, False, set()),
    ({"StudyTime": "-0830"}, False, {"ACC1", "ACC3"}),
    ({"StudyTime": "2300-"}, False, {"ACC2"}),
    # A time range that starts later than it ends spans midnight.
    ({"StudyTime": "2300-0100"}, False, {"ACC2", "ACC3"}),
    # StudyDate and StudyTime both ranges: one date-time range (C.2.2.2.5.2).
    ({"StudyDate": "20200115-20221231", "StudyTime": "0900-0030"}, False, {"ACC2", "ACC3"}),
    ({"StudyDate": "20200115-20221231", "StudyTime": "0800-0029"}, False, {"ACC1", "ACC2"}),
    # ModalitiesInStudy: any modality of the study, any value given.
    ({"ModalitiesInStudy": "MR"}, False, {"ACC2", "ACC3"}),
    ({"ModalitiesInStudy": "US\\CT"}, False, {"ACC1", "ACC3"}),
    ({"ModalitiesInStudy": "M?"}, False, {"ACC2", "ACC3"}),
    ({"ModalitiesInStudy": "C"}, False, set()),
    ({"ModalitiesInStudy": "C*R"}, False, set()),
    # Universal matching: an empty value matches everything.
    ({"PatientName": "", "StudyDate": ""}, False, {"ACC1", "ACC2", "ACC3"}),
    # Several keys: all of them.
    ({"PatientID": "P1", "ModalitiesInStudy": "MR"}, False, {"ACC3"}),
]


def test_every_matching_rule_finds_exactly_the_right_studies(rows, hospitals):
    a, _ = hospitals
    failures = []
    for keys, fuzzy, expected in MATCHES:
        found = _accessions(a, fuzzy, **keys)
        if found != expected:
            failures.append(f"{keys} fuzzy={fuzzy}: {sorted(found)} != {sorted(expected)}")
    assert not failures, failures


def test_uid_lists_and_the_hierarchy_of_unique_keys(rows, hospitals):
    a, _ = hospitals
    morning, early = rows["morning"], rows["early"]
    both = f"{morning.study_instance_uid}\\{early.study_instance_uid}"
    assert _accessions(a, StudyInstanceUID=both) == {"ACC1", "ACC3"}
    # SERIES and IMAGE levels are restricted by the upper levels' unique keys.
    series = _find(a, SERIES, StudyInstanceUID=early.study_instance_uid)
    assert len(series) == 2 and {str(ds.Modality) for ds in _find(a, SERIES)} == {"CT", "MR"}
    first = str(series[0].SeriesInstanceUID)
    images = _find(a, IMAGE, StudyInstanceUID=early.study_instance_uid, SeriesInstanceUID=first)
    assert [int(ds.InstanceNumber) for ds in images] == [1, 2]
    assert all(ds.SeriesInstanceUID == first for ds in images)
    assert len(_find(a, IMAGE, StudyInstanceUID=early.study_instance_uid)) == 4
    # An upper-level key that is not a unique key matches too (PatientID at IMAGE level).
    assert len(_find(a, IMAGE, PatientID="P2")) == 1
    # Patient root: PATIENT level, one answer per patient.
    identifier = Dataset()
    identifier.PatientName = ""
    patients = find_matches(a, PATIENT, identifier, root="patient").datasets
    assert [(str(ds.PatientID), str(ds.PatientName)) for ds in patients] == [
        ("P1", "Müller^Zoë"),
        ("P2", "Doe^John"),
    ]


def test_each_tenant_sees_only_its_own_rows_for_the_same_uids(rows, hospitals):
    a, b = hospitals
    uid = rows["morning"].study_instance_uid
    assert _accessions(a, StudyInstanceUID=uid) == {"ACC1"}
    assert _accessions(b, StudyInstanceUID=uid) == {"B-ACC"}
    assert _accessions(b, StudyInstanceUID=rows["night"].study_instance_uid) == set()
    assert _accessions(b, PatientName="müller*") == set()
    assert len(_find(b, IMAGE, StudyInstanceUID=uid)) == 1


def test_return_keys_requested_required_and_not_indexed(rows, hospitals):
    a, _ = hospitals
    identifier = Dataset()
    identifier.StudyInstanceUID = rows["early"].study_instance_uid
    identifier.PatientName = ""
    identifier.PatientAge = ""  # a DICOM attribute the index does not hold
    [bare] = find_matches(a, STUDY, identifier).datasets
    # C-FIND style: the keys asked for (PatientAge empty) and the unique key, nothing more.
    assert {e.keyword for e in bare} == {
        "SpecificCharacterSet",
        "StudyInstanceUID",
        "PatientName",
        "PatientAge",
    }
    assert bare["PatientAge"].is_empty and bare.PatientName == "Müller^Zoë"
    [full] = find_matches(a, STUDY, identifier, include_required=True).datasets
    assert full.ModalitiesInStudy == ["CT", "MR"]
    assert full.NumberOfStudyRelatedSeries == 2 and full.NumberOfStudyRelatedInstances == 4
    assert full.StudyDate == "20221231" and full.StudyTime == "003000"
    assert full.InstanceAvailability == "ONLINE"
    [image] = find_matches(
        a, IMAGE, _keys(StudyInstanceUID=identifier.StudyInstanceUID), include_required=True
    ).datasets[:1]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        assert image[keyword].value
    assert image.Rows == 32 and image.BitsAllocated == 16 and image.NumberOfFrames is None
    # A value for an attribute the index cannot match is not used, and the result says so.
    result = find_matches(a, STUDY, _keys(PatientAge="040Y"))
    assert len(result.datasets) == 3 and result.ignored == ["PatientAge"]


def _keys(**keys: str) -> Dataset:
    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def test_limit_offset_truncation_order_and_study_uids(rows, hospitals):
    a, _ = hospitals
    everything = find_matches(a, STUDY, _keys())
    # Newest study first.
    assert everything.study_uids == [
        rows[name].study_instance_uid for name in ("early", "night", "morning")
    ]
    first = find_matches(a, STUDY, _keys(), limit=2)
    rest = find_matches(a, STUDY, _keys(), limit=2, offset=2)
    assert first.truncated and not rest.truncated
    assert first.study_uids + rest.study_uids == everything.study_uids
    exact = find_matches(a, STUDY, _keys(), limit=3)
    assert not exact.truncated and len(exact.datasets) == 3
    images = find_matches(a, IMAGE, _keys(StudyInstanceUID=rows["early"].study_instance_uid))
    assert images.study_uids == [rows["early"].study_instance_uid]


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"StudyDate": "20201345"}, "StudyDate"),
        ({"StudyDate": "20211231-20200101"}, "StudyDate"),
        ({"PatientBirthDate": "1970-05-05x"}, "PatientBirthDate"),
        ({"StudyTime": "2561"}, "StudyTime"),
        ({"StudyInstanceUID": "1.2.abc"}, "StudyInstanceUID"),
        ({"SeriesNumber": "two"}, "SeriesNumber"),
    ],
)
def test_a_bad_value_is_a_query_error_naming_the_key_not_the_value(hospitals, keys, named):
    a, _ = hospitals
    identifier = Dataset()
    for keyword, value in keys.items():
        # As a C-FIND identifier may carry it: text, whatever the attribute's VR.
        tag = tag_for_keyword(keyword)
        identifier[tag] = DataElement(tag, "LO", value, validation_mode=config.IGNORE)
    level = SERIES if "SeriesNumber" in keys else STUDY
    with pytest.raises(QueryError) as raised:
        find_matches(a, level, identifier)
    message = str(raised.value)
    assert named in message
    assert not any(value in message for value in keys.values())


def test_patient_level_exists_only_in_the_patient_root(hospitals):
    a, _ = hospitals
    with pytest.raises(QueryError):
        find_matches(a, PATIENT, _keys(PatientID=""), root="study")
    with pytest.raises(QueryError):
        find_matches(a, "FRAME", _keys())


@pytest.mark.parametrize("level", [STUDY, SERIES, IMAGE])
def test_one_sql_query_for_two_or_twenty_studies(hospitals, django_assert_num_queries, level):
    a, _ = hospitals
    identifier = _keys(PatientName="", StudyDescription="", ModalitiesInStudy="CT")
    patient = _patient(a, "MANY", "Many^Rows")
    counts = []
    for total in (2, 20):
        while Study.objects.filter(tenant=a).count() < total:
            _study(a, patient, description="MANY", series=2, instances=2)
        with django_assert_num_queries(1):
            result = find_matches(a, level, identifier, include_required=True)
        assert all(ds.PatientName == "Many^Rows" for ds in result.datasets)
        counts.append(len(result.datasets))
    per_study = {STUDY: 1, SERIES: 2, IMAGE: 4}[level]
    assert counts == [2 * per_study, 20 * per_study]
