"""Routes of deid (full paths from the site root: included at "")."""

from django.urls import URLPattern

app_name = "deid"

urlpatterns: list[URLPattern] = []
