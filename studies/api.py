"""REST API (DRF) over the index. Every view is tenant-scoped through one base class."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import audit
from tenants.models import AuditAction, Membership, ReadingAgreement, Tenant
from tenants.queries import get_readable_tenant, is_tenant_admin

from .models import Receipt, Series, Study
from .queries import get_study_for, receipts_of, studies_of


class TenantScopedView(generics.GenericAPIView):
    """Resolves ``tenant_slug`` to a tenant the caller may read (404 otherwise) and scopes every
    query to it. Subclasses implement ``scoped_queryset(tenant)`` and may not override
    ``get_queryset``, so no view can forget the tenant filter."""

    tenant: Tenant

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must implement scoped_queryset(tenant), not get_queryset()"
            )

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        try:
            self.tenant = get_readable_tenant(request.user, kwargs["tenant_slug"])
        except Http404:
            raise NotFound("No such tenant.") from None

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        return self.scoped_queryset(self.tenant)

    def actor(self) -> audit.Actor:
        return audit.Actor.for_user(
            self.request.user,
            token=getattr(self.request, "auth", None),
            address=self.request.META.get("REMOTE_ADDR"),
        )


class SeriesSerializer(serializers.ModelSerializer):
    class Meta:
        model = Series
        fields = [
            "series_instance_uid",
            "modality",
            "series_number",
            "series_description",
            "body_part_examined",
            "number_of_series_related_instances",
            "total_size",
        ]


class StudySerializer(serializers.ModelSerializer):
    patient_id = serializers.CharField(source="patient.patient_id")
    patient_name = serializers.CharField(source="patient.patient_name")
    patient_birth_date = serializers.DateField(source="patient.patient_birth_date")
    modalities_in_study = serializers.ListField(source="modalities", child=serializers.CharField())

    class Meta:
        model = Study
        fields = [
            "study_instance_uid",
            "patient_id",
            "patient_name",
            "patient_birth_date",
            "study_date",
            "study_time",
            "accession_number",
            "study_description",
            "referring_physician_name",
            "modalities_in_study",
            "number_of_study_related_series",
            "number_of_study_related_instances",
            "total_size",
            "state",
            "state_changed_at",
            "first_ready_at",
            "last_instance_at",
        ]


class StudyDetailSerializer(StudySerializer):
    series = SeriesSerializer(many=True, read_only=True)

    class Meta(StudySerializer.Meta):
        fields = [*StudySerializer.Meta.fields, "series"]


@extend_schema(
    parameters=[
        OpenApiParameter("state", str, description="receiving or ready"),
        OpenApiParameter("patient_id", str),
        OpenApiParameter("accession_number", str),
    ]
)
class StudyList(TenantScopedView, generics.ListAPIView):
    """Studies of one tenant, newest first."""

    serializer_class = StudySerializer

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Study]:
        qs = studies_of(tenant).order_by("-last_instance_at", "-id")
        params = self.request.query_params
        if params.get("state"):
            qs = qs.filter(state=params["state"])
        if params.get("patient_id"):
            qs = qs.filter(patient__patient_id=params["patient_id"])
        if params.get("accession_number"):
            qs = qs.filter(accession_number=params["accession_number"])
        return qs

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        results = (
            response.data.get("results", []) if isinstance(response.data, dict) else response.data
        )
        audit.record(
            action=AuditAction.STUDY_LIST,
            actor=self.actor(),
            tenant=self.tenant,
            detail={
                "count": len(results),
                "query": {k: v for k, v in request.query_params.items() if k != "token"},
            },
        )
        return response


class StudyDetail(TenantScopedView, generics.RetrieveAPIView):
    """One study with its series. Another tenant's study is 404, like a missing one."""

    serializer_class = StudyDetailSerializer
    lookup_field = "study_instance_uid"
    lookup_url_kwarg = "study_uid"

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Study]:
        return studies_of(tenant).prefetch_related("series")

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            study = get_study_for(self.tenant, kwargs["study_uid"])
        except Http404:
            raise NotFound("No such study.") from None
        study = self.get_queryset().get(pk=study.pk)
        audit.record(
            action=AuditAction.STUDY_VIEW,
            actor=self.actor(),
            tenant=self.tenant,
            study_instance_uid=study.study_instance_uid,
            patient_ref=study.patient_id,
        )
        return Response(self.get_serializer(study).data)


class ReceiptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Receipt
        fields = [
            "id",
            "source",
            "status",
            "problem",
            "size",
            "received_at",
            "processed_at",
            "attempts",
            "calling_ae_title",
            "called_ae_title",
            "sop_class_uid",
            "sop_instance_uid",
            "transfer_syntax_uid",
        ]


@extend_schema(
    parameters=[
        OpenApiParameter(
            "status", str, description="pending, indexed, duplicate, superseded, unreadable"
        )
    ]
)
class ReceiptList(TenantScopedView, generics.ListAPIView):
    """What arrived and what became of it: the ingest report for the hospital's admins."""

    serializer_class = ReceiptSerializer

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not is_tenant_admin(request.user, self.tenant):
            # The caller can see this tenant's studies, so its existence is no secret.
            from rest_framework.exceptions import PermissionDenied

            raise PermissionDenied("Only the hospital's admins see the ingest report.")

    def scoped_queryset(self, tenant: Tenant) -> QuerySet[Receipt]:
        qs = receipts_of(tenant).order_by("-id")
        if self.request.query_params.get("status"):
            qs = qs.filter(status=self.request.query_params["status"])
        return qs


class MeView(APIView):
    """Who I am, and where I belong."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        user = request.user
        memberships = Membership.objects.filter(user=user).select_related("tenant", "group")
        groups = [m.group_id for m in memberships if m.group_id]
        agreements = ReadingAgreement.objects.filter(
            group_id__in=groups, is_active=True
        ).select_related("tenant", "group")
        return Response(
            {
                "username": user.get_username(),
                "memberships": [
                    {
                        "role": m.role,
                        "tenant": m.tenant.slug if m.tenant else None,
                        "group": m.group.slug if m.group else None,
                    }
                    for m in memberships
                ],
                "reads_for": sorted({a.tenant.slug for a in agreements}),
            }
        )
