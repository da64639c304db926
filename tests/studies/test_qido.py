"""QIDO-RS against the live server with dicomweb-client: matching, fields, paging, tenancy, audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.test import override_settings
from pydicom import Dataset

from studies.dicom import synthetic
from studies.query import find_matches
from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now, wait_for


@dataclass
class Made:
    study_uid: str
    series_uids: list[str]
    instance_uids: list[str]


def _spec(seed: int, **kw: Any) -> synthetic.StudySpec:
    patient = synthetic.PatientSpec(
        patient_id=kw.pop("patient_id"),
        patient_name=kw.pop("name"),
        birth_date=kw.pop("birth", "19800101"),
        sex=kw.pop("sex", "F"),
    )
    defaults = dict(body_part="CHEST", slices=2, rows=32, columns=32, series_count=1)
    return synthetic.StudySpec(seed=seed, patient=patient, **{**defaults, **kw})


def _ingest(tenant: Any, datasets: list[Dataset]) -> None:
    ingest_now(tenant, [synthetic.encode_part10(ds) for ds in datasets])


def _make(tenant: Any, spec: synthetic.StudySpec, extra: list[Dataset] | None = None) -> Made:
    datasets = list(synthetic.iter_study(spec)) + (extra or [])
    _ingest(tenant, datasets)
    return Made(
        study_uid=synthetic.study_uid(spec),
        series_uids=sorted({str(ds.SeriesInstanceUID) for ds in datasets}),
        instance_uids=[str(ds.SOPInstanceUID) for ds in datasets],
    )


@pytest.fixture
def studies(people) -> dict[str, Made]:
    """Three studies at demo-hospital; the first is also at second-hospital, with the same UIDs."""
    a = _spec(
        101, patient_id="P1", name="Müller^Zoë", modality="CT", description="CT CHEST",
        accession_number="ACC1", study_date="20200115", study_time="083000",
        referring_physician="House^Gregory",
    )  # fmt: skip
    b = _spec(
        102, patient_id="P2", name="Doe^John", birth="19700505", sex="M", modality="MR",
        description="MR BRAIN", accession_number="ACC2", study_date="20210620",
        study_time="143000", referring_physician="Wilson^James", body_part="HEAD",
    )  # fmt: skip
    c = _spec(
        103, patient_id="P1", name="Müller^Zoë", modality="CT", description="CT ABDOMEN",
        accession_number="ACC3", study_date="20221231", study_time="235959",
        referring_physician="House^Gregory",
    )  # fmt: skip
    # Study C also holds an MR series: its ModalitiesInStudy is CT and MR.
    mr = list(synthetic.iter_study(_spec(104, patient_id="P1", name="Müller^Zoë", modality="MR",
        description="x", accession_number="ACC3", study_date="20221231", study_time="235959",
        referring_physician="House^Gregory")))  # fmt: skip
    for ds in mr:
        ds.StudyInstanceUID = synthetic.study_uid(c)
        ds.SeriesNumber = 2
    made = {"A": _make(people.demo, a), "B": _make(people.demo, b), "C": _make(people.demo, c, mr)}
    _make(people.second, a)
    return made


def _client(web: Any, token: str, slug: str = "demo-hospital") -> DICOMwebClient:
    return DICOMwebClient(url=web.dicomweb(slug), headers={"Authorization": f"Bearer {token}"})


def _accessions(results: list[dict[str, Any]]) -> set[str]:
    return {r["00080050"]["Value"][0] for r in results}


CASES: list[tuple[dict[str, Any], bool, set[str]]] = [
    ({}, False, {"ACC1", "ACC2", "ACC3"}),
    ({"PatientID": "P1"}, False, {"ACC1", "ACC3"}),
    ({"00100020": "P2"}, False, {"ACC2"}),
    ({"PatientID": "NOBODY"}, False, set()),
    ({"PatientName": "Müller^Zoë"}, False, {"ACC1", "ACC3"}),
    ({"PatientName": "muller^zoe"}, False, {"ACC1", "ACC3"}),
    ({"PatientName": "Mül*"}, False, {"ACC1", "ACC3"}),
    ({"PatientName": "D?e^John"}, False, {"ACC2"}),
    ({"PatientName": "zoe"}, False, set()),
    ({"PatientName": "zoe"}, True, {"ACC1", "ACC3"}),
    ({"PatientName": "JOHN d"}, True, {"ACC2"}),
    ({"StudyDate": "20200115"}, False, {"ACC1"}),
    ({"StudyDate": "20210101-"}, False, {"ACC2", "ACC3"}),
    ({"StudyDate": "-20201231"}, False, {"ACC1"}),
    ({"StudyDate": "20200101-20211231"}, False, {"ACC1", "ACC2"}),
    ({"StudyTime": "1400-1500"}, False, {"ACC2"}),
    ({"StudyTime": "08"}, False, {"ACC1"}),
    # One date-time range: from 2020-01-15 09:00 (after A's 08:30) to 2022-12-31 23:00.
    ({"StudyDate": "20200115-20221231", "StudyTime": "0900-2300"}, False, {"ACC2"}),
    ({"ModalitiesInStudy": "MR"}, False, {"ACC2", "ACC3"}),
    ({"ModalitiesInStudy": "CT"}, False, {"ACC1", "ACC3"}),
    ({"ModalitiesInStudy": "US"}, False, set()),
    ({"AccessionNumber": "ACC2"}, False, {"ACC2"}),
    ({"AccessionNumber": "ACC*"}, False, {"ACC1", "ACC2", "ACC3"}),
    ({"StudyDescription": "CT*"}, False, {"ACC1", "ACC3"}),
    ({"StudyDescription": "*BRAIN"}, False, {"ACC2"}),
    ({"ReferringPhysicianName": "House^Gregory"}, False, {"ACC1", "ACC3"}),
    ({"ReferringPhysicianName": "greg"}, True, {"ACC1", "ACC3"}),
    ({"PatientID": "P1", "ModalitiesInStudy": "MR"}, False, {"ACC3"}),
]


def test_every_matching_type_finds_exactly_the_right_studies(web, people, token_for, studies):
    client = _client(web, token_for(people.alice))
    failures = []
    for filters, fuzzy, expected in CASES:
        found = _accessions(
            client.search_for_studies(search_filters=filters, fuzzymatching=fuzzy or None)
        )
        if found != expected:
            failures.append(f"{filters} fuzzy={fuzzy}: {sorted(found)} != {sorted(expected)}")
    assert not failures, failures
    # UID list matching, comma-separated as PS3.18 allows.
    uids = f"{studies['A'].study_uid},{studies['B'].study_uid}"
    found = client.search_for_studies(search_filters={"StudyInstanceUID": uids})
    assert _accessions(found) == {"ACC1", "ACC2"}


REQUIRED_STUDY_TAGS = {
    "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00100010",
    "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206", "00201208",
    "00081190",
}  # fmt: skip


def test_answers_carry_the_required_attributes_includefields_and_an_absolute_retrieve_url(
    web, people, token_for, studies
):
    client = _client(web, token_for(people.alice))
    [c] = client.search_for_studies(search_filters={"AccessionNumber": "ACC3"})
    assert REQUIRED_STUDY_TAGS <= set(c)
    assert c["00080061"]["Value"] == ["CT", "MR"]
    assert c["00201206"]["Value"] == [2] and c["00201208"]["Value"] == [4]
    assert c["00100010"]["Value"][0]["Alphabetic"] == "Müller^Zoë"
    assert c["00080056"]["Value"] == ["ONLINE"]
    # dicomweb-client sends "Host: 127.0.0.1" without the port; the URL follows the Host header.
    assert c["00081190"]["Value"][0] == (
        f"http://127.0.0.1/t/demo-hospital/dicomweb/studies/{studies['C'].study_uid}"
    )
    assert "00081030" in c and "00100021" not in c  # StudyDescription required; issuer not asked
    [by_keyword] = client.search_for_studies(
        search_filters={"AccessionNumber": "ACC3"}, fields=["IssuerOfPatientID"]
    )
    [by_tag] = client.search_for_studies(
        search_filters={"AccessionNumber": "ACC3"}, fields=["00100021"]
    )
    assert by_keyword["00100021"] == by_tag["00100021"]
    assert by_keyword["00100021"]["Value"] == [synthetic.ISSUER]
    [everything] = client.search_for_studies(
        search_filters={"AccessionNumber": "ACC3"}, fields=["all"]
    )
    assert "00100021" in everything and REQUIRED_STUDY_TAGS <= set(everything)


def test_series_and_instances_at_every_path(web, people, token_for, studies):
    client = _client(web, token_for(people.alice))
    c = studies["C"]
    series = client.search_for_series(study_instance_uid=c.study_uid)
    assert sorted(s["0020000E"]["Value"][0] for s in series) == c.series_uids
    assert {s["00080060"]["Value"][0] for s in series} == {"CT", "MR"}
    for s in series:
        assert s["00201209"]["Value"] == [2]
        assert s["00081190"]["Value"][0].startswith(
            f"http://127.0.0.1/t/demo-hospital/dicomweb/studies/{c.study_uid}/series/"
        )
    mr_anywhere = client.search_for_series(search_filters={"Modality": "MR"})
    assert {s["0020000D"]["Value"][0] for s in mr_anywhere} == {
        studies["B"].study_uid,
        c.study_uid,
    }
    one_series = c.series_uids[0]
    instances = client.search_for_instances(
        study_instance_uid=c.study_uid, series_instance_uid=one_series
    )
    assert len(instances) == 2
    for i in instances:
        assert {"00080016", "00080018", "00200013", "00280010", "00280011", "00280100"} <= set(i)
        assert i["00280010"]["Value"] == [32]
        assert i["0020000E"]["Value"] == [one_series]
    in_study = client.search_for_instances(study_instance_uid=c.study_uid)
    assert sorted(i["00080018"]["Value"][0] for i in in_study) == sorted(c.instance_uids)
    uid = c.instance_uids[0]
    [found] = client.search_for_instances(search_filters={"SOPInstanceUID": uid})
    assert found["00081190"]["Value"][0].endswith(f"/instances/{uid}")
    assert client.search_for_instances(search_filters={"InstanceNumber": "2"}) and all(
        i["00200013"]["Value"] == [2]
        for i in client.search_for_instances(search_filters={"InstanceNumber": "2"})
    )


def test_limit_offset_and_the_warning_when_more_results_exist(web, people, token_for, studies):
    headers = {"Authorization": f"Bearer {token_for(people.alice)}"}
    url = f"{web.dicomweb('demo-hospital')}/studies"
    first = requests.get(url, params={"limit": 2}, headers=headers, timeout=30)
    rest = requests.get(url, params={"limit": 2, "offset": 2}, headers=headers, timeout=30)
    assert first.status_code == rest.status_code == 200
    assert len(first.json()) == 2 and len(rest.json()) == 1
    assert "additional results" in first.headers["Warning"]
    assert "Warning" not in rest.headers
    assert _accessions(first.json() + rest.json()) == {"ACC1", "ACC2", "ACC3"}
    # With the client's own Host header the RetrieveURL is absolute, port included.
    for study in first.json() + rest.json():
        assert study["00081190"]["Value"][0].startswith(f"{url}/2.25.")
    # A DICOM keyword the index does not hold is not used to filter, and the answer says so.
    unindexed = requests.get(url, params={"PatientAge": "040Y"}, headers=headers, timeout=30)
    assert len(unindexed.json()) == 3 and "PatientAge" in unindexed.headers["Warning"]
    none = requests.get(url, params={"PatientID": "NOBODY"}, headers=headers, timeout=30)
    assert none.status_code == 200 and none.text == "[]"
    assert none.headers["Content-Type"] == "application/dicom+json"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"StudyDate": "20201345"}, "StudyDate"),
        ({"StudyDate": "20201231-20200101"}, "StudyDate"),
        ({"NotAKeyword": "1"}, "NotAKeyword"),
        ({"limit": "-1"}, "limit"),
        ({"fuzzymatching": "maybe"}, "fuzzymatching"),
        ({"StudyInstanceUID": "1.2.abc"}, "StudyInstanceUID"),
        ({"includefield": "Nonsense"}, "Nonsense"),
        ({"SeriesNumber": "two"}, "SeriesNumber"),
        ({"PatientBirthDate": "19801345"}, "PatientBirthDate"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(web, people, token_for, params, named):
    response = requests.get(
        f"{web.dicomweb('demo-hospital')}/studies",
        params=params,
        headers={"Authorization": f"Bearer {token_for(people.alice)}"},
        timeout=30,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert named in error
    # Values may be patient data: the message names the parameter, never echoes its value.
    assert not any(v in error for v in params.values() if v != named)


def test_each_hospital_sees_only_its_own_copy_and_the_query_is_audited(
    web, people, token_for, studies
):
    uid = studies["A"].study_uid
    alice = _client(web, token_for(people.alice))
    charlie = _client(web, token_for(people.charlie), "second-hospital")
    bob_token = token_for(people.bob)
    assert _accessions(alice.search_for_studies()) == {"ACC1", "ACC2", "ACC3"}
    assert _accessions(charlie.search_for_studies()) == {"ACC1"}
    # Bob reads for both hospitals, each under its own URL.
    for slug, expected in (("demo-hospital", 3), ("second-hospital", 1)):
        assert len(_client(web, bob_token, slug).search_for_studies()) == expected
    # Charlie cannot query demo-hospital at all; B's UID is simply not at second-hospital.
    response = requests.get(
        f"{web.dicomweb('demo-hospital')}/studies",
        headers={"Authorization": f"Bearer {token_for(people.charlie)}"},
        timeout=30,
    )
    assert response.status_code == 404
    assert (
        charlie.search_for_studies(search_filters={"StudyInstanceUID": studies["B"].study_uid})
        == []
    )
    assert len(charlie.search_for_series(study_instance_uid=uid)) == 1

    alice.search_for_studies(search_filters={"PatientID": "P1", "ModalitiesInStudy": "CT"})
    event = AuditEvent.objects.filter(
        action=AuditAction.QIDO_QUERY, actor_user=people.alice
    ).latest("id")
    assert event.tenant == people.demo and event.detail["level"] == "STUDY"
    assert event.detail["results"] == 2
    # Study facts are kept; patient values are not written to the audit detail.
    assert event.detail["keys"]["ModalitiesInStudy"] == "CT"
    assert event.detail["keys"]["PatientID"] == "(value)"


@pytest.mark.parametrize("level", ["STUDY", "SERIES", "IMAGE"])
def test_one_sql_query_whatever_the_number_of_results(
    people, studies, django_assert_num_queries, level
):
    identifier = Dataset()
    identifier.PatientName = ""
    identifier.StudyDescription = ""
    with django_assert_num_queries(1):
        few = find_matches(people.demo, level, identifier, limit=1, include_required=True)
    more_spec = _spec(
        200, patient_id="P9", name="Many^Rows", modality="CT", description="MANY",
        accession_number="ACC9", study_date="20230101", study_time="120000",
        referring_physician="X^Y", slices=6, series_count=2,
    )  # fmt: skip
    _make(people.demo, more_spec)
    with django_assert_num_queries(1):
        many = find_matches(people.demo, level, identifier, include_required=True)
    assert len(few.datasets) == 1 and len(many.datasets) > 3
    assert all(ds.PatientName for ds in many.datasets)


def test_a_study_stored_by_stow_rs_is_found_once_indexed(web, people, token_for):
    spec = _spec(
        301, patient_id="STOW1", name="Çelik^Aïda", modality="MR", description="STOW",
        accession_number="ACCSTOW", study_date="20240229", study_time="101500",
        referring_physician="Ünal^Ömer",
    )  # fmt: skip
    datasets = list(synthetic.iter_study(spec))
    for ds in datasets:
        ds.preamble = b"\0" * 128  # dicomweb-client writes Part 10 files only with a preamble
    client = _client(web, token_for(people.alice))
    client.store_instances(datasets=datasets)

    def indexed() -> list[dict[str, Any]]:
        found = client.search_for_studies(
            search_filters={"PatientName": "aida CELIK", "StudyDate": "20240229"},
            fuzzymatching=True,
        )
        return found if found and found[0]["00201208"]["Value"] == [len(datasets)] else []

    [study] = wait_for(indexed, timeout=120, what="the stored study in QIDO-RS")
    assert study["0020000D"]["Value"] == [synthetic.study_uid(spec)]
    assert study["00080090"]["Value"][0]["Alphabetic"] == "Ünal^Ömer"
    assert _client(web, token_for(people.charlie), "second-hospital").search_for_studies() == []


def test_accept_negotiation(web, people, token_for, studies):
    url = f"{web.dicomweb('demo-hospital')}/studies"
    token = token_for(people.alice)
    for accept, expected in (
        (None, "application/dicom+json"),
        ("*/*", "application/dicom+json"),
        ("application/json", "application/json"),
        ("application/dicom+xml, application/dicom+json;q=0.5", "application/dicom+json"),
    ):
        headers = {"Authorization": f"Bearer {token}"} | ({"Accept": accept} if accept else {})
        response = requests.get(url, headers=headers, timeout=30)
        assert response.status_code == 200, accept
        assert response.headers["Content-Type"] == expected
        assert len(response.json()) == 3
    refused = requests.get(
        url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom+xml"},
        timeout=30,
    )
    assert refused.status_code == 406 and "application/dicom+json" in refused.json()["error"]


def test_the_server_maximum_cuts_the_answer_with_a_warning_and_one_audit_row(
    people, token_for, studies, client
):
    # In this process (Django's test client), so the maximum can be lowered for this test only.
    token = token_for(people.alice)
    audited = AuditEvent.objects.filter(action=AuditAction.QIDO_QUERY)
    before = audited.count()
    with override_settings(SKYLIGHT={**settings.SKYLIGHT, "QIDO_MAX_RESULTS": 2}):
        response = client.get(
            "/t/demo-hospital/dicomweb/studies",
            {"limit": "10"},
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        last = client.get(
            "/t/demo-hospital/dicomweb/studies",
            {"offset": "2"},
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 200 and len(response.json()) == 2
    assert response["Warning"] == (
        '299 testserver "There are additional results that can be requested"'
    )
    assert len(last.json()) == 1 and "Warning" not in last
    assert audited.count() == before + 2
    assert audited.latest("id").detail["results"] == 1
