"""Template pages (reports/templating/), under /reports/templates/."""

from django.urls import path

from . import panel, views

urlpatterns = [
    path("items/<int:item_id>/panel/", panel.item_panel, name="panel"),
    path("manage/", views.manage, name="manage"),
]
