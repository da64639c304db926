"""REST API of the worklist (worklists/api.py), under /api/worklist/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
