"""Who reaches a hospital's DICOMweb: every way a user can be linked to a tenant, over HTTP.

DICOMweb resolves the tenant with one hand-written SQL statement (tenants/queries.py), because
building the ORM query on every request cost more than running it. The ORM form,
``readable_tenants`` / ``storable_tenants``, is what pages and the API use. Each case here is
checked at the edge (a search answers 200, or 404 as if the hospital did not exist; a store is
refused with 404 or 403) and both forms must agree on it.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tenants import services
from tenants.models import Role, User
from tenants.queries import readable_tenants, storable_tenants

# name -> (how the user is linked to demo-hospital, may read, may store)
CASES: dict[str, tuple[str, bool, bool]] = {
    "tenant admin": ("tenant:tenant_admin", True, True),
    "hospital radiologist": ("tenant:radiologist", True, True),
    "technologist": ("tenant:technologist", True, True),
    "referring physician": ("tenant:referring_physician", False, False),
    "group radiologist": ("group:radiologist", True, True),
    "group admin": ("group:group_admin", True, False),
    "group radiologist, agreement ended": ("group:radiologist:agreement-off", False, False),
    "group radiologist, group closed": ("group:radiologist:group-off", False, False),
    "other hospital's admin": ("other:tenant_admin", False, False),
    "inactive user": ("tenant:tenant_admin:user-off", False, False),
    "tenant admin, hospital closed": ("tenant:tenant_admin:tenant-off", False, False),
}


def _link(people: Any, name: str, how: str) -> User:
    user = User.objects.create_user(name.replace(" ", "-").replace(",", "").replace("'", ""))
    kind, role, *flag = how.split(":")
    group = people.group
    if kind == "tenant":
        services.add_membership(user=user, tenant=people.demo, role=Role(role))
    elif kind == "other":
        services.add_membership(user=user, tenant=people.second, role=Role(role))
    else:
        # A group of its own, so switching it off touches no other case.
        group = services.create_group(slug=f"g-{user.pk}", name=f"Group {user.pk}")
        services.create_agreement(tenant=people.demo, group=group)
        services.add_membership(user=user, group=group, role=Role(role))
    if flag == ["agreement-off"]:
        group.agreements.filter(tenant=people.demo).update(is_active=False)
    elif flag == ["group-off"]:
        group.is_active = False
        group.save()
    elif flag == ["user-off"]:
        user.is_active = False
        user.save()
    return user


@pytest.mark.parametrize("name", list(CASES))
def test_each_link_to_a_hospital_reads_and_stores_as_its_role_allows(
    web: Any, people: Any, name: str
) -> None:
    how, may_read, may_store = CASES[name]
    user = _link(people, name, how)
    token = services.issue_token(user=user, name="t")[1]
    if how.endswith(":tenant-off"):
        people.demo.is_active = False
        people.demo.save()
    # A token of an inactive user is refused before any tenant is looked at.
    expect_read = 200 if may_read else (401 if how.endswith(":user-off") else 404)

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"}
    read = requests.get(f"{web.dicomweb('demo-hospital')}/studies", headers=headers, timeout=30)
    assert read.status_code == expect_read, read.text[:200]

    store = requests.post(
        f"{web.dicomweb('demo-hospital')}/studies",
        headers={**headers, "Content-Type": 'multipart/related; type="application/dicom"'},
        data=b"",
        timeout=30,
    )
    if may_store:
        # Allowed in: the empty body is what is refused, not the caller.
        assert store.status_code == 400, store.text[:200]
    elif may_read:
        assert store.status_code == 403, store.text[:200]
    else:
        assert store.status_code == expect_read, store.text[:200]

    # The ORM form, used by pages and the API, agrees with the statement DICOMweb runs.
    user.refresh_from_db()
    assert readable_tenants(user).filter(slug="demo-hospital").exists() is may_read
    assert storable_tenants(user).filter(slug="demo-hospital").exists() is may_store
