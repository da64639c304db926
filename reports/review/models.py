"""Co-sign: a hospital's rule that its own radiologists validate the reading groups' preliminaries,
and the requests that carry a signed preliminary to a validator and back.

A request is about one signed preliminary version. It is validated (a new final version, signed by
the validator, the author kept), returned to the author with comments (who revises and sends
again), or cancelled by the author. Its tenant is stored on the row so that every read of a queue
is filtered by the tenant first.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Membership, Role, Tenant, User

__all__ = ["ReviewPolicy", "ReviewRequest", "ReviewState"]


class ReviewPolicy(models.Model):
    """How a hospital wants preliminaries validated. No row: no validation required."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="review_policy")
    # Preliminaries by radiologists who are not the hospital's own (reading groups) must be
    # validated by one of the hospital's radiologists before they become final.
    requires_validation = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"review policy of tenant {self.tenant_id}"

    @staticmethod
    def is_hospital_radiologist(tenant_id: int, user: User) -> bool:
        """A radiologist of the hospital itself (an attending), who may validate."""
        return Membership.objects.filter(
            user=user, tenant_id=tenant_id, role=Role.RADIOLOGIST, user__is_active=True
        ).exists()

    @classmethod
    def validation_required(cls, tenant_id: int, author: User) -> bool:
        """Must this author's report of this tenant be validated by someone else to be final?"""
        required = cls.objects.filter(tenant_id=tenant_id, requires_validation=True).exists()
        return required and not cls.is_hospital_radiologist(tenant_id, author)


class ReviewState(models.TextChoices):
    OPEN = "open", "Waiting for validation"
    VALIDATED = "validated", "Validated"
    RETURNED = "returned", "Returned to the author"
    CANCELLED = "cancelled", "Cancelled"


class ReviewRequest(models.Model):
    """A signed preliminary sent to a hospital radiologist (or to any of them) to validate."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    report = models.ForeignKey(
        "reports.Report", on_delete=models.PROTECT, related_name="review_requests"
    )
    version = models.ForeignKey(
        "reports.ReportVersion", on_delete=models.PROTECT, related_name="review_requests"
    )
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    # None: any radiologist of the hospital may take it.
    reviewer = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    message = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.OPEN)
    # The validator's comments when returning it (or a note when validating).
    comments = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The final version a validation made.
    result = models.ForeignKey(
        "reports.ReportVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "state", "created_at"], name="review_tenant_queue"),
        ]
        constraints = [
            # One open request per preliminary: sending twice does not make two.
            models.UniqueConstraint(
                fields=["version"], condition=Q(state="open"), name="review_one_open_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"review request {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state == ReviewState.OPEN

    def may_be_decided_by(self, user: User) -> bool:
        """The named reviewer, or any hospital radiologist when none is named; never the author."""
        if user.pk in (self.requested_by_id, self.version.author_id):
            return False
        if self.reviewer_id is not None and self.reviewer_id != user.pk:
            return False
        return ReviewPolicy.is_hospital_radiologist(self.tenant_id, user)
