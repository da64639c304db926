"""Delivery pages, mounted at /reports/delivery/ (namespace reports:delivery)."""

from django.urls import path

from . import views

urlpatterns = [
    path("items/<int:item_id>/panel/", views.panel, name="panel"),
    path("versions/<int:version_id>/report.pdf", views.report_pdf, name="pdf"),
    path("deliveries/<int:delivery_id>/retry/", views.retry, name="retry"),
    path("settings/", views.settings_index, name="settings-index"),
    path("settings/<slug:slug>/", views.settings_page, name="settings"),
]
