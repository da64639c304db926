"""Share links and the per-tenant policy that bounds them."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.models import Tenant

from ..models import Study

__all__ = [
    "BurnedIn",
    "DeidInstance",
    "DeidPolicy",
    "SecondFactor",
    "ShareLink",
    "ShareLinkStudy",
    "SharePolicy",
    "StudyGrant",
]


class SharePolicy(models.Model):
    """What a hospital allows its links (and its referrers): a row only when it differs from
    the defaults, which ``for_tenant`` returns unsaved."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    max_days = models.PositiveIntegerField(
        default=30, help_text="The longest a share link may stay valid, in days."
    )
    default_days = models.PositiveIntegerField(
        default=7, help_text="How long a new link is valid unless its sender chooses otherwise."
    )
    require_second_factor = models.BooleanField(
        default=False, help_text="Every link needs a PIN or the patient's date of birth."
    )
    allow_download = models.BooleanField(
        default=True, help_text="Senders may let recipients download the DICOM files."
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=5, help_text="Wrong PINs or birth dates before a link locks."
    )
    # A viewer opening a CT asks for every frame: the limit stops scraping, not reading.
    requests_per_minute = models.PositiveIntegerField(default=1200)
    referrers_see_preliminary = models.BooleanField(
        default=False,
        help_text="Referring physicians also see preliminary reports, not only final ones.",
    )

    def __str__(self) -> str:
        return f"Share policy of tenant {self.tenant_id}"

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> SharePolicy:
        return cls.objects.filter(tenant=tenant).first() or cls(tenant=tenant)


class SecondFactor(models.TextChoices):
    NONE = "none", "None (the link alone opens the studies)"
    PIN = "pin", "A PIN I give the recipient separately"
    BIRTH_DATE = "birth_date", "The patient's date of birth"


class ShareLink(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    second_factor = models.CharField(
        max_length=16, choices=SecondFactor.choices, default=SecondFactor.NONE
    )
    pin_hash = models.CharField(max_length=200, blank=True, editable=False)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    allow_download = models.BooleanField(default=False)
    # For the tenant's list: who it is for, in the creator's words ("Dr Grey, second opinion").
    note = models.CharField(max_length=200, blank=True)
    accesses = models.PositiveIntegerField(default=0)
    # De-identified links (studies/deid) serve the PS3.15 basic profile with the options copied
    # from the hospital's policy when the link was made; the key scopes its UID map and pseudonym.
    deidentified = models.BooleanField(default=False)
    deid_options = models.JSONField(default=dict, blank=True)
    deid_key = models.CharField(max_length=32, blank=True, editable=False)
    deid_date_offset_days = models.IntegerField(default=0)
    deid_burned_in = models.CharField(max_length=8, blank=True)
    last_access_at = models.DateTimeField(null=True, blank=True)
    # Rate limit: requests counted in the current minute (a fixed window, one UPDATE each).
    window_start = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:  # never the token, which is not stored anyway
        return f"Share link {self.pk}"

    def status(self, now: datetime.datetime | None = None) -> str:
        """active, revoked, locked or expired: the first that applies, in that order of blame."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.locked_at is not None:
            return "locked"
        if self.expires_at <= now:
            return "expired"
        return "active"


class ShareLinkStudy(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="shared")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "link", "study"], name="share_study_once")
        ]

    def __str__(self) -> str:
        return f"Study {self.study_id} of share link {self.link_id}"


class StudyGrant(models.Model):
    """A study of the hospital given to one of its referring physicians, who then finds it in
    their portal and viewer although the study names someone else as its referrer."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "user"])]

    def __str__(self) -> str:
        return f"Grant {self.pk}"


# De-identification (studies/deid): its models are this app's too.
from ..deid.models import BurnedIn, DeidInstance, DeidPolicy  # noqa: E402
