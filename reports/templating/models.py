"""Report templates and text blocks.

A template belongs to a hospital (tenant) or to a reading group, never both: the hospital's are
offered to everyone who reports its studies, a group's to its own radiologists for every hospital
the group reads for. Its five sections hold text with fill-in fields and pick lists written inline
(``[[size:number]] mm``, ``[[side:left|right]]``, see ``syntax.py``), so an admin writes a
template as the report it becomes.

A text block is a shortcut (``.nochest``) that expands to its text in the editor; it belongs to a
hospital, a reading group or one radiologist.
"""

from __future__ import annotations

import re

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import ReadingGroup, Tenant, User

__all__ = ["ReportTemplate", "TextBlock"]

MAX_SECTION = 20_000
MAX_BLOCK = 5_000

SHORTCUT = re.compile(r"^\.[a-z0-9][a-z0-9_-]{0,30}$")
SHORTCUT_HELP = (
    "A shortcut is a dot and then 1 to 31 lower-case letters, digits, - or _, e.g. .nochest"
)
shortcut_validator = RegexValidator(regex=SHORTCUT.pattern, message=SHORTCUT_HELP)


class ReportTemplate(models.Model):
    """A report template of a hospital or of a reading group (exactly one of them)."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=120)
    # DICOM Modality and Body Part Examined (defined terms, upper case); blank fits any.
    modality = models.CharField(max_length=16, blank=True, help_text='e.g. "CT"; blank: any.')
    body_part = models.CharField(max_length=64, blank=True, help_text='e.g. "CHEST"; blank: any.')
    description = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    clinical_information = models.TextField(blank=True)
    technique = models.TextField(blank=True)
    comparison = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(tenant__isnull=False, group__isnull=True)
                    | Q(tenant__isnull=True, group__isnull=False)
                ),
                name="reporttemplate_tenant_xor_group",
            ),
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(tenant__isnull=False),
                name="reporttemplate_unique_tenant_name",
            ),
            models.UniqueConstraint(
                fields=["group", "name"],
                condition=Q(group__isnull=False),
                name="reporttemplate_unique_group_name",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "is_active"], name="reporttemplate_tenant"),
            models.Index(fields=["group", "is_active"], name="reporttemplate_group"),
        ]

    def __str__(self) -> str:
        return self.name

    def sections(self) -> dict[str, str]:
        from reports.models import SECTIONS

        return {name: getattr(self, name) for name in SECTIONS}

    @property
    def owner_name(self) -> str:
        owner = self.tenant or self.group
        return owner.name if owner else ""


class TextBlock(models.Model):
    """A shortcut that expands to text, of a hospital, a reading group or one radiologist."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    shortcut = models.CharField(max_length=32, validators=[shortcut_validator])
    text = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["shortcut", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(tenant__isnull=False, group__isnull=True, owner__isnull=True)
                    | Q(tenant__isnull=True, group__isnull=False, owner__isnull=True)
                    | Q(tenant__isnull=True, group__isnull=True, owner__isnull=False)
                ),
                name="textblock_one_owner",
            ),
            models.UniqueConstraint(
                fields=["tenant", "shortcut"],
                condition=Q(tenant__isnull=False),
                name="textblock_unique_tenant_shortcut",
            ),
            models.UniqueConstraint(
                fields=["group", "shortcut"],
                condition=Q(group__isnull=False),
                name="textblock_unique_group_shortcut",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=Q(owner__isnull=False),
                name="textblock_unique_owner_shortcut",
            ),
        ]

    def __str__(self) -> str:
        return self.shortcut

    @property
    def owner_name(self) -> str:
        owner = self.tenant or self.group or self.owner
        return str(owner.name if not isinstance(owner, User) else owner) if owner else ""
