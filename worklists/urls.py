"""Worklist pages (worklists/views.py), under /worklist/."""


urlpatterns: list = []  # type: ignore[type-arg]
