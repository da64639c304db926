"""Routes of dicomconfig (full paths from the site root: included at "")."""

from django.urls import path

from . import views

app_name = "dicomconfig"

urlpatterns = [
    path("t/<slug:tenant_slug>/setup/dicom/", views.dicom, name="dicom"),
    path("t/<slug:tenant_slug>/setup/dicom/status/", views.dicom_status, name="dicom-status"),
    path(
        "t/<slug:tenant_slug>/setup/dicom/echo/<int:destination_id>/",
        views.echo_test,
        name="echo",
    ),
    path("t/<slug:tenant_slug>/setup/destinations/", views.destinations, name="destinations"),
]
