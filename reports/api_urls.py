"""The reports REST API: /api/reports/… A work item's report at the top; each feature mounts
its own endpoints."""

from django.urls import include, path

from . import api

app_name = "reports-api"

urlpatterns = [
    path("items/<int:item_id>/", api.ItemReport.as_view(), name="item"),
    path("items/<int:item_id>/draft/", api.ItemDraft.as_view(), name="draft"),
    path("items/<int:item_id>/sign/", api.ItemSign.as_view(), name="sign"),
    path("items/<int:item_id>/finalise/", api.ItemFinalise.as_view(), name="finalise"),
    path("items/<int:item_id>/changes/", api.ItemChange.as_view(), name="change"),
    path("items/<int:item_id>/revise/", api.ItemRevise.as_view(), name="revise"),
    path("items/<int:item_id>/review/", api.ItemReview.as_view(), name="review"),
    path("review/", include(("reports.review.api_urls", "review"))),
    path("templates/", include(("reports.templating.api_urls", "templating"))),
    path("delivery/", include(("reports.delivery.api_urls", "delivery"))),
    path("collab/", include(("reports.collab.api_urls", "collab"))),
    path("critical/", include(("reports.critical.api_urls", "critical"))),
    path("evidence/", include(("reports.evidence.api_urls", "evidence"))),
]
