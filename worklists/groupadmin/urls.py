"""Routes of groupadmin (full paths from the site root: included at "")."""

from django.urls import path

from . import views

app_name = "groupadmin"

urlpatterns = [
    path(
        "t/<slug:tenant_slug>/setup/agreements/",
        views.hospital_agreements,
        name="hospital-agreements",
    ),
    path("g/<slug:group_slug>/", views.home, name="home"),
    path("g/<slug:group_slug>/credentials/", views.group_credentials, name="credentials"),
    path("g/<slug:group_slug>/shifts/", views.group_shifts, name="shifts"),
    path("g/<slug:group_slug>/agreements/", views.group_agreements, name="agreements"),
]
