"""Critical results: a finding that someone must be told of, and must confirm they were told.

Categories follow the ACR Practice Parameter for Communication of Diagnostic Imaging Findings
(and the common "actionable findings" scheme built on it): 1 — communicate within minutes,
2 — within hours, 3 — within days. Each hospital sets its own limits (``CriticalSettings``);
a result not acknowledged within its limit is escalated once to the hospital's escalation
contacts and admins.

An acknowledgement link is single-purpose: its token acknowledges one critical result and does
nothing else; only the token's SHA-256 is stored (the link is shown and sent once).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from studies.models import Study
from tenants.models import Tenant, User
from worklists.models import WorkItem

__all__ = [
    "Category",
    "CommunicationMethod",
    "CriticalCommunication",
    "CriticalResult",
    "CriticalSettings",
]


class Category(models.IntegerChoices):
    MINUTES = 1, "Category 1 (minutes)"
    HOURS = 2, "Category 2 (hours)"
    DAYS = 3, "Category 3 (days)"


# Defaults of a hospital that has not set its own: 60 minutes, 6 hours, 3 days.
DEFAULT_LIMIT_MINUTES = {Category.MINUTES: 60, Category.HOURS: 6 * 60, Category.DAYS: 3 * 24 * 60}


class CriticalSettings(models.Model):
    """A hospital's limits per category, and whom to tell when one passes unacknowledged.
    ``escalation_contacts``: [{"name": ..., "role": ..., "email": ..., "phone": ...}]."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    category1_minutes = models.PositiveIntegerField(default=DEFAULT_LIMIT_MINUTES[Category.MINUTES])
    category2_minutes = models.PositiveIntegerField(default=DEFAULT_LIMIT_MINUTES[Category.HOURS])
    category3_minutes = models.PositiveIntegerField(default=DEFAULT_LIMIT_MINUTES[Category.DAYS])
    escalation_contacts = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "critical settings"

    def __str__(self) -> str:
        return f"critical settings of {self.tenant_id}"

    def limit(self, category: int) -> timedelta:
        minutes = {
            Category.MINUTES: self.category1_minutes,
            Category.HOURS: self.category2_minutes,
            Category.DAYS: self.category3_minutes,
        }[Category(category)]
        return timedelta(minutes=minutes)


class CriticalResult(models.Model):
    """A finding of one work item's study flagged critical, open until acknowledged."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    work_item = models.ForeignKey(WorkItem, on_delete=models.PROTECT, related_name="criticals")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    report = models.ForeignKey(
        "reports.Report", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    category = models.PositiveSmallIntegerField(choices=Category.choices)
    finding = models.TextField(help_text="What is critical, for those who may see the study.")
    # Who must be told, in words ("Dr Welby, referring physician"); the communications say who was.
    recipient = models.CharField(max_length=200, blank=True)
    flagged_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    flagged_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_name = models.CharField(max_length=200, blank=True)
    acknowledged_via = models.ForeignKey(
        "CriticalCommunication", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "work_item"], name="critical_tenant_item"),
            models.Index(
                fields=["due_at"],
                condition=Q(acknowledged_at__isnull=True, escalated_at__isnull=True),
                name="critical_open_due",
            ),
        ]

    def __str__(self) -> str:
        return f"critical result {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    def limit(self) -> timedelta:
        return self.due_at - self.flagged_at


class CommunicationMethod(models.TextChoices):
    PHONE = "phone", "Phone"
    IN_PERSON = "in_person", "In person"
    MESSAGE = "message", "Message"
    SECURE_LINK = "secure_link", "Secure link"


class CriticalCommunication(models.Model):
    """Who was told of a critical result, how, when and by whom. A secure link carries a token
    (its hash stored here) with which the recipient acknowledges."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    critical = models.ForeignKey(
        CriticalResult, on_delete=models.PROTECT, related_name="communications"
    )
    recipient_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recipient_name = models.CharField(max_length=200)
    recipient_role = models.CharField(max_length=100, blank=True)
    recipient_contact = models.CharField(max_length=254, blank=True)
    method = models.CharField(max_length=16, choices=CommunicationMethod.choices)
    note = models.TextField(blank=True)
    communicated_at = models.DateTimeField(default=timezone.now)
    communicated_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["communicated_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["token_hash"], condition=~Q(token_hash=""), name="critical_link_unique"
            )
        ]

    def __str__(self) -> str:
        return f"communication {self.pk}"

    @staticmethod
    def hash_token(token: str) -> str:
        # 256 random bits: a fast hash is right (as for API tokens).
        return hashlib.sha256(token.encode()).hexdigest()
