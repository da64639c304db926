"""A hospital's retention policy, and the ledger of studies purged under it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.models import Tenant

__all__ = ["PurgedStudy", "RetentionPolicy"]


class RetentionPolicy(models.Model):
    """Keep studies ``keep_days`` after their last received instance (null: forever), or the
    days of ``per_modality`` for a study with that modality (the longest applies)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    keep_days = models.PositiveIntegerField(null=True, blank=True)
    per_modality = models.JSONField(default=dict, blank=True)  # {"CT": 3650}
    # Below the legal floor (settings SKYLIGHT["RETENTION_MIN_DAYS"]) only with this set.
    allow_short = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"retention policy of {self.tenant}"


class PurgedStudy(models.Model):
    """A study whose rows are gone; ``keys`` are its stored objects, deleted after the rows'
    transaction commits. ``objects_deleted_at`` stays null until every key is gone, so a crash
    between the two steps is finished by the next run (as receipts' ``object_deleted`` is)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    study_instance_uid = models.CharField(max_length=64)
    keys = models.JSONField(default=list)
    purged_at = models.DateTimeField(default=timezone.now)
    objects_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "id"],
                name="purged_objects_left",
                condition=models.Q(objects_deleted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"purged study {self.pk}"
