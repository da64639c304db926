"""The audit log API, under /api/audit/: events (JSON, paginated), exports, patients accessed.

For a hospital's admins only. ``tenant`` names the hospital by slug; it may be left out by an
admin of exactly one. A hospital the caller does not administer is 404, like any other tenant's
object; a caller who administers none is 403. Reading and exporting are audited.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import audit
from tenants.models import AuditAction, AuditEvent, Outcome, Tenant
from worklists.serializers import DetailSerializer

from . import exports, queries, services


class AuditEventSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="actor_user.username", default="", read_only=True)
    token = serializers.CharField(source="actor_token.prefix", default="", read_only=True)
    patient_id = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id", "occurred_at", "seq", "action", "outcome", "actor_type", "user", "token",
            "actor_ae_title", "source_address", "patient_id", "study_instance_uid",
            "series_instance_uid", "sop_instance_uid", "request_id", "detail", "prev_hash",
            "hash",
        ]  # fmt: skip

    def get_patient_id(self, event: AuditEvent) -> str:
        return str(self.context.get("patients", {}).get(event.id, ""))


class AccessedPatientSerializer(serializers.Serializer):
    patient_id = serializers.CharField()
    issuer_of_patient_id = serializers.CharField()
    patient_name = serializers.CharField()


TENANT = OpenApiParameter(
    "tenant", str, description="Hospital slug (optional if you administer one)."
)
FILTERS = [
    TENANT,
    OpenApiParameter("since", str, description="ISO date or date-time, inclusive."),
    OpenApiParameter("until", str, description="ISO date (whole day included) or date-time."),
    OpenApiParameter("user", str, description="Username of the actor."),
    OpenApiParameter("token", str, description="API token prefix of the actor."),
    OpenApiParameter("action", str, enum=list(AuditAction.values)),
    OpenApiParameter("outcome", str, enum=list(Outcome.values)),
    OpenApiParameter("patient_id", str, description="DICOM Patient ID."),
    OpenApiParameter("study_uid", str, description="Study Instance UID."),
]
ERRORS = {
    400: OpenApiResponse(DetailSerializer, description="A filter value that cannot be used."),
    403: OpenApiResponse(DetailSerializer, description="You administer no hospital."),
    404: OpenApiResponse(DetailSerializer, description="No such hospital (or not yours)."),
}


class AuditAPIView(APIView):
    def actor(self) -> audit.Actor:
        return audit.Actor.for_user(
            self.request.user,
            token=getattr(self.request, "auth", None),
            address=self.request.META.get("REMOTE_ADDR"),
        )

    def tenant(self) -> Tenant:
        try:
            return services.tenant_for(
                self.request.user, self.request.query_params.get("tenant", "")
            )
        except services.NotAnAdmin as exc:
            raise PermissionDenied(str(exc)) from None
        except Http404:
            raise NotFound("No such hospital.") from None

    def filters(self) -> queries.Filters:
        return queries.Filters.parse(self.request.query_params)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, (queries.FilterError, services.TooMany)):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class EventList(AuditAPIView):
    @extend_schema(
        summary="A hospital's audit events, newest first",
        parameters=FILTERS,
        responses={200: AuditEventSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        tenant = self.tenant()
        rows = services.read(
            tenant, self.filters(), self.actor(), page=request.query_params.get("offset", "0")
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        patients = {r.event.id: r.patient_id for r in exports.with_patients(tenant, page)}
        data = AuditEventSerializer(page, many=True, context={"patients": patients}).data
        return paginator.get_paginated_response(data)


class Export(AuditAPIView):
    @extend_schema(
        summary="Export a hospital's audit events: csv, dicom (PS3.15 audit XML) or fhir (R4 Bundle)",
        parameters=[
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(services.FORMATS)),
            *FILTERS,
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/xml"): OpenApiTypes.STR,
            (200, "application/fhir+json"): OpenApiTypes.OBJECT,
            **ERRORS,
        },
    )
    def get(self, request: Request, fmt: str) -> HttpResponse:
        if fmt not in services.FORMATS:
            raise NotFound("Export as csv, dicom or fhir.")
        result = services.export(self.tenant(), self.filters(), fmt, self.actor())
        response = HttpResponse(result.content, content_type=result.content_type)
        response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
        response["Cache-Control"] = "no-store"
        return response


class PatientsAccessed(AuditAPIView):
    @extend_schema(
        summary="Which patients did a user or a token access between two times",
        parameters=[
            TENANT,
            OpenApiParameter("user", str, description="Username (user or token is required)."),
            OpenApiParameter("token", str, description="API token prefix."),
            OpenApiParameter("since", str),
            OpenApiParameter("until", str),
        ],
        responses={200: AccessedPatientSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        tenant = self.tenant()
        filters = self.filters()
        if not (filters.user or filters.token):
            raise queries.FilterError("Name a user (user=…) or a token (token=…).")
        patients: list[dict[str, Any]] = services.patients_accessed(tenant, filters, self.actor())
        return Response(AccessedPatientSerializer(patients, many=True).data)
