"""REST API of critical results (reports/critical/api.py), under /api/reports/critical/."""

from django.urls import URLPattern, path

from . import api

urlpatterns: list[URLPattern] = [
    path("open/", api.OpenCriticals.as_view(), name="open"),
    path("items/<int:item_id>/", api.ItemCriticals.as_view(), name="item"),
    path("<int:critical_id>/communications/", api.Communicate.as_view(), name="communicate"),
    path("ack/<str:token>/", api.Acknowledge.as_view(), name="ack"),
    path("settings/<slug:tenant_slug>/", api.TenantSettings.as_view(), name="settings"),
]
