"""The audit log API, mounted at /api/audit/ (namespace ``audit-api``)."""

from django.urls import path

from . import api

app_name = "audit-api"

urlpatterns = [
    path("events/", api.EventList.as_view(), name="events"),
    path("export/<str:fmt>/", api.Export.as_view(), name="export"),
    path("patients/", api.PatientsAccessed.as_view(), name="patients"),
]
