"""The reading worklist: credentials, priority classes, routing rules, work items and their claims.

Every row that concerns a study belongs to exactly one tenant. What a radiologist may see and
claim is computed from these rows by ``worklists/eligibility.py``; nothing here grants access
on its own.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from studies.models import Patient, Study
from tenants.models import ReadingGroup, Tenant, User

# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


def _valid_on(valid_from: date | None, valid_to: date | None, day: date) -> bool:
    return (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)


class Licence(models.Model):
    """A radiologist's licence to practise in a jurisdiction (a state, a country)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="licences")
    jurisdiction = models.CharField(max_length=32, help_text='e.g. "US-CA", "GB", "DE-BY".')
    number = models.CharField(max_length=64)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["jurisdiction", "-valid_to"]
        indexes = [models.Index(fields=["user", "jurisdiction"], name="licence_user_jur")]

    def clean(self) -> None:
        if self.valid_to and self.valid_to < self.valid_from:
            raise ValidationError({"valid_to": "A licence cannot end before it starts."})

    def is_valid_on(self, day: date) -> bool:
        return _valid_on(self.valid_from, self.valid_to, day)

    def __str__(self) -> str:
        return f"licence {self.jurisdiction} of {self.user}"


class Privilege(models.Model):
    """What a radiologist may read for one tenant: modalities and subspecialties, for a period.

    Empty ``subspecialties`` means general reading only (items without a subspecialty)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="privileges")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    modalities = models.JSONField(default=list, help_text='e.g. ["CT", "MR"].')
    subspecialties = models.JSONField(default=list, blank=True, help_text='e.g. ["neuro"].')
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    granted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "tenant"], name="privilege_user_tenant")]

    def clean(self) -> None:
        if self.valid_to and self.valid_to < self.valid_from:
            raise ValidationError({"valid_to": "A privilege cannot end before it starts."})
        if not self.modalities:
            raise ValidationError({"modalities": "Name at least one modality."})

    def is_valid_on(self, day: date) -> bool:
        return _valid_on(self.valid_from, self.valid_to, day)

    def __str__(self) -> str:
        return f"privilege of {self.user} at {self.tenant}"


# ---------------------------------------------------------------------------------------------
# How items are classified
# ---------------------------------------------------------------------------------------------


class PriorityClass(models.Model):
    """A priority with its SLA. ``tenant`` null: the built-in classes every tenant has (STAT,
    urgent, routine); a tenant adds its own (e.g. stroke, 15 minutes) or overrides one by code."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    code = models.SlugField(max_length=32)
    name = models.CharField(max_length=64)
    sla_minutes = models.PositiveIntegerField()
    # Lower is more urgent: the worklist's default order and auto-assignment use it.
    rank = models.PositiveSmallIntegerField(default=50)

    class Meta:
        ordering = ["rank", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="priority_unique_tenant_code"),
            models.UniqueConstraint(
                fields=["code"], condition=Q(tenant__isnull=True), name="priority_unique_builtin"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class RoutingRule(models.Model):
    """Sets an item's subspecialty and/or priority class from what the study says. Rules of a
    tenant are tried in ``position`` order; the first that matches sets each output it has."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    modality = models.CharField(max_length=16, blank=True, help_text="Blank: any.")
    body_part = models.CharField(max_length=64, blank=True, help_text="Blank: any.")
    description_contains = models.CharField(
        max_length=64, blank=True, help_text="Case-insensitive; blank: any."
    )
    subspecialty = models.SlugField(max_length=32, blank=True)
    priority_code = models.SlugField(max_length=32, blank=True)

    class Meta:
        ordering = ["tenant", "position", "id"]

    def __str__(self) -> str:
        return f"routing rule {self.pk} of {self.tenant}"

    def matches(self, modalities: list[str], body_part: str, description: str) -> bool:
        if self.modality and self.modality.upper() not in modalities:
            return False
        if self.body_part and self.body_part.upper() != body_part.upper():
            return False
        return not (
            self.description_contains
            and self.description_contains.lower() not in description.lower()
        )


# ---------------------------------------------------------------------------------------------
# Work items
# ---------------------------------------------------------------------------------------------


class ItemState(models.TextChoices):
    """The DICOM UPS states (PS3.4 CC.1.1)."""

    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"


class ReadingState(models.TextChoices):
    UNREAD = "unread", "Unread"
    CLAIMED = "claimed", "Claimed"
    PRELIMINARY = "preliminary", "Preliminary"
    FINAL = "final", "Final"


OPEN_STATES = (ItemState.SCHEDULED, ItemState.IN_PROGRESS)


class WorkItem(models.Model):
    """One study to read (or one accession, when the study carries one), in one tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    # "acc:<accession>" or "study:<uid>": a resend, a late series or a second study of the same
    # accession finds the item it belongs to instead of making another.
    key = models.CharField(max_length=100)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="work_items")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    accession_number = models.CharField(max_length=64, blank=True)
    # Copied from the study so the list is one indexed query; refreshed when the study changes.
    patient_name = models.CharField(max_length=324, blank=True)
    patient_name_search = models.CharField(max_length=324, blank=True)
    patient_identifier = models.CharField(max_length=64, blank=True)
    study_description = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    modalities = models.CharField(max_length=100, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    subspecialty = models.SlugField(max_length=32, blank=True)
    clinical_question = models.TextField(blank=True)

    priority = models.ForeignKey(PriorityClass, on_delete=models.PROTECT, related_name="+")
    priority_rank = models.PositiveSmallIntegerField(default=50)
    arrived_at = models.DateTimeField()
    sla_due_at = models.DateTimeField()
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_pause_reason = models.CharField(max_length=200, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.SCHEDULED)
    reading_state = models.CharField(
        max_length=16, choices=ReadingState.choices, default=ReadingState.UNREAD
    )
    holder = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    preliminary_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change a list shows, for cheap "has anything changed" polling.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="workitem_unique_tenant_key")
        ]
        indexes = [
            models.Index(
                fields=["tenant", "state", "priority_rank", "sla_due_at"],
                name="workitem_open_order",
                condition=Q(state__in=["scheduled", "in_progress"]),
            ),
            # What the coverage clauses filter on, and the default order: with these the list
            # is an index scan that stops at the page (bench/worklist.py, docs/performance.md).
            models.Index(
                fields=["tenant", "modality", "subspecialty"],
                name="workitem_open_cover",
                condition=Q(state__in=["scheduled", "in_progress"]),
            ),
            models.Index(
                fields=["priority_rank", "sla_due_at", "id"],
                name="workitem_open_rank",
                condition=Q(state__in=["scheduled", "in_progress"]),
            ),
            models.Index(fields=["tenant", "patient"], name="workitem_tenant_patient"),
            models.Index(fields=["holder", "state"], name="workitem_holder_state"),
            models.Index(
                fields=["lease_expires_at"],
                name="workitem_leases",
                condition=Q(holder__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"work item {self.pk}"

    def lease_is_live(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return (
            self.holder_id is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )

    def sla_remaining(self, now: datetime | None = None) -> timedelta:
        """Time left on the SLA clock (negative when overdue); frozen while paused."""
        now = self.sla_paused_at or now or timezone.now()
        return self.sla_due_at - now


class StudyLink(models.Model):
    """The studies an item covers (several when they share an accession number)."""

    item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="study_links")
    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="work_item_link")

    def __str__(self) -> str:
        return f"{self.study} in {self.item}"


class Decline(models.Model):
    """A radiologist declined an auto-assigned item; it is not offered to them again."""

    item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="declines")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="decline_unique_item_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} declined {self.item}"


class Prior(models.Model):
    """A relevant prior study of an item's patient, in the same tenant, newest first."""

    item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="priors")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    warmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["item", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["item", "study"], name="prior_unique_item_study")
        ]

    def __str__(self) -> str:
        return f"prior {self.rank} of {self.item}"


class AutoAssignment(models.Model):
    """A reading group's auto-assignment setting."""

    group = models.OneToOneField(ReadingGroup, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=False)
    # Items assigned to one radiologist and not yet final, beyond which they get no more.
    max_open_per_reader = models.PositiveSmallIntegerField(default=10)

    def __str__(self) -> str:
        return f"auto-assignment of {self.group}"


class SavedView(models.Model):
    """A named set of worklist filters: a user's own, or shared with a reading group."""

    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=80)
    filters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(owner__isnull=False, group__isnull=True)
                    | Q(owner__isnull=True, group__isnull=False)
                ),
                name="savedview_owner_xor_group",
            )
        ]

    def __str__(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------------
# Group administration (worklists/groupadmin): agreement terms, shifts, credential reminders
# ---------------------------------------------------------------------------------------------


class AgreementTerms(models.Model):
    """What a hospital contracted with a reading group beyond coverage: the SLA minutes per
    priority class (overriding the class's default for this hospital's items) and the period.

    Kept beside ``tenants.ReadingAgreement`` rather than on it so that the worklist owns its SLA
    rules; one row per agreement, made when a hospital admin saves the agreement."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    agreement = models.OneToOneField(
        "tenants.ReadingAgreement", on_delete=models.CASCADE, related_name="terms"
    )
    # {"stat": 30, "routine": 1440}: minutes by priority code; a code absent keeps its default.
    sla_minutes = models.JSONField(default=dict, blank=True)
    active_from = models.DateField(null=True, blank=True)
    active_to = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "agreement terms"

    def __str__(self) -> str:
        return f"terms of agreement {self.agreement_id}"

    def in_force_on(self, day: date) -> bool:
        return _valid_on(self.active_from, self.active_to, day)


class Shift(models.Model):
    """A radiologist of a reading group is on duty from ``starts_at`` to ``ends_at``. Once a
    group has shifts, auto-assignment offers its items only to members on shift."""

    group = models.ForeignKey(ReadingGroup, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["group", "ends_at"], name="shift_group_end")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="shift_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"shift {self.pk} of {self.user}"

    def is_on(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


class CredentialReminder(models.Model):
    """A reminder sent for one credential, one threshold and one end date: the record that makes
    the reminder job send each one once (a renewed credential gets reminders for its new date)."""

    kind = models.CharField(max_length=16)  # "licence" or "privilege"
    credential_id = models.BigIntegerField()
    days_before = models.PositiveSmallIntegerField()
    valid_to = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "credential_id", "days_before", "valid_to"],
                name="reminder_unique_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.days_before}-day reminder of {self.kind} {self.credential_id}"
