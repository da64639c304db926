"""Worklist pages (worklists/views.py), under /worklist/."""

from django.urls import path

from . import views

app_name = "worklists"

urlpatterns = [
    path("", views.worklist, name="list"),
    path("views/", views.save_view, name="save-view"),
    path("views/<int:view_id>/delete", views.delete_view, name="delete-view"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("items/<int:item_id>/", views.item_page, name="item"),
    path("items/<int:item_id>/heartbeat", views.heartbeat, name="heartbeat"),
    path(
        "items/<int:item_id>/<slug:action>",
        views.item_action,
        name="item-action",
    ),
]
