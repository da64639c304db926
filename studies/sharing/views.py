"""Share-link pages: the holder's (no login) under ``/s/<token>/``, the staff's under
``/s/t/<tenant-slug>/``.

A token that names no link is 404; one that is expired, revoked or locked is 410 with the same
page naming no patient. The holder's pages, the viewer configuration, the download and the
link's DICOMweb all count towards the link's rate limit (429 past it) and need the second factor
once per browser session when the link has one.
"""

from __future__ import annotations

import datetime
import json
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tenants import audit, rls
from tenants.models import AuditAction, Tenant, User
from tenants.queries import get_readable_tenant, is_tenant_admin

from ..dicomweb.responses import error_response
from ..models import Instance, Study
from ..storage import object_store
from . import services
from .models import SecondFactor, ShareLink, SharePolicy

_SESSION_KEY = "skylight_shares"  # ids of the links this browser has unlocked
_RETRY = {"Retry-After": "60"}


def _address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    # The token is in the path: never send it on to another site. (Not "no-referrer": the
    # browser would then send "Origin: null" with our own forms, which CSRF refuses.)
    response["Referrer-Policy"] = "same-origin"
    return response


def _dead(request: HttpRequest, status: str | None) -> HttpResponse:
    """The page for a token that opens nothing; the same words whatever the link shared."""
    code = 404 if status is None else 410
    return _no_store(render(request, "sharing/gone.html", {"status": status}, status=code))


def unlocked(request: HttpRequest, link: ShareLink) -> bool:
    if link.second_factor == SecondFactor.NONE:
        return True
    return link.pk in request.session.get(_SESSION_KEY, [])


def _unlock(request: HttpRequest, link: ShareLink) -> None:
    ids = list(request.session.get(_SESSION_KEY, []))
    if link.pk not in ids:
        ids.append(link.pk)
    request.session[_SESSION_KEY] = ids[-50:]
    request.session.cycle_key()  # a fresh session id once it opens something


def _find(token: str, request: HttpRequest) -> ShareLink:
    """``services.find``, and the request's database context narrowed to the link's tenant
    (tenants/rls.py). Which tenant a token belongs to is known only once it is found, so the
    look-up itself is system work; a token that finds nothing leaves no tenant visible."""
    rls.use_all_tenants()
    try:
        link = services.find(token, address=_address(request))
    except (services.NotFound, services.Gone):
        rls.clear()
        raise
    rls.use_tenants([link.tenant_id])
    return link


def _resolve(request: HttpRequest, token: str) -> ShareLink | HttpResponse:
    """The active link (request counted), or the page to answer instead."""
    try:
        link = _find(token, request)
    except services.NotFound:
        return _dead(request, None)
    except services.Gone as gone:
        return _dead(request, gone.status)
    if not services.count_request(link):
        response = render(request, "sharing/too_many.html", status=429)
        response["Retry-After"] = _RETRY["Retry-After"]
        return _no_store(response)
    return link


# ---------------------------------------------------------------------------------------------
# The holder's pages
# ---------------------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def open_link(request: HttpRequest, share_token: str) -> HttpResponse:
    """The second factor if the link has one, then its studies with the viewer and download."""
    found = _resolve(request, share_token)
    if isinstance(found, HttpResponse):
        return found
    link = found
    error = ""
    if request.method == "POST" and not unlocked(request, link):
        answer = request.POST.get("answer", "")
        if services.check_second_factor(link, answer=answer, address=_address(request)):
            _unlock(request, link)
            return redirect(request.path)
        if link.locked_at is not None:
            return _dead(request, "locked")
        left = SharePolicy.for_tenant(link.tenant).max_attempts - link.failed_attempts
        error = f"That is not right. {left} attempt{'s' if left != 1 else ''} left before the link locks."
    if not unlocked(request, link):
        return _no_store(
            render(
                request,
                "sharing/unlock.html",
                {"link": link, "error": error, "factor": link.second_factor},
                status=400 if error else 200,
            )
        )
    studies = services.studies_of(link)
    actor = services.holder(link, address=_address(request))
    if request.method != "HEAD":
        audit.record_many(
            audit.build(
                action=AuditAction.SHARE_OPEN,
                actor=actor,
                tenant=link.tenant,
                study_instance_uid=s.study_instance_uid,
                patient_ref=s.patient_id,
                detail={"event": "share.open"},
            )
            for s in studies
        )
    uids = ",".join(s.study_instance_uid for s in studies)
    warning = ""
    if link.deidentified:
        from ..deid.links import UidMap, flags

        uids = ",".join(UidMap(link).studies())
        flagged = sum(1 for reason in flags(link, studies).values() if reason)
        warning = _burned_in_warning(link, flagged)
    context = {
        "link": link,
        "warning": warning,
        "studies": studies,
        "viewer_url": f"/viewer/viewer?StudyInstanceUIDs={uids}&share={share_token}",
        "download_url": reverse("sharing:download", args=[share_token]),
    }
    return _no_store(render(request, "sharing/open.html", context))


def _whole(response: HttpResponseBase) -> HttpResponse:
    """A streamed answer as one body: studies.dicomweb's wrapper passes on an HttpResponse only.
    A de-identified link's answers are de-identified in memory anyway."""
    if isinstance(response, HttpResponse):
        return response
    streamed = cast(StreamingHttpResponse, response)
    chunks = cast(Iterator[bytes], streamed.streaming_content)  # WSGI: never async here
    whole = HttpResponse(b"".join(chunks), status=response.status_code)
    for header, value in response.items():
        whole[header] = value
    return whole


def _burned_in_warning(link: ShareLink, flagged: int) -> str:
    """What the sender and the holder of a de-identified link are told about burned-in text."""
    from ..deid.models import BurnedIn

    if not flagged:
        return ""
    images = f"{flagged} image{'s' if flagged != 1 else ''}"
    if link.deid_burned_in == BurnedIn.WARN:
        return (
            f"{images} may show the patient's name or other details burned into the pixels, "
            "which de-identification does not remove. Check before passing them on."
        )
    return f"{images} that may show burned-in patient details are left out of this share."


def launch(request: HttpRequest, share_token: str, uids: list[str]) -> ShareLink | HttpResponse:
    """For the viewer: the link, if it is active, unlocked here and shares every study named."""
    found = _resolve(request, share_token)
    if isinstance(found, HttpResponse):
        return found
    shared = services.study_uids(found)
    if found.deidentified:  # the viewer names the studies by their mapped UIDs
        from ..deid.links import UidMap

        shared = frozenset(UidMap(found).studies())
    if not unlocked(request, found) or not set(uids) <= shared:
        return _dead(request, None)
    return found


def dicomweb_base(request: HttpRequest, share_token: str) -> str:
    root = settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
    return f"{root}/s/{share_token}/dicomweb"


@require_safe
def app_config_js(request: HttpRequest, share_token: str) -> HttpResponse:
    """OHIF's ``window.config`` for a link: its DICOMweb only, nothing to store, no study list."""
    from viewer.views import app_config

    found = _resolve(request, share_token)
    if isinstance(found, HttpResponse) or not unlocked(request, found):
        response = HttpResponse("/* This share link is not open in this browser. */\n", status=404)
        response["Content-Type"] = "text/javascript; charset=utf-8"
        return _no_store(response)
    request.skylight_dicomweb_base = dicomweb_base(request, share_token)  # type: ignore[attr-defined]
    name = "share" if found.deidentified else found.tenant.slug
    config = app_config([found.tenant], request, name)
    config["showStudyList"] = False
    if found.deidentified:  # nor the hospital's name: the files do not carry it either
        [source] = cast(list[dict[str, Any]], config["dataSources"])
        source["sourceName"] = name
        source["configuration"].update(name=name, friendlyName="De-identified share")
    body = (
        f"// Skylight: a share link, read-only.\nwindow.config = {json.dumps(config, indent=2)};\n"
    )
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    return _no_store(response)


@require_safe
def download(request: HttpRequest, share_token: str) -> HttpResponseBase:
    """The shared studies as a zip of their DICOM Part 10 files, as stored. Names inside are
    numbers (study-1/series-2/00003.dcm), never patient data."""
    found = _resolve(request, share_token)
    if isinstance(found, HttpResponse):
        return found
    link = found
    if not unlocked(request, link):
        return redirect("sharing:open", share_token)
    if not link.allow_download:
        return _no_store(
            HttpResponse(
                "This link is for viewing only; ask the sender for a link with download.",
                status=403,
                content_type="text/plain; charset=utf-8",
            )
        )
    studies = services.studies_of(link)
    instances = list(
        Instance.objects.filter(tenant=link.tenant, study__in=studies)
        .select_related("series")
        .order_by("study_id", "series__series_number", "series_id", "instance_number", "id")
    )
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - handed to FileResponse, which closes it
    study_numbers = {s.pk: n for n, s in enumerate(studies, 1)}
    series_numbers: dict[int, int] = {}
    uid_map = None
    if link.deidentified:  # de-identified files, the flagged ones left out if the policy says so
        from ..deid.links import UidMap, excluded
        from ..deid.serve import deidentified_bytes

        uid_map = UidMap(link)
        left_out = excluded(link, studies)
        instances = [i for i in instances if i.pk not in left_out]
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for n, instance in enumerate(instances, 1):
            series_no = series_numbers.setdefault(instance.series_id, len(series_numbers) + 1)
            name = f"study-{study_numbers[instance.study_id]}/series-{series_no}/{n:05d}.dcm"
            if uid_map is not None:
                zipped.writestr(name, deidentified_bytes(uid_map, instance))
                continue
            with object_store().open(instance.storage_key, "rb") as source:
                zipped.writestr(name, source.read())
    archive.seek(0)
    actor = services.holder(link, address=_address(request))
    audit.record_many(
        audit.build(
            action=AuditAction.WADO_RETRIEVE,
            actor=actor,
            tenant=link.tenant,
            study_instance_uid=s.study_instance_uid,
            patient_ref=s.patient_id,
            detail={
                "kind": "download",
                "event": "share.download",
                "deidentified": link.deidentified,
            },
        )
        for s in studies
    )
    response = FileResponse(
        archive, as_attachment=True, filename="studies.zip", content_type="application/zip"
    )
    response["Cache-Control"] = "no-store"
    return response


def dicomweb_scope(
    request: HttpRequest, share_token: str, *, write: bool
) -> tuple[Tenant, frozenset[str], audit.Actor] | HttpResponse:
    """For studies.dicomweb: the tenant, study UIDs and actor of an open link, or the error."""
    try:
        link = _find(share_token, request)
    except services.NotFound:
        return error_response(404, "No such share link.")
    except services.Gone:
        return error_response(410, "This share link is no longer valid.")
    if write:
        return error_response(405, "Share links are read-only.", headers={"Allow": "GET"})
    if not unlocked(request, link):
        return error_response(401, "Open the share link's page and answer its question first.")
    if not services.count_request(link):
        return error_response(429, "Too many requests on this link; wait a minute.", headers=_RETRY)
    request.skylight_dicomweb_base = dicomweb_base(request, share_token)  # type: ignore[attr-defined]
    actor = services.holder(link, address=_address(request))
    if link.deidentified:  # answered by studies/deid, which de-identifies every byte it sends
        from ..deid import serve

        return _whole(serve.answer(request, link, actor))
    return link.tenant, services.study_uids(link), actor


# ---------------------------------------------------------------------------------------------
# The staff's pages
# ---------------------------------------------------------------------------------------------


def _tenant(request: HttpRequest, tenant_slug: str) -> tuple[User, Tenant]:
    """The tenant, if this user may read its studies (and so share them); else 404."""
    user = cast(User, request.user)
    return user, get_readable_tenant(user, tenant_slug)


def _study_uids(text: str) -> list[str]:
    return [u for u in text.replace(",", " ").split() if u]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def new(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """Create a link; the page that answers shows its address once, and never again."""
    from ..deid.models import DeidPolicy
    from ..dicomweb.views import is_uid

    user, tenant = _tenant(request, tenant_slug)
    policy = SharePolicy.for_tenant(tenant)
    deid_policy = DeidPolicy.for_tenant(tenant)
    form: dict[str, Any] = {
        "studies": request.GET.get("study", ""),
        "days": policy.default_days,
        "second_factor": SecondFactor.PIN,
        "allow_download": False,
        "note": "",
        "deidentified": deid_policy.required_for_shares,
    }
    error = ""
    if request.method == "POST":
        form.update(
            studies=request.POST.get("studies", ""),
            days=request.POST.get("days", ""),
            second_factor=request.POST.get("second_factor", ""),
            allow_download=bool(request.POST.get("allow_download")),
            note=request.POST.get("note", ""),
            deidentified=deid_policy.required_for_shares or bool(request.POST.get("deidentified")),
        )
        uids = _study_uids(form["studies"])
        studies = list(
            Study.objects.filter(
                tenant=tenant, study_instance_uid__in=[u for u in uids if is_uid(u)]
            ).select_related("patient")
        )
        try:
            days = int(form["days"])
        except (TypeError, ValueError):
            days = 0
        try:
            if len(studies) != len(set(uids)):
                raise services.ShareError(
                    "Some of the studies are not in this hospital: check the Study Instance UIDs."
                )
            created = services.create_share(
                tenant=tenant,
                actor=audit.Actor.for_user(user, address=_address(request)),
                studies=studies,
                days=days,
                second_factor=form["second_factor"],
                pin=request.POST.get("pin", ""),
                allow_download=form["allow_download"],
                note=form["note"],
                deidentified=form["deidentified"],
            )
        except services.ShareError as exc:
            error = str(exc)
        else:
            address = request.build_absolute_uri(reverse("sharing:open", args=[created.token]))
            warning = ""
            if created.link.deidentified:  # checked now, so the sender knows before sending
                from ..deid.links import flags

                found = flags(created.link, studies)
                warning = _burned_in_warning(created.link, sum(1 for r in found.values() if r))
            return _no_store(
                render(
                    request,
                    "sharing/created.html",
                    {
                        "tenant": tenant,
                        "link": created.link,
                        "address": address,
                        "warning": warning,
                    },
                    status=201,
                )
            )
    context = {
        "tenant": tenant,
        "form": form,
        "error": error,
        "policy": policy,
        "deid_policy": deid_policy,
        "factors": SecondFactor.choices,
    }
    return _no_store(render(request, "sharing/new.html", context, status=400 if error else 200))


@login_required
@require_safe
def links(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """The tenant's links for its admin (a reader sees the links they made), with status."""
    user, tenant = _tenant(request, tenant_slug)
    rows = services.links_for(tenant)
    admin = is_tenant_admin(user, tenant)
    if not admin:
        rows = [r for r in rows if r.created_by_id == user.pk]
    now = datetime.datetime.now(tz=datetime.UTC)
    audit.record(
        action=AuditAction.STUDY_LIST,
        actor=audit.Actor.for_user(user, address=_address(request)),
        tenant=tenant,
        detail={"page": "share-links", "shares": [r.pk for r in rows]},
    )
    context = {
        "tenant": tenant,
        "rows": [(r, r.status(now)) for r in rows],
        "admin": admin,
    }
    return _no_store(render(request, "sharing/links.html", context))


@login_required
@require_POST
def revoke(request: HttpRequest, tenant_slug: str, link_id: int) -> HttpResponse:
    user, tenant = _tenant(request, tenant_slug)
    link = services.get_link_for(user, tenant, link_id)
    if link is None:
        raise Http404("No such share link.")
    services.revoke_share(link=link, actor=audit.Actor.for_user(user, address=_address(request)))
    return redirect("sharing:links", tenant.slug)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def grants(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """The hospital's admin gives studies to its referring physicians (their portal and viewer
    then show them), and withdraws them."""
    from ..dicomweb.views import is_uid

    user, tenant = _tenant(request, tenant_slug)
    if not is_tenant_admin(user, tenant):
        raise Http404("No such page.")
    actor = audit.Actor.for_user(user, address=_address(request))
    error = ""
    if request.method == "POST":
        if request.POST.get("revoke"):
            grant_id = request.POST["revoke"]
            if grant_id.isdigit():  # anything else names no grant: the list shows what is there
                services.revoke_grant(tenant=tenant, actor=actor, grant_id=int(grant_id))
            return redirect("sharing:grants", tenant.slug)
        referrers = {str(r.pk): r for r in services.referrers_of(tenant)}
        uids = [u for u in _study_uids(request.POST.get("studies", "")) if is_uid(u)]
        studies = list(Study.objects.filter(tenant=tenant, study_instance_uid__in=uids))
        try:
            if not uids or len(studies) != len(set(uids)):
                raise services.ShareError(
                    "Some of the studies are not in this hospital: check the Study Instance UIDs."
                )
            referrer = referrers.get(request.POST.get("user", ""))
            if referrer is None:
                raise services.ShareError("Choose one of this hospital's referring physicians.")
            services.grant_studies(tenant=tenant, actor=actor, user=referrer, studies=studies)
        except services.ShareError as exc:
            error = str(exc)
        else:
            return redirect("sharing:grants", tenant.slug)
    rows = services.grants_of(tenant)
    audit.record(
        action=AuditAction.STUDY_LIST,
        actor=actor,
        tenant=tenant,
        detail={"page": "grants", "grants": [g.pk for g in rows]},
    )
    context = {
        "tenant": tenant,
        "rows": rows,
        "referrers": services.referrers_of(tenant),
        "error": error,
    }
    return _no_store(render(request, "sharing/grants.html", context, status=400 if error else 200))
