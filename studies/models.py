"""The imaging index: receipts of stored objects, and the Patient/Study/Series/Instance hierarchy.

Every row carries its tenant, and every index and unique constraint leads with it: two hospitals
may send the same UIDs and get two independent objects.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import ApiToken, Tenant, User


class ReceiptSource(models.TextChoices):
    DIMSE = "dimse", "C-STORE"
    STOW = "stow", "STOW-RS"
    INTERNAL = "internal", "Skylight"


class ReceiptStatus(models.TextChoices):
    PENDING = "pending", "Waiting for indexing"
    INDEXED = "indexed", "Indexed"
    DUPLICATE = "duplicate", "Identical copy of an indexed instance"
    SUPERSEDED = "superseded", "Replaced by a newer copy"
    UNREADABLE = "unreadable", "Kept, but could not be read as DICOM"


class Receipt(models.Model):
    """One object received and durably stored, before anything else happens to it.

    The row is committed only after the bytes are in object storage, and the sender is answered
    only after the row is committed. Indexing then works from here; a receipt left ``pending`` is
    picked up again by the reconciler, so nothing acknowledged is ever lost.
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    object_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    storage_key = models.CharField(max_length=200)
    size = models.BigIntegerField()
    # SHA-256 of the stored object, and of its data set alone (what follows the File Meta). Two
    # copies of an instance are "identical" when their data sets are, whoever framed them.
    sha256 = models.CharField(max_length=64)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, choices=ReceiptSource.choices)
    received_at = models.DateTimeField(default=timezone.now)
    # What the sender declared (C-STORE command, or the part's own header for STOW-RS).
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    calling_ae_title = models.CharField(max_length=16, blank=True)
    called_ae_title = models.CharField(max_length=16, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ReceiptStatus.choices, default=ReceiptStatus.PENDING
    )
    # A short reason code and message for unreadable objects; never patient data.
    problem = models.CharField(max_length=300, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the reconciler last queued it again (the first queueing happens at receipt).
    requeued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The object's first bytes (its header, mostly), kept from receipt until indexing so that the
    # indexer reads nothing from object storage; cleared once the receipt is processed.
    head = models.BinaryField(null=True, blank=True, editable=False)
    # Duplicate and superseded copies are deleted from storage after the index commits; this
    # records that the deletion happened, so the reconciler can finish it after a crash.
    object_deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "status", "received_at"], name="receipt_tenant_status_time"
            ),
            models.Index(
                fields=["received_at"], name="receipt_pending_time", condition=Q(status="pending")
            ),
            models.Index(fields=["tenant", "sop_instance_uid"], name="receipt_tenant_sop"),
        ]

    def __str__(self) -> str:
        return f"receipt {self.pk} ({self.status})"


class Patient(models.Model):
    """A patient as a tenant knows them: Patient ID and Issuer of Patient ID within that tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    patient_id = models.CharField(max_length=64, blank=True)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    # Upper-case, accent-free copy of the name for fuzzy matching.
    patient_name_search = models.CharField(max_length=324, blank=True)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "patient_id", "issuer_of_patient_id"],
                name="patient_unique_tenant_id",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "patient_name_search"], name="patient_tenant_name")
        ]

    def __str__(self) -> str:
        return f"patient {self.pk}"


class StudyState(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    READY = "ready", "Ready to read"


class Study(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    issuer_of_accession_number = models.CharField(max_length=64, blank=True)
    study_id = models.CharField(max_length=16, blank=True)
    study_description = models.CharField(max_length=64, blank=True)
    referring_physician_name = models.CharField(max_length=324, blank=True)
    referring_physician_name_search = models.CharField(max_length=324, blank=True)
    # "\CT\MR\": backslash-delimited with delimiters at both ends, so one modality is matched with
    # a plain substring search for "\CT\".
    modalities_in_study = models.CharField(max_length=200, blank=True)
    body_parts_examined = models.CharField(max_length=200, blank=True)
    number_of_study_related_series = models.PositiveIntegerField(default=0)
    number_of_study_related_instances = models.PositiveIntegerField(default=0)
    total_size = models.BigIntegerField(default=0)
    state = models.CharField(
        max_length=16, choices=StudyState.choices, default=StudyState.RECEIVING
    )
    state_changed_at = models.DateTimeField(default=timezone.now)
    first_ready_at = models.DateTimeField(null=True, blank=True)
    first_received_at = models.DateTimeField(default=timezone.now)
    last_instance_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "study_instance_uid"], name="study_unique_tenant_uid"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "study_date"], name="study_tenant_date"),
            # The order of every study search (studies/query): with a limit, the planner walks
            # this and stops at the limit instead of sorting every match.
            models.Index(
                fields=["tenant", "-study_date", "-study_time", "-id"], name="study_tenant_order"
            ),
            models.Index(fields=["tenant", "accession_number"], name="study_tenant_accession"),
            models.Index(fields=["tenant", "patient"], name="study_tenant_patient"),
            models.Index(fields=["tenant", "-last_instance_at"], name="study_tenant_recent"),
            models.Index(
                fields=["tenant", "last_instance_at"],
                name="study_receiving",
                condition=Q(state="receiving"),
            ),
        ]

    def __str__(self) -> str:
        return f"study {self.pk}"

    @property
    def modalities(self) -> list[str]:
        return [m for m in self.modalities_in_study.split("\\") if m]


class Series(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=64, blank=True)
    body_part_examined = models.CharField(max_length=64, blank=True)
    series_date = models.DateField(null=True, blank=True)
    series_time = models.TimeField(null=True, blank=True)
    protocol_name = models.CharField(max_length=64, blank=True)
    manufacturer = models.CharField(max_length=64, blank=True)
    station_name = models.CharField(max_length=16, blank=True)
    institution_name = models.CharField(max_length=64, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)
    performed_procedure_step_start_date = models.DateField(null=True, blank=True)
    performed_procedure_step_start_time = models.TimeField(null=True, blank=True)
    number_of_series_related_instances = models.PositiveIntegerField(default=0)
    total_size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "study", "series_instance_uid"],
                name="series_unique_tenant_study_uid",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "series_instance_uid"], name="series_tenant_uid"),
            models.Index(fields=["tenant", "modality"], name="series_tenant_modality"),
        ]

    def __str__(self) -> str:
        return f"series {self.pk}"


class Instance(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    receipt = models.OneToOneField(Receipt, on_delete=models.PROTECT, related_name="instance")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    storage_key = models.CharField(max_length=200)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    content_date = models.DateField(null=True, blank=True)
    content_time = models.TimeField(null=True, blank=True)
    acquisition_number = models.IntegerField(null=True, blank=True)
    image_type = models.CharField(max_length=200, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(null=True, blank=True)
    samples_per_pixel = models.PositiveSmallIntegerField(null=True, blank=True)
    photometric_interpretation = models.CharField(max_length=16, blank=True)
    bits_allocated = models.PositiveSmallIntegerField(null=True, blank=True)
    bits_stored = models.PositiveSmallIntegerField(null=True, blank=True)
    pixel_representation = models.PositiveSmallIntegerField(null=True, blank=True)
    # Multi-valued decimal attributes keep their DICOM string form ("0.5\0.5").
    pixel_spacing = models.CharField(max_length=64, blank=True)
    slice_thickness = models.FloatField(null=True, blank=True)
    slice_location = models.FloatField(null=True, blank=True)
    image_position_patient = models.CharField(max_length=100, blank=True)
    image_orientation_patient = models.CharField(max_length=200, blank=True)
    window_center = models.CharField(max_length=64, blank=True)
    window_width = models.CharField(max_length=64, blank=True)
    rescale_intercept = models.FloatField(null=True, blank=True)
    rescale_slope = models.FloatField(null=True, blank=True)
    has_pixel_data = models.BooleanField(default=False)
    # Where the Pixel Data value starts in the stored object and its length field (0xFFFFFFFF when
    # encapsulated): a native frame is then one ranged read (studies/imaging/frames.py).
    pixel_data_offset = models.BigIntegerField(null=True, blank=True)
    pixel_data_length = models.BigIntegerField(null=True, blank=True)
    # Problems met while reading an odd but usable file (codes only).
    warnings = models.JSONField(default=list, blank=True)
    indexed_at = models.DateTimeField(default=timezone.now)
    # Viewer-ready frames made on the derive queue (studies/imaging/ready.py): every frame
    # compressed losslessly in ``ready_syntax``, concatenated in the object ``ready_key``; frame N
    # is bytes ``ready_offsets[N-1]:ready_offsets[N]``. They are current only while
    # ``ready_sha256`` equals ``sha256``: a resend that replaces the stored object makes them stale.
    ready_syntax = models.CharField(max_length=64, blank=True)
    ready_key = models.CharField(max_length=200, blank=True)
    ready_sha256 = models.CharField(max_length=64, blank=True)
    ready_offsets = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sop_instance_uid"], name="instance_unique_tenant_uid"
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "series", "instance_number"], name="instance_tenant_series_num"
            ),
            models.Index(fields=["tenant", "study"], name="instance_tenant_study"),
        ]

    def __str__(self) -> str:
        return f"instance {self.pk}"


class SeriesDerived(models.Model):
    """Derived data of a series kept in object storage: its metadata document and thumbnail.

    ``generation`` counts index changes to the series (bumped in the indexing transaction);
    a build records the generation it read, so the stored document is current exactly when
    ``built_generation == generation`` and it covers the series' instance count. ``dirty_since``
    is set while a rebuild is scheduled: further changes do not schedule another one.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    series = models.OneToOneField(Series, on_delete=models.CASCADE, related_name="derived")
    generation = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)
    dirty_since = models.DateTimeField(null=True, blank=True)
    built_generation = models.PositiveBigIntegerField(null=True, blank=True)
    built_instance_count = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)
    metadata_key = models.CharField(max_length=200, blank=True)
    metadata_etag = models.CharField(max_length=64, blank=True)
    thumbnail_key = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "dirty_since"],
                name="derived_tenant_dirty",
                condition=Q(dirty_since__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"derived data of series {self.series_id}"

    def is_current(self, instance_count: int) -> bool:
        return (
            bool(self.metadata_key)
            and self.built_generation == self.generation
            and self.built_instance_count == instance_count
        )


# Share links live in their own package (studies/sharing/); their models are this app's.
from .retention.models import *  # noqa: E402, F403
from .sharing.models import *  # noqa: E402, F403
