"""DICOMweb endpoints under ``/t/<tenant-slug>/dicomweb/``.

The tenant is resolved here, once, from the URL and the caller's memberships, and handed to the
endpoint as an argument. A tenant the caller may not see answers 404, exactly like one that does
not exist.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tenants import audit
from tenants.auth import READ_ONLY, SAFE_METHODS, TokenError, authenticate_request
from tenants.models import AuditAction, Outcome, Tenant
from tenants.queries import get_readable_tenant, get_storable_tenant, readable_tenants
from tenants.usage import metrics

from ..dispatch import dispatcher
from ..models import ReceiptSource
from ..services import ReceiptContext, record_receipts
from . import stow
from .media import negotiate, parse_media_type
from .responses import DICOM_JSON, DICOM_XML, dicom_response, error_response

log = logging.getLogger(__name__)

_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="skylight"'}


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Cookie-authenticated writes must carry a CSRF token, like any form; bearer calls need none."""
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})  # type: ignore[arg-type]


def _consulted_tenant(user: Any, slug: str) -> tuple[Tenant, frozenset[str]] | None:
    """The second way in, asked only when the first found nothing: a consultant's open consults
    (reports.collab) let them read these studies of the tenant and nothing else of it."""
    from reports.collab.access import consulted_tenant

    return consulted_tenant(user, slug)


def _referred_tenant(user: Any, slug: str) -> tuple[Tenant, frozenset[str]] | None:
    """The fourth way in, read-only: a referring physician's own and granted studies."""
    from ..sharing.access import referred_tenant

    return referred_tenant(user, slug)


def _shared(
    request: HttpRequest, token: str, *, write: bool
) -> tuple[Tenant, frozenset[str], audit.Actor] | HttpResponse:
    """The third way in, a share link (studies.sharing builds on this module)."""
    from ..sharing.views import dicomweb_scope

    return dicomweb_scope(request, token, write=write)


def _keep_to_studies(
    uids: frozenset[str], kwargs: dict[str, Any], *, study_scope: bool
) -> HttpResponse | None:
    """Keep a caller who may read some studies only (consult, share link) to them: a URL naming
    another study is 404; a view above study level gets ``study_scope`` if it takes it, else
    404. None when the request may go on (``kwargs`` updated)."""
    if "study_uid" in kwargs:
        if kwargs["study_uid"] not in uids:
            return error_response(404, "No such study, series or instance in this hospital.")
    elif study_scope:
        kwargs["study_scope"] = uids
    else:
        return error_response(404, "No such DICOMweb resource.")
    return None


def dicomweb_endpoint(*, write: bool, study_scope: bool = False) -> Callable[..., Any]:
    """Authenticate, resolve the tenant, and pass ``tenant`` and ``actor`` to the view.

    A consultant reaches a tenant for the consulted studies only, a referring physician for
    their own and granted studies only (reading, never storing), and a share link's holder
    (``/s/<token>/dicomweb/``) for the link's studies only: a URL naming another study is 404,
    and a view above study level answers them only if it takes ``study_scope`` (the UIDs it
    must keep to, passed only for them; QIDO-RS does); any other such view is 404."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, tenant_slug: str = "", **kwargs: Any) -> HttpResponse:
            if "share_token" in kwargs:  # /s/<token>/dicomweb/: a share link's studies only
                shared = _shared(request, kwargs.pop("share_token"), write=write)
                if isinstance(shared, HttpResponse):
                    return shared
                tenant, uids, actor = shared
                scoped = _keep_to_studies(uids, kwargs, study_scope=study_scope)
                if scoped is not None:
                    return scoped
                return view(request, tenant=tenant, actor=actor, **kwargs)
            try:
                user, token = authenticate_request(request)
            except TokenError as exc:
                return error_response(401, str(exc), headers=_UNAUTHENTICATED)
            if user is None:
                return error_response(
                    401,
                    "Authentication required: log in or send a bearer token.",
                    headers=_UNAUTHENTICATED,
                )
            if token is not None and token.read_only and request.method not in SAFE_METHODS:
                return error_response(403, READ_ONLY)
            if token is None and request.method not in ("GET", "HEAD", "OPTIONS"):
                failure = _csrf_failure(request)
                if failure is not None:
                    return error_response(
                        403,
                        "CSRF check failed: send the X-CSRFToken header with a "
                        "session, or use a bearer token.",
                    )
            via = ""  # how a caller without a role in the tenant came in
            try:
                tenant = (
                    get_storable_tenant(user, tenant_slug)
                    if write
                    else get_readable_tenant(user, tenant_slug)
                )
            except Http404:
                if write and readable_tenants(user).filter(slug=tenant_slug).exists():
                    return error_response(
                        403, "Your role in this hospital does not allow storing instances."
                    )
                consulted = None if write else _consulted_tenant(user, tenant_slug)
                referred = None
                if consulted is None and not write:
                    referred = _referred_tenant(user, tenant_slug)
                if consulted is None and referred is None:
                    return error_response(404, "No such tenant.")
                tenant, uids = consulted or referred  # type: ignore[misc]
                via = "consult" if consulted is not None else "referrer"
                scoped = _keep_to_studies(uids, kwargs, study_scope=study_scope)
                if scoped is not None:
                    return scoped
            address = request.META.get("REMOTE_ADDR")
            actor = audit.Actor.for_user(user, token=token, address=address)
            if via:  # every audit row of a consultant's or referrer's access says so
                actor = dataclasses.replace(actor, extra={"via": via})
            return view(request, tenant=tenant, actor=actor, **kwargs)

        return wrapper

    return decorator


def by_method(**views: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """One route, a view per HTTP method (HEAD is served by GET); others answer 405 with Allow."""
    if "GET" in views:
        views.setdefault("HEAD", views["GET"])
    allowed = ", ".join(sorted(views))

    @csrf_exempt
    def route(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        view = views.get(request.method or "")
        if view is None:
            response = error_response(405, f"This resource answers {allowed}.")
            response["Allow"] = allowed
            return response
        return view(request, **kwargs)

    route.methods = frozenset(views)  # type: ignore[attr-defined]  # for the route-enumerating tests
    return route


def base_url(request: HttpRequest, tenant: Tenant) -> str:
    # A share link's DICOMweb (studies.sharing) answers with its own base in every URL it sends.
    shared: str | None = getattr(request, "skylight_dicomweb_base", None)
    if shared:
        return shared
    root = settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
    return f"{root}/t/{tenant.slug}/dicomweb"


def _response_media(request: HttpRequest) -> str | None:
    return negotiate(request.META.get("HTTP_ACCEPT"), [DICOM_JSON, DICOM_XML, "application/json"])


_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_uid(value: str) -> bool:
    """A DICOM UID (PS3.5 9.1): dot-separated numbers without leading zeros, at most 64 chars."""
    return len(value) <= 64 and bool(_UID.match(value))


@dicomweb_endpoint(write=False)
def not_found(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor) -> HttpResponse:
    return error_response(
        404, "No such DICOMweb resource: see docs/conformance.md for the routes this server offers."
    )


@dicomweb_endpoint(write=True)
@metrics.timed_stow
def store_instances(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, study_uid: str | None = None
) -> HttpResponse:
    if request.method != "POST":
        response = error_response(405, "Use POST to store instances.")
        response["Allow"] = "POST"
        return response
    if study_uid is not None and not is_uid(study_uid):
        return error_response(400, "The study in the URL is not a valid DICOM UID.")
    media = _response_media(request)
    if media is None:
        return error_response(
            406, "STOW-RS answers in application/dicom+json or application/dicom+xml."
        )
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in ("", "identity"):
        # A compressed body would be inflated past the size limit before it could be checked
        # (a gzip bomb); DICOM compresses pixels in the transfer syntax instead.
        return error_response(
            415,
            "Content-Encoding is not accepted on STOW-RS: send the DICOM files uncompressed "
            "(pixel data may use a compressed transfer syntax).",
        )
    content_type = parse_media_type(request.META.get("CONTENT_TYPE", ""))
    if content_type.type != "multipart/related":
        return error_response(
            415, 'Send multipart/related; type="application/dicom" with one DICOM file per part.'
        )
    part_type = content_type.params.get("type", "application/dicom").lower()
    if part_type != "application/dicom":
        return error_response(
            415,
            f"Parts of type {part_type} are not supported: send application/dicom (DICOM Part 10 files).",
        )
    boundary = content_type.params.get("boundary", "")
    if not boundary:
        return error_response(400, "The Content-Type has no boundary parameter.")

    limit = settings.SKYLIGHT["STOW_MAX_BODY_BYTES"]
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    try:
        content_length = int(raw_length) if raw_length else -1
    except ValueError:
        return error_response(400, "Content-Length is not a number.")
    if content_length > limit:
        return error_response(
            413,
            f"The body is larger than the {limit} bytes this server accepts in one request; "
            "split it into several requests.",
        )
    if content_length >= 0:
        read = request.read
    elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        read = request.META["wsgi.input"].read
    else:
        return error_response(411, "Send a Content-Length or use chunked transfer encoding.")

    try:
        outcome = stow.receive(
            chunks=stow.read_chunks(read, limit),
            boundary=boundary,
            content_length=content_length,
            tenant=tenant,
            target_study_uid=study_uid,
        )
    except stow.BodyTooLarge:
        return error_response(
            413, f"The body is larger than the {limit} bytes this server accepts in one request."
        )
    except stow.MalformedBody as exc:
        return error_response(400, f"Bad request: {exc}.")

    stored = outcome.stored
    try:
        # Receipts and the failed parts' audit rows commit together, or not at all.
        with transaction.atomic():
            _record(tenant, actor, outcome)
    except DatabaseError:
        log.exception("STOW receipts for tenant %s not recorded", tenant.pk)
        stow.discard(stored)
        return error_response(
            503,
            "The archive cannot record instances right now; nothing was stored. Retry later.",
            headers={"Retry-After": "30"},
        )

    base = base_url(request, tenant)
    body = Dataset()
    study_uids = {p.study_instance_uid for p in stored}
    if study_uid or len(study_uids) == 1:
        body.RetrieveURL = f"{base}/studies/{study_uid or study_uids.pop()}"
    else:
        body.RetrieveURL = None
    if outcome.failed:
        body.FailedSOPSequence = Sequence([_failed_item(p) for p in outcome.failed])
    if stored:
        body.ReferencedSOPSequence = Sequence([_referenced_item(p, base) for p in stored])
    if not outcome.failed:
        status = 200
    elif stored:
        status = 202
    else:
        status = 409
    response = dicom_response(body, media, status=status)
    if outcome.failed:
        # People read this header in logs and tools that do not parse the body.
        response["Warning"] = (
            '299 skylight "' + "; ".join(p.message for p in outcome.failed[:10])[:900] + '"'
        )
    return response


def _failed_item(part: stow.PartResult) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = part.sop_class_uid or None
    item.ReferencedSOPInstanceUID = part.sop_instance_uid or None
    item.FailureReason = part.failure_reason
    return item


def _referenced_item(part: stow.PartResult, base: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = part.sop_class_uid
    item.ReferencedSOPInstanceUID = part.sop_instance_uid
    item.RetrieveURL = f"{base}/studies/{part.study_instance_uid}/series/{part.series_instance_uid}/instances/{part.sop_instance_uid}"
    return item


def _record(tenant: Tenant, actor: audit.Actor, outcome: stow.StowOutcome) -> None:
    stored = outcome.stored
    if stored:
        record_receipts(
            tenant=tenant,
            context=ReceiptContext(
                source=ReceiptSource.STOW, actor=actor, audit_action=AuditAction.STOW_STORE
            ),
            objects=[p.stored for p in stored if p.stored is not None],
            enqueue=dispatcher.submit,
        )
        metrics.stored(
            source="stow", tenant=tenant, sizes=[p.stored.size for p in stored if p.stored]
        )
    if outcome.failed:
        audit.record_many(
            audit.build(
                action=AuditAction.STOW_STORE,
                actor=actor,
                tenant=tenant,
                outcome=Outcome.FAILURE,
                study_instance_uid=p.study_instance_uid,
                sop_instance_uid=p.sop_instance_uid,
                detail={"part": p.number, "failure_reason": p.failure_reason},
            )
            for p in outcome.failed
        )
