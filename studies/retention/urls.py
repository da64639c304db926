"""Routes of retention (full paths from the site root: included at "")."""

from django.urls import URLPattern

app_name = "retention"

urlpatterns: list[URLPattern] = []
