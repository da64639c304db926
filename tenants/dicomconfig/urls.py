"""Routes of dicomconfig (full paths from the site root: included at "")."""

from django.urls import URLPattern

app_name = "dicomconfig"

urlpatterns: list[URLPattern] = []
