"""Delivery of signed reports: each hospital's settings, and one row per version and channel.

A ``Delivery`` row is the record of one channel of one signed version (the PDF, the DICOM object
stored into the study, its C-STORE to the hospital's PACS, the FHIR webhook, the HL7 message). The
row is unique per (version, channel), so announcing a signature twice creates nothing twice, and
its status only moves forward through conditional UPDATEs, so a task run twice sends nothing twice.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenants.models import DicomDestination, Tenant, User

__all__ = ["Channel", "Delivery", "DeliverySettings", "DeliveryStatus"]

LOGO_MAX_BYTES = 256 * 1024


class DeliverySettings(models.Model):
    """How one hospital wants its reports: the letterhead, and where each channel goes."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    hospital_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="Printed at the top of every report (default: the tenant's name).",
    )
    address = models.TextField(
        blank=True, max_length=400, help_text="Up to four lines under the name on the letterhead."
    )
    # A small PNG or JPEG kept in the row: one per hospital, read with every PDF, and far below
    # the size where object storage pays for itself.
    logo = models.BinaryField(null=True, blank=True, max_length=LOGO_MAX_BYTES)
    pacs_destination = models.ForeignKey(
        DicomDestination,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The hospital's PACS, sent each final report as a DICOM object (C-STORE).",
    )
    webhook_url = models.URLField(
        blank=True,
        max_length=500,
        help_text="Receives each report as a FHIR R4 DiagnosticReport (POST).",
    )
    webhook_secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="Signs each POST: X-Skylight-Signature is sha256=HMAC-SHA256(secret, body) in hex.",
    )
    fhir_enabled = models.BooleanField(default=True, verbose_name="Send FHIR DiagnosticReport")
    hl7_enabled = models.BooleanField(default=True, verbose_name="Build HL7 v2 ORU^R01")
    mllp_host = models.CharField(
        max_length=255,
        blank=True,
        verbose_name="MLLP host",
        help_text="The interface engine taking ORU^R01 messages.",
    )
    mllp_port = models.PositiveIntegerField(null=True, blank=True, verbose_name="MLLP port")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "delivery settings"
        verbose_name_plural = "delivery settings"

    def __str__(self) -> str:
        return f"delivery settings of {self.tenant_id}"

    def letterhead_name(self) -> str:
        return self.hospital_name or self.tenant.name

    def address_lines(self) -> list[str]:
        return [line.strip() for line in self.address.splitlines() if line.strip()][:4]


class Channel(models.TextChoices):
    PDF = "pdf", "PDF"
    DICOM = "dicom", "DICOM in the study"
    PACS = "pacs", "C-STORE to the PACS"
    FHIR = "fhir", "FHIR webhook"
    HL7 = "hl7", "HL7 v2 ORU^R01"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class Delivery(models.Model):
    """One channel of one signed version. ``last_error`` names what went wrong and what to do,
    never patient data: it is shown to admins and kept."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(
        "reports.ReportVersion", on_delete=models.PROTECT, related_name="deliveries"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(
        max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    # The receiver's key for recognising a resend (the webhook's Idempotency-Key header).
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # While a worker is sending, nobody else may; a worker that died frees it when this passes.
    lease_until = models.DateTimeField(null=True, blank=True)
    artefact_key = models.CharField(max_length=200, blank=True)  # object storage key
    artefact_uid = models.CharField(max_length=64, blank=True)  # SOP Instance UID, message id
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version", "id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["version", "channel"], name="delivery_unique_channel")
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="delivery_tenant_status")]

    def __str__(self) -> str:
        return f"{self.channel} of version {self.version_id}"
