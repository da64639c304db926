"""Routes of groupadmin (full paths from the site root: included at "")."""

from django.urls import URLPattern

app_name = "groupadmin"

urlpatterns: list[URLPattern] = []
