"""Share links under ``/s/``: the staff's pages under ``t/<tenant-slug>/``, the holder's under
``<token>/`` (a link's DICOMweb is the tenants' routes, scoped to the link by
``studies.dicomweb.views.dicomweb_endpoint``)."""

from django.urls import include, path

from ..dicomweb import urls as dicomweb_urls
from . import views

app_name = "sharing"

urlpatterns = [
    path("t/<slug:tenant_slug>/", views.links, name="links"),
    path("t/<slug:tenant_slug>/new/", views.new, name="new"),
    path("t/<slug:tenant_slug>/grants/", views.grants, name="grants"),
    path("t/<slug:tenant_slug>/<int:link_id>/revoke/", views.revoke, name="revoke"),
    path("<str:share_token>/", views.open_link, name="open"),
    path("<str:share_token>/app-config.js", views.app_config_js, name="app-config"),
    path("<str:share_token>/download/", views.download, name="download"),
    path(
        "<str:share_token>/dicomweb/",
        include((dicomweb_urls.urlpatterns, "dicomweb"), namespace="dicomweb"),
    ),
]
