"""JSON shapes of the worklist API (worklists/api.py). Identifiers and codes only in errors."""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.models import Tenant, User

from . import queries
from .models import Licence, Prior, Privilege, WorkItem

MODALITY_CODE = re.compile(r"^[A-Z0-9_]{2,16}$")  # DICOM CS, as modality codes are written
SUBSPECIALTY_CODE = re.compile(r"^[a-z0-9_-]{1,32}$")


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class PersonSerializer(serializers.Serializer):
    username = serializers.CharField()
    display_name = serializers.CharField()


class TenantRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class PriorityRefSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    sla_minutes = serializers.IntegerField()


def person(user: User | None) -> dict[str, str] | None:
    if user is None:
        return None
    return {"username": user.get_username(), "display_name": str(user)}


def _now(context: dict[str, Any]) -> datetime:
    now = context.get("now")
    return now if isinstance(now, datetime) else timezone.now()


class WorkItemSerializer(serializers.Serializer):
    """One item as a list row. Reads only the relations ``queries.worklist`` selects (and study)."""

    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    tenant = TenantRefSerializer()
    accession_number = serializers.CharField()
    patient_name = serializers.CharField()
    patient_id = serializers.CharField(source="patient_identifier")
    study_instance_uid = serializers.CharField(source="study.study_instance_uid")
    study_description = serializers.CharField()
    modality = serializers.CharField()
    modalities = serializers.SerializerMethodField()
    body_part = serializers.CharField()
    subspecialty = serializers.CharField()
    clinical_question = serializers.CharField()
    priority = PriorityRefSerializer()
    arrived_at = serializers.DateTimeField()
    sla_due_at = serializers.DateTimeField()
    sla_remaining_seconds = serializers.SerializerMethodField()
    sla_status = serializers.SerializerMethodField()
    sla_paused_at = serializers.DateTimeField(allow_null=True)
    sla_pause_reason = serializers.CharField()
    state = serializers.CharField()
    reading_state = serializers.CharField()
    holder = serializers.SerializerMethodField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    assigned_to = serializers.SerializerMethodField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField()

    def get_url(self, item: WorkItem) -> str:
        # The page of worklists/views.py; its URL is part of the contract, not reversed.
        return f"/worklist/items/{item.pk}/"

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_modalities(self, item: WorkItem) -> list[str]:
        return [m for m in item.modalities.split("\\") if m]

    @extend_schema_field(serializers.IntegerField())
    def get_sla_remaining_seconds(self, item: WorkItem) -> int:
        return int(item.sla_remaining(_now(self.context)).total_seconds())

    @extend_schema_field(
        serializers.ChoiceField(choices=["ok", "warning", "overdue", "paused", "done"])
    )
    def get_sla_status(self, item: WorkItem) -> str:
        return queries.sla_status(item, _now(self.context))

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_holder(self, item: WorkItem) -> dict[str, str] | None:
        # A lapsed lease holds nothing, even before the housekeeping tidies the row.
        return person(item.holder) if item.lease_is_live(_now(self.context)) else None

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_assigned_to(self, item: WorkItem) -> dict[str, str] | None:
        return person(item.assigned_to)


class PriorSerializer(serializers.Serializer):
    study_instance_uid = serializers.CharField(source="study.study_instance_uid")
    study_date = serializers.DateField(source="study.study_date", allow_null=True)
    study_description = serializers.CharField(source="study.study_description")
    modalities = serializers.ListField(source="study.modalities", child=serializers.CharField())
    rank = serializers.IntegerField()
    warmed = serializers.SerializerMethodField()
    reports = serializers.SerializerMethodField()

    def get_warmed(self, prior: Prior) -> bool:
        return prior.warmed_at is not None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_reports(self, prior: Prior) -> list[dict[str, Any]]:
        return []  # filled by the reports issue


class ReaderSerializer(serializers.Serializer):
    username = serializers.CharField()
    display_name = serializers.CharField()
    via = serializers.CharField()
    can_read = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


class WorkItemDetailSerializer(WorkItemSerializer):
    """For the schema: the item, its priors, and for managers who can read it."""

    priors = PriorSerializer(many=True)
    can_manage = serializers.BooleanField()
    readers = ReaderSerializer(many=True, required=False)


class ClaimedSerializer(WorkItemSerializer):
    lease_token = serializers.UUIDField()


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    holder = PersonSerializer(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)


class LeaseSerializer(serializers.Serializer):
    lease_token = serializers.CharField(max_length=64)


class LeaseExpirySerializer(serializers.Serializer):
    lease_expires_at = serializers.DateTimeField()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ReassignSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=150)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PriorityChangeSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=32)
    clinical_question = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True, default=None
    )


# ---------------------------------------------------------------------------------------------
# Saved views and metrics
# ---------------------------------------------------------------------------------------------


class SavedViewSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=80)
    filters = serializers.DictField(required=False, default=dict)
    group = serializers.SlugField(required=False, allow_null=True, default=None)
    owner = serializers.CharField(read_only=True, allow_null=True)
    can_delete = serializers.BooleanField(read_only=True)


class ViewCountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    count = serializers.IntegerField(allow_null=True)


class DurationStatsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    mean_minutes = serializers.FloatField(allow_null=True)
    median_minutes = serializers.FloatField(allow_null=True)


class TurnaroundRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    preliminary = DurationStatsSerializer()
    final = DurationStatsSerializer()


class MetricsSerializer(serializers.Serializer):
    by_tenant = TurnaroundRowSerializer(many=True)
    by_priority = TurnaroundRowSerializer(many=True)
    by_radiologist = TurnaroundRowSerializer(many=True)


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


class _CredentialSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.all())
    can_edit = serializers.SerializerMethodField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only people the caller may manage resolve; anyone else reads as "does not exist".
        users = self.context.get("users")
        if users is not None:
            self.fields["user"].queryset = users

    def get_can_edit(self, obj: Any) -> bool:
        return obj.pk in self.context.get("manageable_ids", set())

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Model.clean() rules (dates, at least one modality) on the merged result.
        from django.core.exceptions import ValidationError as DjangoValidationError

        # A copy: a refused change must not linger on the instance the view compares against.
        instance = copy.copy(self.instance) if self.instance else self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean(exclude=["user", "tenant", "granted_by"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class LicenceSerializer(_CredentialSerializer):
    class Meta:
        model = Licence
        fields = ["id", "user", "jurisdiction", "number", "valid_from", "valid_to", "can_edit"]


class PrivilegeSerializer(_CredentialSerializer):
    tenant = serializers.SlugRelatedField(
        slug_field="slug", queryset=Tenant.objects.filter(is_active=True)
    )
    modalities = serializers.ListField(child=serializers.CharField(max_length=16))
    subspecialties = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list
    )
    granted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Privilege
        fields = [
            "id",
            "user",
            "tenant",
            "modalities",
            "subspecialties",
            "valid_from",
            "valid_to",
            "granted_by",
            "can_edit",
        ]

    def validate_modalities(self, value: list[str]) -> list[str]:
        codes = sorted({v.strip().upper() for v in value if v.strip()})
        bad = [c for c in codes if not MODALITY_CODE.match(c)]
        if bad:
            raise serializers.ValidationError(
                f"Not a modality code: {', '.join(bad)} (e.g. CT, MR)."
            )
        return codes

    def validate_subspecialties(self, value: list[str]) -> list[str]:
        codes = sorted({v.strip().lower() for v in value if v.strip()})
        bad = [c for c in codes if not SUBSPECIALTY_CODE.match(c)]
        if bad:
            raise serializers.ValidationError(
                f"Not a subspecialty code: {', '.join(bad)} (e.g. neuro)."
            )
        return codes
