"""Routes of usage (full paths from the site root: included at "")."""

from django.urls import URLPattern, path

from . import scrape, views

app_name = "usage"

urlpatterns: list[URLPattern] = [
    path("t/<slug:tenant_slug>/usage/", views.tenant_usage, name="tenant"),
    path("g/<slug:group_slug>/usage/", views.group_usage, name="group"),
    path("platform/usage/", views.platform_usage, name="platform"),
    path("metrics", scrape.metrics_view, name="metrics"),
]
