from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from tenants.views import LoginView

urlpatterns = [
    path("", include("tenants.urls")),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("studies.api_urls")),
    path("api/worklist/", include("worklists.api_urls")),
    path("api/reports/", include("reports.api_urls")),
    path("api/audit/", include("tenants.auditlog.api_urls")),
    path("worklist/", include("worklists.urls")),
    path("reports/", include("reports.urls")),
    path("audit/", include("tenants.auditlog.urls")),
    path("viewer/", include("viewer.urls")),
    path("s/", include("studies.sharing.urls")),
    # Onboarding and administration (issue 8). Each includes full paths from the root:
    # /platform/… and /invite/… and /t/<slug>/setup/ (onboarding), /t/<slug>/setup/dicom/…
    # (dicomconfig), /g/<group>/… (groupadmin), retention and de-identification settings,
    # /t/<slug>/usage/, /platform/usage/ and /metrics (usage).
    path("", include("tenants.onboarding.urls")),
    path("", include("tenants.dicomconfig.urls")),
    path("", include("worklists.groupadmin.urls")),
    path("", include("studies.retention.urls")),
    path("", include("studies.deid.urls")),
    path("", include("tenants.usage.urls")),
    path("t/<slug:tenant_slug>/dicomweb/", include("studies.dicomweb.urls")),
]
