"""Routes of onboarding (full paths from the site root: included at "")."""

from django.urls import URLPattern

app_name = "onboarding"

urlpatterns: list[URLPattern] = []
