from django.urls import path, re_path

from . import views

urlpatterns = [
    path("studies", views.store_instances, name="dicomweb-studies"),
    path("studies/<str:study_uid>", views.store_instances, name="dicomweb-study"),
    # Everything else under the base URL answers like the rest of DICOMweb: JSON, not an HTML page.
    re_path(r"^.*$", views.not_found, name="dicomweb-not-found"),
]
