"""Every DICOMweb route, called with one hospital's credentials and another hospital's UIDs.

The cases are keyed by route name and method, and the first test compares them with the URL
configuration: a route added to ``studies/dicomweb/urls.py`` without a case here fails the suite.
Tenant isolation means "not found": 404 on a retrieve, an empty result on a search, and never a
byte of the other hospital's data in the body.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pydicom import dcmread
from pydicom.data import get_testdata_file

from studies.dicomweb import urls as dicomweb_urls
from studies.models import Instance
from tests.conftest import ingest_now

SEARCH = "search"  # 200 with [] (or 404 for a search under a study the hospital does not have)
RETRIEVE = "retrieve"  # 404
STORE = "store"  # POST: the other hospital's slug is 404

# route name -> method -> (kind, URL path template below the DICOMweb base)
CASES: dict[str, dict[str, tuple[str, str]]] = {
    "dicomweb-studies": {
        "GET": (SEARCH, "studies?StudyInstanceUID={study}"),
        "POST": (STORE, "studies"),
    },
    "dicomweb-series-search": {"GET": (SEARCH, "series?SeriesInstanceUID={series}")},
    "dicomweb-instances-search": {"GET": (SEARCH, "instances?SOPInstanceUID={instance}")},
    "dicomweb-study-series": {"GET": (SEARCH, "studies/{study}/series")},
    "dicomweb-study-instances": {"GET": (SEARCH, "studies/{study}/instances")},
    "dicomweb-series-instances": {"GET": (SEARCH, "studies/{study}/series/{series}/instances")},
    "dicomweb-study": {
        "GET": (RETRIEVE, "studies/{study}"),
        "POST": (STORE, "studies/{study}"),
    },
    "dicomweb-study-metadata": {"GET": (RETRIEVE, "studies/{study}/metadata")},
    "dicomweb-study-rendered": {"GET": (RETRIEVE, "studies/{study}/rendered")},
    "dicomweb-study-thumbnail": {"GET": (RETRIEVE, "studies/{study}/thumbnail")},
    "dicomweb-series": {"GET": (RETRIEVE, "studies/{study}/series/{series}")},
    "dicomweb-series-metadata": {"GET": (RETRIEVE, "studies/{study}/series/{series}/metadata")},
    "dicomweb-series-rendered": {"GET": (RETRIEVE, "studies/{study}/series/{series}/rendered")},
    "dicomweb-series-thumbnail": {"GET": (RETRIEVE, "studies/{study}/series/{series}/thumbnail")},
    "dicomweb-instance": {"GET": (RETRIEVE, "{i}")},
    "dicomweb-instance-metadata": {"GET": (RETRIEVE, "{i}/metadata")},
    "dicomweb-instance-rendered": {"GET": (RETRIEVE, "{i}/rendered")},
    "dicomweb-instance-thumbnail": {"GET": (RETRIEVE, "{i}/thumbnail")},
    "dicomweb-instance-bulkdata": {"GET": (RETRIEVE, "{i}/bulkdata/7FE00010")},
    "dicomweb-frames": {"GET": (RETRIEVE, "{i}/frames/1")},
    "dicomweb-frames-rendered": {"GET": (RETRIEVE, "{i}/frames/1/rendered")},
    "dicomweb-frames-thumbnail": {"GET": (RETRIEVE, "{i}/frames/1/thumbnail")},
}
INSTANCE = "studies/{study}/series/{series}/instances/{instance}"


def _routes() -> dict[str, frozenset[str]]:
    routes = {}
    for pattern in dicomweb_urls.urlpatterns:
        methods = getattr(pattern.callback, "methods", None)
        if methods is not None:
            routes[pattern.name] = frozenset(methods) - {"HEAD"}
    return routes


def test_every_dicomweb_route_has_a_cross_tenant_case():
    routes = _routes()
    assert routes, "no routes found: has by_method stopped recording methods?"
    missing = {f"{name} {m}" for name, methods in routes.items() for m in methods} - {
        f"{name} {m}" for name, methods in CASES.items() for m in methods
    }
    stale = set(CASES) - set(routes)
    assert not missing, f"routes without a cross-tenant case in this file: {sorted(missing)}"
    assert not stale, f"cases for routes that no longer exist: {sorted(stale)}"


def _ingest(tenant: Any, path: str) -> None:
    ingest_now(tenant, [open(path, "rb").read()])


@pytest.fixture
def second_only(people: Any) -> dict[str, str]:
    """An instance only second-hospital holds; demo-hospital holds something else."""
    ct = get_testdata_file("CT_small.dcm")
    _ingest(people.second, ct)
    _ingest(people.demo, get_testdata_file("MR_small.dcm"))
    ds = dcmread(ct, stop_before_pixels=True)
    assert Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).count() == 1
    return {
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "instance": ds.SOPInstanceUID,
    }


def _path(template: str, uids: dict[str, str]) -> str:
    return template.replace("{i}", INSTANCE).format(**uids)


def _cases() -> list[tuple[str, str, str, str]]:
    return [
        (name, method, kind, template)
        for name, methods in CASES.items()
        for method, (kind, template) in methods.items()
    ]


def test_alice_asking_demo_hospital_for_second_hospitals_uids_finds_nothing(
    web, people, token_for, second_only
):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(people.alice)}"
    base = web.dicomweb("demo-hospital")
    failures = []
    for name, method, kind, template in _cases():
        if kind == STORE:
            continue  # storing under her own hospital is allowed; see the slug test below
        response = session.request(method, f"{base}/{_path(template, second_only)}", timeout=30)
        leaked = any(uid in response.text for uid in second_only.values())
        if kind == SEARCH:
            ok = (response.status_code == 200 and response.json() == []) or (
                response.status_code == 404 and "/studies/" in template
            )
        else:
            ok = response.status_code == 404
        if leaked or not ok:
            failures.append(f"{method} {name}: {response.status_code} leaked={leaked}")
    assert not failures, failures


def test_every_route_under_a_hospital_the_caller_does_not_read_is_not_found(
    web, people, token_for, second_only
):
    """Alice holds no role at second-hospital: every route there is 404, even with real UIDs."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(people.alice)}"
    base = web.dicomweb("second-hospital")
    failures = []
    for name, method, _kind, template in _cases():
        kwargs: dict[str, Any] = {}
        if method == "POST":
            kwargs["headers"] = {
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=x'
            }
            kwargs["data"] = b"--x--\r\n"
        response = session.request(
            method, f"{base}/{_path(template, second_only)}", timeout=30, **kwargs
        )
        if response.status_code != 404 or any(u in response.text for u in second_only.values()):
            failures.append(f"{method} {name}: {response.status_code}")
    assert not failures, failures
