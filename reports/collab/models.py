"""Collaboration on a study: consults (second opinions), comments with @mentions, notifications.

A consult lets a radiologist who may not otherwise read a hospital's studies see *one* study: the
grant is a django-guardian object permission (``view_consult``) on the Consult row, held in a
direct-foreign-key table (``ConsultUserObjectPermission``) so that the access checks can join it
cheaply. Access needs both the permission row and a consult that is still open (not revoked, not
expired): revoking deletes the rows and closes the consult, and either alone ends access at once.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import UserObjectPermissionBase

from studies.models import Study
from tenants.models import ReadingGroup, Tenant, User
from worklists.models import WorkItem

__all__ = [
    "Comment",
    "Consult",
    "ConsultStatus",
    "ConsultUserObjectPermission",
    "Notification",
    "NotificationKind",
]


class ConsultStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    ACCEPTED = "accepted", "Accepted"
    ANSWERED = "answered", "Answered"
    REVOKED = "revoked", "Revoked"


# A consult grants access in these states (an answered consult stays open for follow-up
# questions until the requester or an admin revokes it, or it expires).
OPEN_CONSULT_STATES = (ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED, ConsultStatus.ANSWERED)


class Consult(models.Model):
    """A question about one study, asked of a named radiologist or of a reading group."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    work_item = models.ForeignKey(WorkItem, on_delete=models.PROTECT, related_name="consults")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    # Asked of a person, or of a group (then ``consultant`` is whoever of it accepts).
    consultant = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    question = models.TextField()
    status = models.CharField(
        max_length=16, choices=ConsultStatus.choices, default=ConsultStatus.REQUESTED
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "work_item"], name="consult_tenant_item")]
        constraints = [
            models.CheckConstraint(
                condition=Q(consultant__isnull=False) | Q(group__isnull=False),
                name="consult_has_someone_to_ask",
            )
        ]

    def __str__(self) -> str:
        return f"consult {self.pk}"

    def is_open(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.status in OPEN_CONSULT_STATES and (
            self.expires_at is None or self.expires_at > now
        )

    def asked_of(self) -> str:
        """Who was asked, in words (no patient data)."""
        if self.group is not None:
            return f"{self.consultant} ({self.group.name})" if self.consultant else self.group.name
        return str(self.consultant)


class ConsultUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's per-user object permissions on consults, with a real foreign key."""

    content_object = models.ForeignKey(Consult, on_delete=models.CASCADE, related_name="grants")

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "consult permission"


class Comment(models.Model):
    """A remark in a work item's thread; a reply names the comment it answers. A consultant's
    answer to a consult is a comment marked so."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    work_item = models.ForeignKey(WorkItem, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replies"
    )
    answers = models.ForeignKey(
        Consult, null=True, blank=True, on_delete=models.PROTECT, related_name="answers"
    )
    mentions = models.ManyToManyField(User, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "work_item"], name="comment_tenant_item")]

    def __str__(self) -> str:
        return f"comment {self.pk}"


class NotificationKind(models.TextChoices):
    MENTION = "mention", "Mentioned"
    CONSULT_REQUEST = "consult_request", "Consult requested"
    CONSULT_ACCEPT = "consult_accept", "Consult accepted"
    CONSULT_ANSWER = "consult_answer", "Consult answered"
    CONSULT_REVOKE = "consult_revoke", "Consult withdrawn"
    CRITICAL = "critical", "Critical result"
    CRITICAL_ESCALATION = "critical_escalation", "Critical result not acknowledged"


class Notification(models.Model):
    """Something a user should look at. ``text`` never holds patient data (it is also the
    e-mail's body); ``link`` leads to where the data is, behind the usual access checks.
    ``key`` makes a notification idempotent: a task that runs twice notifies once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    text = models.CharField(max_length=300)
    link = models.CharField(max_length=300, blank=True)
    key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_user_unread")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], condition=~Q(key=""), name="notification_once_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"notification {self.pk}"
