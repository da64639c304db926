"""Delivery API under /api/reports/delivery/: statuses, retry, the FHIR resource, the HL7 message.

Every object is reached through ``queries`` (404 for another hospital's, or a missing one), and
every read of a report's content is audited as an export.
"""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import audit
from tenants.models import User
from worklists.api import DetailErrors
from worklists.serializers import DetailSerializer

from . import fhir, hl7, queries, services
from .content import document
from .models import Delivery

NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such report (or not yours).")


class DeliverySerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)
    channel_display = serializers.CharField(source="get_channel_display", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "version",
            "channel",
            "channel_display",
            "status",
            "attempts",
            "last_error",
            "artefact_uid",
            "created_at",
            "updated_at",
            "sent_at",
        ]
        read_only_fields = fields


class FhirJSONRenderer(JSONRenderer):
    media_type = fhir.FHIR_JSON
    format = "fhir"


class HL7Renderer(BaseRenderer):
    media_type = "x-application/hl7-v2+er7"
    format = "hl7"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        if isinstance(data, str):
            return data.encode("utf-8")
        return JSONRenderer().render(data)  # an error: {"detail": ...}


class DeliveryAPIView(DetailErrors, APIView):
    def actor(self) -> audit.Actor:
        return audit.Actor.for_user(
            cast(User, self.request.user),
            token=getattr(self.request, "auth", None),
            address=self.request.META.get("REMOTE_ADDR"),
        )

    @property
    def me(self) -> User:
        return cast(User, self.request.user)


class VersionDeliveries(DeliveryAPIView):
    @extend_schema(
        summary="Delivery status of a signed version, per channel",
        responses={200: DeliverySerializer(many=True), 404: NOT_FOUND},
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = queries.signed_version(self.me, version_id)
        rows = Delivery.objects.filter(version=version).select_related("version").order_by("id")
        return Response(DeliverySerializer(rows, many=True).data)


class DeliveryRetry(DeliveryAPIView):
    @extend_schema(
        summary="Retry a failed delivery now (the report's author or signer, or an admin)",
        request=None,
        responses={
            202: DeliverySerializer,
            403: OpenApiResponse(DetailSerializer, description="Not yours to retry."),
            404: NOT_FOUND,
            409: OpenApiResponse(DetailSerializer, description="Not failed."),
        },
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        row = services.retry(delivery_id=delivery_id, user=self.me, actor=self.actor())
        return Response(DeliverySerializer(row).data, status=202)


class DiagnosticReportView(DeliveryAPIView):
    renderer_classes = [FhirJSONRenderer, JSONRenderer]

    @extend_schema(
        summary="The report as a FHIR R4 DiagnosticReport (its newest signed version)",
        responses={(200, fhir.FHIR_JSON): OpenApiTypes.OBJECT, 404: NOT_FOUND},
    )
    def get(self, request: Request, report_id: int, number: int | None = None) -> Response:
        version = queries.current_version(self.me, report_id, number)
        doc = document(version)
        pdf, _ = services.pdf_bytes(doc, services.settings_for(version.tenant_id))
        queries.record_export(version, self.actor(), "fhir")
        response = Response(fhir.diagnostic_report(doc, pdf))
        response["Cache-Control"] = "private, no-store"
        return response


class DiagnosticReportVersionView(DiagnosticReportView):
    @extend_schema(
        summary="One version of the report as a FHIR R4 DiagnosticReport (vread)",
        responses={(200, fhir.FHIR_JSON): OpenApiTypes.OBJECT, 404: NOT_FOUND},
    )
    def get(self, request: Request, report_id: int, number: int | None = None) -> Response:
        return super().get(request, report_id, number)


class HL7MessageView(DeliveryAPIView):
    renderer_classes = [HL7Renderer, JSONRenderer]

    @extend_schema(
        summary="The HL7 v2.5.1 ORU^R01 message of a signed version",
        responses={(200, HL7Renderer.media_type): OpenApiTypes.STR, 404: NOT_FOUND},
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = queries.signed_version(self.me, version_id)
        message = hl7.oru_r01(document(version))
        queries.record_export(version, self.actor(), "hl7")
        response = Response(message)
        response["Cache-Control"] = "private, no-store"
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Errors are JSON ({"detail": ...}) whatever the client asked for.
        if getattr(response, "status_code", 200) >= 400 and isinstance(response, Response):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)
