"""Worklist pages (worklists/views.py), under /worklist/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
