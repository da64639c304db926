"""``manage.py onboard_tenant``: a tenant.yaml does what the wizard does, all or nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from studies.deid.models import DeidPolicy
from studies.retention.models import RetentionPolicy
from tenants.models import AuditEvent, CalledAETitle, Tenant
from tenants.onboarding import sections as registry
from tenants.onboarding.models import HospitalProfile, Invitation
from tenants.onboarding.sections import Section

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "infra" / "tenant.example.yaml"


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("onboard_tenant", *args, stdout=out, stderr=err)
    except CommandError as failed:
        raise AssertionError(f"{failed}\n{err.getvalue()}") from None
    return out.getvalue(), err.getvalue()


def fails(*args: str) -> tuple[str, CommandError]:
    err = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("onboard_tenant", *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue(), raised.value


def everything() -> list[Any]:
    """Rows of the tables onboarding writes, audit log included."""
    return [
        sorted(Tenant.objects.values_list("slug", "name")),
        sorted(CalledAETitle.objects.values_list("ae_title", "tenant_id")),
        sorted(Invitation.objects.values_list("email", "role", "token_hash")),
        sorted(HospitalProfile.objects.values_list("tenant_id", "address", "phone")),
        AuditEvent.objects.count(),
    ]


def write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def test_the_example_file_sets_up_a_hospital_and_a_second_run_changes_nothing(
    people: Any, mailoutbox: Any
) -> None:
    """The example contracts demo-readers (made by the ``people`` fixture, as by seed_demo)."""
    out, _ = run("--from-file", str(EXAMPLE))
    assert "north-clinic is set up" in out
    tenant = Tenant.objects.get(slug="north-clinic")
    assert tenant.called_ae_titles.get().ae_title == "NORTHCLINIC"
    profile = HospitalProfile.objects.get(tenant=tenant)
    assert profile.phone == "+1 555 0100" and profile.address.startswith("1 Harbour Road")
    invited = sorted(Invitation.objects.filter(tenant=tenant).values_list("email", "role"))
    assert invited == [
        ("admin@north-clinic.example", "tenant_admin"),
        ("rad@north-clinic.example", "radiologist"),
        ("tech@north-clinic.example", "technologist"),
        ("welby@north-clinic.example", "referring_physician"),
    ]
    assert len(mailoutbox) == 4
    # Every step of the file took effect: DICOM, agreements, retention, de-identification.
    assert sorted(tenant.allowed_callers.values_list("ae_title", flat=True)) == [
        "NORTHCT1",
        "NORTHMR1",
    ]
    assert tenant.agreements.get().group.slug == "demo-readers"
    assert RetentionPolicy.objects.get(tenant=tenant).keep_days == 3650
    assert DeidPolicy.objects.get(tenant=tenant).required_for_shares
    before = everything()
    run("--from-file", str(EXAMPLE))
    assert everything() == before and len(mailoutbox) == 4


def test_errors_name_their_place_in_the_file_exit_1_and_change_nothing(
    people: Any, tmp_path: Path, mailoutbox: Any
) -> None:
    data = example()
    data["tenant"]["called_ae_title"] = "A" * 17
    data["details"]["email"] = "radiology@"
    data["users"][1]["email"] = "welby@"
    data["retention_policy"] = {"days": 3}  # no such section (it is "retention")
    before = everything()
    err, error = fails("--from-file", write(tmp_path, data))
    assert error.returncode == 1
    assert "tenant.called_ae_title: Ensure this value has at most 16 characters" in err
    assert "retention_policy: no such section" in err
    assert everything() == before and not mailoutbox
    # With the tenant block right, the sections' own errors are named by their paths.
    data["tenant"]["called_ae_title"] = "NORTHCLINIC"
    del data["retention_policy"]
    err, error = fails("--from-file", write(tmp_path, data))
    assert error.returncode == 1
    assert "details.email: Enter a valid email address." in err
    assert "users[1].email: Enter a valid email address." in err
    assert everything() == before and not mailoutbox


def test_a_taken_ae_title_is_refused(people: Any, tmp_path: Path) -> None:
    data = example()
    data["tenant"]["called_ae_title"] = "DEMOHOSP"
    before = everything()
    err, _ = fails("--from-file", write(tmp_path, data))
    assert "tenant.called_ae_title: The AE title DEMOHOSP is taken by another hospital." in err
    assert everything() == before


def test_a_failing_section_rolls_back_the_sections_before_it(
    people: Any, tmp_path: Path, monkeypatch: Any, mailoutbox: Any
) -> None:
    """A later section's error undoes the hospital, the details and the invitations."""

    def refuse(tenant: Any, data: Any, actor: Any) -> None:
        raise ValidationError({"callers[1].network": "Enter a network such as 10.20.0.0/16."})

    fake = Section(
        key="zzz",
        title="A section that refuses",
        order=999,
        url_name="onboarding:overview",
        summary=lambda tenant: "",
        done=lambda tenant: False,
        apply=refuse,
    )
    real = registry.sections

    monkeypatch.setattr(
        "tenants.management.commands.onboard_tenant.sections", lambda: [*real(), fake]
    )
    data = {**example(), "zzz": {"callers": []}}
    before = everything()
    err, error = fails("--from-file", write(tmp_path, data))
    assert error.returncode == 1
    assert "zzz.callers[1].network: Enter a network such as 10.20.0.0/16." in err
    assert everything() == before and not mailoutbox


def test_a_dry_run_checks_and_changes_nothing(people: Any, mailoutbox: Any) -> None:
    before = everything()
    out, _ = run("--from-file", str(EXAMPLE), "--dry-run")
    assert "would be set up" in out
    assert everything() == before and not mailoutbox


def test_export_prints_a_file_that_applies_back_unchanged(people: Any, tmp_path: Path) -> None:
    run("--from-file", str(EXAMPLE))
    exported, _ = run("--export", "north-clinic")
    data = yaml.safe_load(exported)
    assert data["tenant"]["called_ae_title"] == "NORTHCLINIC"
    assert data["details"]["phone"] == "+1 555 0100"
    assert {"email": "rad@north-clinic.example", "role": "radiologist", "person_name": ""} in data[
        "users"
    ]
    before = everything()
    path = tmp_path / "exported.yaml"
    path.write_text(exported)
    run("--from-file", str(path))
    assert everything() == before
