"""The reports REST API: /api/reports/… Each feature mounts its own endpoints."""

from django.urls import include, path

app_name = "reports-api"

urlpatterns = [
    path("review/", include(("reports.review.api_urls", "review"))),
    path("templates/", include(("reports.templating.api_urls", "templating"))),
    path("delivery/", include(("reports.delivery.api_urls", "delivery"))),
    path("collab/", include(("reports.collab.api_urls", "collab"))),
    path("critical/", include(("reports.critical.api_urls", "critical"))),
    path("evidence/", include(("reports.evidence.api_urls", "evidence"))),
]
