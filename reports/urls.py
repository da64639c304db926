"""Report pages: /reports/… The results at the top; each feature mounts its own pages under its
own prefix."""

from django.urls import include, path

from . import views

app_name = "reports"

urlpatterns = [
    path("results/", views.results, name="results"),
    path("results/<int:report_id>/", views.result, name="result"),
    path(
        "results/critical/<int:critical_id>/acknowledge/",
        views.acknowledge_critical,
        name="acknowledge-critical",
    ),
    path("review/", include(("reports.review.urls", "review"))),
    path("templates/", include(("reports.templating.urls", "templating"))),
    path("delivery/", include(("reports.delivery.urls", "delivery"))),
    path("collab/", include(("reports.collab.urls", "collab"))),
    path("critical/", include(("reports.critical.urls", "critical"))),
    path("evidence/", include(("reports.evidence.urls", "evidence"))),
]
