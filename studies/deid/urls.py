"""Routes of deid (full paths from the site root: included at "")."""

from django.urls import path

from . import views

app_name = "deid"

urlpatterns = [
    path("t/<slug:tenant_slug>/setup/deid/", views.settings, name="settings"),
]
