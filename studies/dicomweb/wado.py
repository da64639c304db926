"""WADO-RS: retrieve instances, metadata, frames, bulk data and rendered images (PS3.18 10.4)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from tenants import audit
from tenants.models import Tenant

from .responses import error_response
from .views import dicomweb_endpoint


def _not_yet() -> HttpResponse:
    return error_response(501, "WADO-RS is not implemented yet.")


@dicomweb_endpoint(write=False)
def retrieve_study(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def study_metadata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def study_rendered(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def study_thumbnail(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def retrieve_series(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def series_metadata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def series_rendered(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def series_thumbnail(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def retrieve_instance(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def instance_metadata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def instance_rendered(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def instance_thumbnail(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def instance_bulkdata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def retrieve_frames(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def frames_rendered(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def frames_thumbnail(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()
