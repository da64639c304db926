"""The acceptance path: an admin adds a called AE title and a caller; dcmtk sends to it."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

from studies.models import Instance
from tests.conftest import storescu, wait_for
from tests.tenants.dicomconfig.conftest import echoscu


def test_echoscu_and_storescu_to_a_title_added_in_the_page_succeed(alice, people, scp):
    page = "/t/demo-hospital/setup/dicom/"
    assert alice.post(page, {"op": "add-title", "ae_title": "DEMONEW"}).status_code == 302
    assert (
        alice.post(
            page,
            {
                "op": "add-caller",
                "new-ae_title": "CTNEW",
                "new-network": "127.0.0.1",
                "new-description": "",
            },
        ).status_code
        == 302
    )
    assert echoscu(scp.port, "DEMONEW", "CTNEW").returncode == 0
    storescu(scp.port, "DEMONEW", Path(get_testdata_file("CT_small.dcm")), calling="CTNEW")
    wait_for(
        lambda: Instance.objects.filter(tenant=people.demo).exists(), what="the instance indexed"
    )
    status = alice.get(page + "status/").content.decode()
    assert "CTNEW" in status and "DEMONEW" in status and ">accepted<" in status
