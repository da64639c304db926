from __future__ import annotations

from django.urls import path

from . import views

app_name = "viewer"

urlpatterns = [
    path("app-config.js", views.app_config_js, name="app-config"),
    path("init-service-worker.js", views.init_service_worker, name="init-service-worker"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("", views.viewer, name="home"),
    path("<path:path>", views.viewer, name="page"),
]
