"""Critical results pages, under /reports/critical/ (namespace reports:critical)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("items/<int:item_id>/panel/", views.panel, name="panel"),
    path("items/<int:item_id>/flag/", views.flag, name="flag"),
    path("<int:critical_id>/communicate/", views.communicate, name="communicate"),
    path("ack/<str:token>/", views.ack, name="ack"),
]
