"""Delivery API, mounted at /api/reports/delivery/ (namespace reports-api:delivery)."""

from django.urls import path

from . import api

urlpatterns = [
    path(
        "versions/<int:version_id>/deliveries",
        api.VersionDeliveries.as_view(),
        name="version-deliveries",
    ),
    path("versions/<int:version_id>/hl7", api.HL7MessageView.as_view(), name="hl7"),
    path("deliveries/<int:delivery_id>/retry", api.DeliveryRetry.as_view(), name="retry"),
    path(
        "fhir/DiagnosticReport/<int:report_id>",
        api.DiagnosticReportView.as_view(),
        name="fhir",
    ),
    path(
        "fhir/DiagnosticReport/<int:report_id>/_history/<int:number>",
        api.DiagnosticReportVersionView.as_view(),
        name="fhir-version",
    ),
]
