"""The set-up overview and the hospital details step, for the hospital's own admins only."""

from __future__ import annotations

import io
import re

from django.core.files.uploadedfile import SimpleUploadedFile

from tenants.models import AuditAction, AuditEvent
from tenants.onboarding.models import HospitalProfile
from tests.tenants.onboarding.conftest import login
from tests.tenants.onboarding.helpers import png

DETAILS = {
    "name": "Demo Hospital",
    "address": "1 Harbour Road\nSpringfield",
    "phone": "+1 555 0100",
    "email": "radiology@demo.example",
    "report_footer": "Demo radiology",
}


def step_state(overview: str, step: str) -> str:
    """The state class of the overview's step that links to /t/demo-hospital/setup/<step>/."""
    match = re.search(rf'<li class="(\w+)">\s*<a href="/t/demo-hospital/setup/{step}/"', overview)
    assert match, f"no {step} step on the overview"
    return match[1]


def test_the_overview_lists_the_built_sections_with_their_state(people):
    page = login(people.alice).get("/t/demo-hospital/setup/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Hospital details and branding" in body and "Users and roles" in body
    assert 'href="/t/demo-hospital/setup/details/"' in body
    assert 'href="/t/demo-hospital/setup/users/"' in body
    assert step_state(body, "details") == "todo" and step_state(body, "users") == "todo"


def test_another_hospitals_admin_and_non_admins_get_not_found(people):
    for path in ("/t/demo-hospital/setup/", "/t/demo-hospital/setup/details/",
                 "/t/demo-hospital/setup/users/"):  # fmt: skip
        assert login(people.charlie).get(path).status_code == 404
        assert login(people.bob).get(path).status_code == 404
    response = login(people.charlie).post("/t/demo-hospital/setup/details/", DETAILS)
    assert response.status_code == 404
    assert not HospitalProfile.objects.filter(tenant=people.demo).exists()


def test_details_are_saved_and_audited_with_the_changed_fields(people):
    client = login(people.alice)
    response = client.post("/t/demo-hospital/setup/details/", DETAILS)
    assert response.status_code == 302
    profile = HospitalProfile.objects.get(tenant=people.demo)
    assert profile.phone == "+1 555 0100" and profile.report_footer == "Demo radiology"
    event = AuditEvent.objects.get(tenant=people.demo, action=AuditAction.SETTINGS_CHANGE)
    assert event.detail == {
        "settings": "details",
        "fields": ["address", "phone", "email", "report_footer"],
    }
    # The same again changes nothing and writes no audit row.
    client.post("/t/demo-hospital/setup/details/", DETAILS)
    assert AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).count() == 1
    overview = client.get("/t/demo-hospital/setup/").content.decode()
    assert step_state(overview, "details") == "done"


def test_a_bad_email_and_phone_are_named_and_change_nothing(people):
    response = login(people.alice).post(
        "/t/demo-hospital/setup/details/", {**DETAILS, "email": "x@", "phone": "call me"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid email address." in body and "Enter a phone number" in body
    profile = HospitalProfile.objects.filter(tenant=people.demo).first()
    assert profile is None or profile.phone == ""
    assert not AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).exists()


def upload(name: str, data: bytes, kind: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=kind)


def test_a_logo_is_stored_under_the_tenant_and_shown_to_its_staff_only(people):
    client = login(people.alice)
    response = client.post(
        "/t/demo-hospital/setup/details/", {**DETAILS, "logo": upload("logo.png", png())}
    )
    assert response.status_code == 302
    profile = HospitalProfile.objects.get(tenant=people.demo)
    assert profile.logo_key.startswith(f"tenants/{people.demo.pk}/derived/branding/logo-")
    served = client.get("/t/demo-hospital/logo/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served.content == png()
    assert login(people.charlie).get("/t/demo-hospital/logo/").status_code == 404
    # bob reads for the hospital through his group but is not its staff.
    assert login(people.bob).get("/t/demo-hospital/logo/").status_code == 404


def test_a_logo_that_is_not_png_or_jpeg_or_too_big_is_refused(people):
    client = login(people.alice)
    gif = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (10, 10)).save(gif, "GIF")
    cases = [
        (upload("logo.png", gif.getvalue()), "must be a PNG or JPEG"),
        (upload("logo.png", b"<svg></svg>"), "not a readable PNG or JPEG"),
        (upload("logo.png", b"\x89PNG" + b"0" * (1024 * 1024 + 1)), "larger than 1 MB"),
    ]
    for file, message in cases:
        response = client.post("/t/demo-hospital/setup/details/", {**DETAILS, "logo": file})
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not HospitalProfile.objects.filter(tenant=people.demo).exclude(logo_key="").exists()
    assert not AuditEvent.objects.filter(action=AuditAction.SETTINGS_CHANGE).exists()
