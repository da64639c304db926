"""The forms of onboarding. Pages and ``onboard_tenant`` validate through the same ones."""

from __future__ import annotations

import csv
import io
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from PIL import Image, UnidentifiedImageError

from tenants.models import CalledAETitle, ReadingGroup, Role, Tenant, User, ae_title_validator

from .services import Invitee, create_hospital, create_reading_group

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_PIXELS = 4096
LOGO_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}
CSV_MAX_BYTES = 512 * 1024
CSV_MAX_ROWS = 2000


class HospitalForm(forms.Form):
    slug = forms.SlugField(max_length=63, help_text="In every URL of the hospital: /t/<slug>/.")
    name = forms.CharField(max_length=200)
    jurisdiction = forms.CharField(max_length=32, required=False, help_text='e.g. "US-CA".')
    called_ae_title = forms.CharField(
        label="Called AE title",
        max_length=16,
        validators=[ae_title_validator],
        help_text="What the hospital's modalities call; unique on the platform, 1-16 characters.",
    )
    admin_email = forms.EmailField(label="First admin's e-mail")

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if Tenant.objects.filter(slug=slug).exists():
            raise ValidationError("A hospital with this slug exists already; choose another.")
        return slug

    def clean_called_ae_title(self) -> str:
        title: str = self.cleaned_data["called_ae_title"].strip()
        # Called AE titles are unique across the platform: which hospital holds it, if any.
        owner = CalledAETitle.objects.filter(ae_title=title).values_list("tenant_id", flat=True)
        if owner.first() is not None:
            raise ValidationError(f"The AE title {title} is taken by another hospital.")
        return title

    def save(self, actor: User | None) -> Tenant:
        """Create the hospital and invite its first admin (call after ``is_valid``)."""
        data = self.cleaned_data
        tenant, _, _ = create_hospital(
            slug=data["slug"],
            name=data["name"],
            jurisdiction=data["jurisdiction"],
            called_ae_title=data["called_ae_title"],
            admin_email=data["admin_email"],
            actor=actor,
        )
        return tenant


class GroupForm(forms.Form):
    slug = forms.SlugField(max_length=63, help_text="In the group's URLs: /g/<slug>/.")
    name = forms.CharField(max_length=200)
    admin_email = forms.EmailField(label="First admin's e-mail")

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if ReadingGroup.objects.filter(slug=slug).exists():
            raise ValidationError("A reading group with this slug exists already.")
        return slug

    def save(self, actor: User | None) -> ReadingGroup:
        data = self.cleaned_data
        group, _, _ = create_reading_group(
            slug=data["slug"], name=data["name"], admin_email=data["admin_email"], actor=actor
        )
        return group


def _role_choices(roles: list[str]) -> list[tuple[str, str]]:
    return [(value, Role(value).label) for value in roles]


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=[])
    person_name = forms.CharField(
        max_length=324,
        required=False,
        label="DICOM person name",
        help_text='For a referring physician: as the studies name them, e.g. "WELBY^MARCUS".',
    )

    def __init__(self, *args: Any, roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)  # type: ignore[attr-defined]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[])

    def __init__(self, *args: Any, roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(roles)  # type: ignore[attr-defined]


def _role_from_text(text: str, roles: list[str]) -> str | None:
    wanted = text.strip().lower().replace(" ", "_")
    for value in roles:
        if wanted in (value, Role(value).label.lower().replace(" ", "_")):
            return value
    return None


class UsersImportForm(forms.Form):
    """A CSV with the columns email, role, person_name. Every row is checked before anything
    is imported; one bad row imports nothing and its line is named."""

    file = forms.FileField(label="CSV file", help_text="Columns: email, role, person_name.")

    def __init__(self, *args: Any, roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.roles = roles

    def clean_file(self) -> list[Invitee]:
        upload = self.cleaned_data["file"]
        if upload.size > CSV_MAX_BYTES:
            raise ValidationError(f"The file is larger than {CSV_MAX_BYTES // 1024} KB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text; save it as CSV (UTF-8).") from None
        return parse_invitees(list(csv.reader(io.StringIO(text))), self.roles)


def parse_invitees(rows: list[list[str]], roles: list[str]) -> list[Invitee]:
    """Rows of a CSV, the header first. All errors at once, each naming its line."""
    if not rows:
        raise ValidationError("The file is empty; the first line names the columns.")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [c for c in ("email", "role") if c not in header]
    if missing:
        raise ValidationError(f"Line 1: the columns {', '.join(missing)} are missing.")
    if len(rows) - 1 > CSV_MAX_ROWS:
        raise ValidationError(f"The file has more than {CSV_MAX_ROWS} rows; split it.")
    column: dict[str, int] = {
        name: header.index(name) for name in ("email", "role", "person_name") if name in header
    }
    errors: list[str] = []
    invitees: list[Invitee] = []
    seen: set[tuple[str, str]] = set()
    allowed = ", ".join(roles)
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            index = column.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        email, role_text, person_name = cell("email"), cell("role"), cell("person_name")
        try:
            validate_email(email)
        except ValidationError:
            errors.append(f"Line {number}: email: enter a valid e-mail address.")
        role = _role_from_text(role_text, roles)
        if role is None:
            errors.append(f"Line {number}: role: {role_text or 'empty'} is not one of {allowed}.")
        if len(person_name) > 324:
            errors.append(f"Line {number}: person_name: at most 324 characters.")
        if role is not None and (email.lower(), role) in seen:
            errors.append(f"Line {number}: the same e-mail and role appear twice.")
        if role is not None:
            seen.add((email.lower(), role))
            invitees.append(Invitee(email=email, role=role, person_name=person_name))
    if errors:
        raise ValidationError(errors)
    if not invitees:
        raise ValidationError("The file has no rows under its header.")
    return invitees


class DetailsForm(forms.Form):
    name = forms.CharField(max_length=200, label="Hospital name")
    address = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=400, required=False
    )
    phone = forms.CharField(max_length=40, required=False, label="Contact phone")
    email = forms.EmailField(required=False, label="Contact e-mail")
    report_footer = forms.CharField(
        max_length=300, required=False, help_text="One line printed at the end of every report."
    )
    logo = forms.FileField(
        required=False, help_text="PNG or JPEG, at most 1 MB; printed at the top of reports."
    )

    def clean_phone(self) -> str:
        phone: str = self.cleaned_data["phone"]
        allowed = set("0123456789 +-().")
        if phone and (not set(phone) <= allowed or sum(c.isdigit() for c in phone) < 5):
            raise ValidationError("Enter a phone number of digits, spaces and + - ( ) only.")
        return phone

    def clean_logo(self) -> tuple[bytes, str, str] | None:
        """The logo's bytes, file extension and content type, checked by Pillow: the real
        format (not the name or the browser's type), and its size in bytes and pixels."""
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size > LOGO_MAX_BYTES:
            raise ValidationError("The logo is larger than 1 MB; use a smaller image.")
        data = upload.read()
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                width, height = image.size
                image.verify()
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            Image.DecompressionBombError,
        ):
            raise ValidationError("The logo is not a readable PNG or JPEG image.") from None
        if kind not in LOGO_FORMATS:
            raise ValidationError("The logo must be a PNG or JPEG image.")
        if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
            raise ValidationError(f"The logo is larger than {LOGO_MAX_PIXELS} pixels across.")
        extension, content_type = LOGO_FORMATS[kind]
        return data, extension, content_type
