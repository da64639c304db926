"""QIDO-RS: search for studies, series and instances (PS3.18 10.6)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from tenants import audit
from tenants.models import Tenant

from .responses import error_response
from .views import dicomweb_endpoint


def _not_yet() -> HttpResponse:
    return error_response(501, "QIDO-RS is not implemented yet.")


@dicomweb_endpoint(write=False)
def search_studies(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def search_series(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()


@dicomweb_endpoint(write=False)
def search_instances(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kwargs: str
) -> HttpResponse:
    return _not_yet()
