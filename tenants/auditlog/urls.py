"""The audit page, mounted at /audit/ (namespace ``audit``)."""

from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.log, name="log"),
    path("export/<str:fmt>/", views.export, name="export"),
    path("break-glass/<int:item_id>/", views.break_glass, name="break-glass"),
]
