"""Routes of retention (full paths from the site root: included at "")."""

from django.urls import path

from . import views

app_name = "retention"

urlpatterns = [
    path("t/<slug:tenant_slug>/setup/retention/", views.settings, name="settings"),
]
