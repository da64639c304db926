"""Collaboration pages, under /reports/collab/ (namespace reports:collab)."""

from django.urls import path

from . import views

urlpatterns = [
    path("items/<int:item_id>/panel/", views.panel, name="panel"),
    path("items/<int:item_id>/consults/", views.ask, name="ask"),
    path("items/<int:item_id>/comments/", views.comment, name="comment"),
    path("items/<int:item_id>/mentionable/", views.mentionable, name="mentionable"),
    path("consults/<int:consult_id>/<slug:action>/", views.consult_action, name="consult-action"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/badge/", views.badge, name="badge"),
    path("notifications/read/", views.read, name="read"),
]
