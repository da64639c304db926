"""DICOMweb routes under ``/t/<tenant-slug>/dicomweb/`` (PS3.18 10.4–10.6, 10.7 for frames).

One URL may serve several services (``/studies`` is QIDO-RS on GET and STOW-RS on POST), so each
route names a view per method. ``tests/studies/test_cross_tenant_routes.py`` enumerates this list:
a route added here without a cross-tenant case fails the suite.
"""

from django.urls import path, re_path

from . import qido, views, wado
from .views import by_method

S = "studies/<str:study_uid>"
SE = f"{S}/series/<str:series_uid>"
I = f"{SE}/instances/<str:instance_uid>"  # noqa: E741

urlpatterns = [
    # QIDO-RS (search) and STOW-RS (store)
    path("studies", by_method(GET=qido.search_studies, POST=views.store_instances), name="dicomweb-studies"),
    path("series", by_method(GET=qido.search_series), name="dicomweb-series-search"),
    path("instances", by_method(GET=qido.search_instances), name="dicomweb-instances-search"),
    path(f"{S}/series", by_method(GET=qido.search_series), name="dicomweb-study-series"),
    path(f"{S}/instances", by_method(GET=qido.search_instances), name="dicomweb-study-instances"),
    path(f"{SE}/instances", by_method(GET=qido.search_instances), name="dicomweb-series-instances"),
    # WADO-RS (retrieve), study level
    path(S, by_method(GET=wado.retrieve_study, POST=views.store_instances), name="dicomweb-study"),
    path(f"{S}/metadata", by_method(GET=wado.study_metadata), name="dicomweb-study-metadata"),
    path(f"{S}/rendered", by_method(GET=wado.study_rendered), name="dicomweb-study-rendered"),
    path(f"{S}/thumbnail", by_method(GET=wado.study_thumbnail), name="dicomweb-study-thumbnail"),
    # series level
    path(SE, by_method(GET=wado.retrieve_series), name="dicomweb-series"),
    path(f"{SE}/metadata", by_method(GET=wado.series_metadata), name="dicomweb-series-metadata"),
    path(f"{SE}/rendered", by_method(GET=wado.series_rendered), name="dicomweb-series-rendered"),
    path(f"{SE}/thumbnail", by_method(GET=wado.series_thumbnail), name="dicomweb-series-thumbnail"),
    # instance level
    path(I, by_method(GET=wado.retrieve_instance), name="dicomweb-instance"),
    path(f"{I}/metadata", by_method(GET=wado.instance_metadata), name="dicomweb-instance-metadata"),
    path(f"{I}/rendered", by_method(GET=wado.instance_rendered), name="dicomweb-instance-rendered"),
    path(f"{I}/thumbnail", by_method(GET=wado.instance_thumbnail), name="dicomweb-instance-thumbnail"),
    path(f"{I}/bulkdata/<path:bulk_path>", by_method(GET=wado.instance_bulkdata), name="dicomweb-instance-bulkdata"),
    # frame level
    path(f"{I}/frames/<str:frames>", by_method(GET=wado.retrieve_frames), name="dicomweb-frames"),
    path(f"{I}/frames/<str:frames>/rendered", by_method(GET=wado.frames_rendered), name="dicomweb-frames-rendered"),
    path(f"{I}/frames/<str:frames>/thumbnail", by_method(GET=wado.frames_thumbnail), name="dicomweb-frames-thumbnail"),
    # Everything else under the base URL answers like the rest of DICOMweb: JSON, not an HTML page.
    re_path(r"^.*$", views.not_found, name="dicomweb-not-found"),
]  # fmt: skip
