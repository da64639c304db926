"""A hospital's de-identification policy, and what each de-identified share found in its
instances (the burned-in annotation check, done once per instance and link)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.models import Tenant

from ..models import Instance
from .profile import DATE_CHOICES, DATES_REMOVE, Options

__all__ = ["BurnedIn", "DeidInstance", "DeidPolicy"]


class BurnedIn(models.TextChoices):
    EXCLUDE = "exclude", "Leave out instances that may show burned-in text (safest)"
    WARN = "warn", "Include them, with a warning to the sender and the recipient"


class DeidPolicy(models.Model):
    """How a hospital de-identifies what it sends outside (shares for second opinions and
    teaching): a row only when it differs from the defaults, which ``for_tenant`` returns."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    required_for_shares = models.BooleanField(
        default=False,
        help_text="Every new share link is de-identified; senders cannot choose otherwise.",
    )
    retain_patient_characteristics = models.BooleanField(
        default=False, help_text="Keep sex, age, size, weight and similar (PS3.15 option)."
    )
    retain_device_identity = models.BooleanField(
        default=False, help_text="Keep device serial numbers and station names."
    )
    retain_institution_identity = models.BooleanField(
        default=False, help_text="Keep the hospital's name and address in the files."
    )
    clean_descriptors = models.BooleanField(
        default=False,
        help_text="Keep study and series descriptions, with names and IDs taken out of them.",
    )
    dates = models.CharField(max_length=8, choices=DATE_CHOICES, default=DATES_REMOVE)
    burned_in = models.CharField(max_length=8, choices=BurnedIn.choices, default=BurnedIn.EXCLUDE)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"De-identification policy of tenant {self.tenant_id}"

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> DeidPolicy:
        return cls.objects.filter(tenant=tenant).first() or cls(tenant=tenant)

    def options(self) -> Options:
        return Options(
            retain_patient_characteristics=self.retain_patient_characteristics,
            retain_device_identity=self.retain_device_identity,
            retain_institution_identity=self.retain_institution_identity,
            clean_descriptors=self.clean_descriptors,
            dates=self.dates,
        )


class DeidInstance(models.Model):
    """One instance of a de-identified link, checked for burned-in text: ``reason`` says why it
    is flagged, empty when it is not."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    link = models.ForeignKey("studies.ShareLink", on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "link", "instance"], name="deid_instance_once"
            )
        ]

    def __str__(self) -> str:
        return f"Instance {self.instance_id} of share link {self.link_id}"
