"""Routes of usage (full paths from the site root: included at "")."""

from django.urls import URLPattern

app_name = "usage"

urlpatterns: list[URLPattern] = []
