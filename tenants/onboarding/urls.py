"""Routes of onboarding (full paths from the site root: included at "")."""

from django.urls import path

from . import views

app_name = "onboarding"

urlpatterns = [
    path("platform/", views.platform, name="platform"),
    path("invite/<str:token>/", views.invite_accept, name="invite-accept"),
    path("t/<slug:tenant_slug>/setup/", views.overview, name="overview"),
    path("t/<slug:tenant_slug>/setup/details/", views.details, name="details"),
    path("t/<slug:tenant_slug>/logo/", views.logo, name="logo"),
    path("t/<slug:tenant_slug>/setup/users/", views.users, name="users"),
    path("g/<slug:group_slug>/members/", views.group_members, name="group-members"),
]
