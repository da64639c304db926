"""Invitations, hospital profiles and deactivated memberships (issue 8).

The models live in this package with the feature and belong to the ``tenants`` app (migration
tenants/0014); tenants/models.py imports them so that Django registers them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import ReadingGroup, Role, Tenant, User


def tenant_xor_group(name: str) -> models.CheckConstraint:
    """A row that belongs to a hospital or to a reading group, never both or neither."""
    return models.CheckConstraint(
        condition=(
            Q(tenant__isnull=False, group__isnull=True)
            | Q(tenant__isnull=True, group__isnull=False)
        ),
        name=name,
    )


class InvitationState(models.TextChoices):
    PENDING = "pending", "Invited"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """An offer of one role in one hospital or one reading group, sent to an e-mail address.

    Only a SHA-256 of the token is kept: the token carries 256 random bits, so a fast hash is
    enough and a leaked database row cannot be turned back into a working link. Sending again
    replaces the token, so only the newest mail works.
    """

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    email = models.EmailField()
    # How the hospital's studies name a referring physician (DICOM PN), given to the new user.
    person_name = models.CharField(max_length=324, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            tenant_xor_group("invitation_tenant_xor_group"),
        ]
        indexes = [
            models.Index(fields=["tenant", "email"], name="invitation_tenant_email"),
            models.Index(fields=["group", "email"], name="invitation_group_email"),
        ]

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def state(self, now: datetime | None = None) -> str:
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expires_at <= (now or timezone.now()):
            return InvitationState.EXPIRED
        return InvitationState.PENDING

    @property
    def target_name(self) -> str:
        target = self.tenant or self.group
        return target.name if target else ""

    def __str__(self) -> str:
        return f"invitation {self.pk} as {self.role}"


class HospitalProfile(models.Model):
    """What a hospital tells about itself: contact details, report footer and logo."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="profile")
    address = models.TextField(blank=True, max_length=400)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    report_footer = models.CharField(
        max_length=300, blank=True, help_text="One line printed at the end of every report."
    )
    # The logo's object-storage key (tenants/<id>/derived/branding/...), or blank.
    logo_key = models.CharField(max_length=200, blank=True)
    logo_content_type = models.CharField(max_length=20, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"profile of {self.tenant_id}"


class DeactivatedMembership(models.Model):
    """A role taken away by an admin, kept so that it can be given back as it was.

    Deactivating deletes the ``Membership`` itself: every access check in Skylight reads
    memberships, so the person loses the hospital (or group) at their next request, and no check
    anywhere has to learn about a new flag.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    deactivated_at = models.DateTimeField(default=timezone.now)
    deactivated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            tenant_xor_group("deactivated_tenant_xor_group"),
            models.UniqueConstraint(
                fields=["tenant", "user", "role"], name="deactivated_unique_tenant_role"
            ),
            models.UniqueConstraint(
                fields=["group", "user", "role"], name="deactivated_unique_group_role"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} (deactivated)"
