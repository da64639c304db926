"""The DICOM and destinations steps of the set-up wizard, for the hospital's admins only.

Anyone else, and the admin of another hospital, gets "not found". Every change is a POST that
names its operation (``op``) and, for a row, the row's id, which is looked up within the tenant
of the URL; bad input re-renders the page with the form's errors (400) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenants import audit
from tenants.models import (
    AllowedCaller,
    AuditAction,
    CalledAETitle,
    DicomDestination,
    Outcome,
    Tenant,
    User,
)
from tenants.onboarding.access import hospital_for_admin

from . import services, status
from .echo import echo
from .forms import CalledAETitleForm, CallerForm, DestinationForm, PacsForm


def _administered(request: HttpRequest, tenant_slug: str) -> Tenant:
    return hospital_for_admin(request.user, tenant_slug)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(cast(User, request.user), address=request.META.get("REMOTE_ADDR"))


def _row(model: type[Any], tenant: Tenant, value: str | None) -> Any:
    """A row of this tenant by the id the form posted; another tenant's is not found."""
    if not value or not value.isdigit():
        raise Http404("No such row.")
    row = model.objects.filter(tenant=tenant, pk=int(value)).first()
    if row is None:
        raise Http404("No such row.")
    return row


def _caller_form(tenant: Tenant, rule: AllowedCaller | None, data: Any = None) -> CallerForm:
    """The form of one rule (prefix c<id>), or of a new one (prefix new)."""
    if rule is None:
        return CallerForm(data, tenant=tenant, prefix="new")
    initial = {"ae_title": rule.ae_title, "network": rule.network, "description": rule.description}
    return CallerForm(data, tenant=tenant, instance=rule, initial=initial, prefix=f"c{rule.pk}")


def _scp_address() -> dict[str, Any]:
    """Where modalities send: the public name of the SCP if one is set, else its bind address."""
    cfg = settings.SKYLIGHT
    return {
        "host": cfg.get("SCP_PUBLIC_HOST") or cfg["SCP_HOST"],
        "port": cfg["SCP_PORT"],
        "tls_port": cfg.get("SCP_TLS_PORT") or None,
    }


# Forms that failed, by name ("title", "c<rule id>", ...), and "error" for a refusal of the service.
Failed = dict[str, Any]
Change = Callable[[HttpRequest, Tenant, Failed], str | None]
Context = Callable[[Tenant, Failed], dict[str, Any]]


def _page(
    request: HttpRequest, tenant_slug: str, *, change: Change, context: Context, name: str
) -> HttpResponse:
    """A settings page: GET shows it; POST makes one change and redirects back, or shows the
    page again with the failing form's errors (400), having changed nothing."""
    tenant = _administered(request, tenant_slug)
    failed: Failed = {}
    if request.method == "POST":
        try:
            done = change(request, tenant, failed)
        except ValidationError as error:
            done, failed["error"] = None, " ".join(error.messages)
        if done is not None:
            messages.success(request, done)
            return HttpResponseRedirect(reverse(f"dicomconfig:{name}", args=[tenant.slug]))
        failed.setdefault("error", None if len(failed) else "Unknown operation.")
    return render(
        request,
        f"dicomconfig/{name}.html",
        {"tenant": tenant, "error": failed.get("error"), **context(tenant, failed)},
        status=400 if request.method == "POST" else 200,
    )


def _valid(form: Any, failed: Failed, name: str) -> bool:
    if form.is_valid():
        return True
    failed[name] = form
    return False


# ---------------------------------------------------------------------------------------------
# The DICOM page
# ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dicom(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    return _page(request, tenant_slug, change=_dicom_change, context=_dicom_context, name="dicom")


def _dicom_context(tenant: Tenant, failed: Failed) -> dict[str, Any]:
    rules = AllowedCaller.objects.filter(tenant=tenant).order_by("ae_title", "network")
    pacs = services.pacs_of(tenant)
    return {
        "titles": list(CalledAETitle.objects.filter(tenant=tenant).order_by("ae_title")),
        "scp": _scp_address(),
        "title_form": failed.get("title") or CalledAETitleForm(),
        "callers": [(r, failed.get(f"c{r.pk}") or _caller_form(tenant, r)) for r in rules],
        "caller_form": failed.get("new") or _caller_form(tenant, None),
        "pacs": pacs,
        "pacs_form": failed.get("pacs")
        or PacsForm(tenant=tenant, instance=pacs, initial=_node(pacs)),
        "panel": status.panel(tenant),
    }


def _node(node: DicomDestination | None) -> dict[str, Any]:
    if node is None:
        return {}
    return {"ae_title": node.ae_title, "host": node.host, "port": node.port}


def _dicom_change(request: HttpRequest, tenant: Tenant, failed: Failed) -> str | None:
    """Carry out the posted change: its message, or None with the failing form in ``failed``."""
    op, post, actor = request.POST.get("op", ""), request.POST, _actor(request)
    if op == "add-title":
        title_form = CalledAETitleForm(post)
        if not _valid(title_form, failed, "title"):
            return None
        row = services.add_called_ae_title(tenant=tenant, actor=actor, **title_form.cleaned_data)
        return f"Called AE title {row.ae_title} added."
    if op == "remove-title":
        row = _row(CalledAETitle, tenant, post.get("id"))
        services.remove_called_ae_title(tenant=tenant, actor=actor, row=row)
        return f"Called AE title {row.ae_title} removed."
    if op in ("add-caller", "edit-caller"):
        rule = _row(AllowedCaller, tenant, post.get("id")) if op == "edit-caller" else None
        form = _caller_form(tenant, rule, post)
        if not _valid(form, failed, str(form.prefix)):
            return None
        saved = services.save_caller(tenant=tenant, actor=actor, rule=rule, **form.cleaned_data)
        return f"Allowed caller {saved} saved; it applies to the next association."
    if op == "remove-caller":
        rule = _row(AllowedCaller, tenant, post.get("id"))
        services.remove_caller(tenant=tenant, actor=actor, rule=rule)
        return f"Allowed caller {rule} removed; it applies to the next association."
    if op == "pacs":
        pacs_form = PacsForm(post, tenant=tenant, instance=services.pacs_of(tenant))
        if not _valid(pacs_form, failed, "pacs"):
            return None
        node = services.set_pacs(tenant=tenant, actor=actor, **pacs_form.cleaned_data)
        return f"PACS saved: {node}."
    return None


@login_required
@require_GET
def dicom_status(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """The "last association received" panel, which reloads itself every few seconds."""
    tenant = _administered(request, tenant_slug)
    titles = list(CalledAETitle.objects.filter(tenant=tenant).order_by("ae_title")[:1])
    context = {"tenant": tenant, "panel": status.panel(tenant), "titles": titles}
    return render(request, "dicomconfig/_status.html", context)


@login_required
@require_POST
def echo_test(request: HttpRequest, tenant_slug: str, destination_id: int) -> HttpResponse:
    """C-ECHO one of the hospital's registered nodes; the node is named by id, never by address."""
    tenant = _administered(request, tenant_slug)
    node = DicomDestination.objects.filter(tenant=tenant, pk=destination_id).first()
    if node is None:
        raise Http404("No such destination.")
    own = CalledAETitle.objects.filter(tenant=tenant).order_by("pk").first()
    result = echo(node, calling_ae_title=own.ae_title if own else "SKYLIGHT")
    audit.record(
        action=AuditAction.ECHO_TEST,
        actor=_actor(request),
        tenant=tenant,
        outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE,
        detail={
            "destination": node.ae_title,
            "destination_id": node.pk,
            "host": node.host,
            "port": node.port,
            "result": result.outcome,
        },
    )
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "dicomconfig/_echo_result.html", {"result": result, "node": node})
    (messages.success if result.ok else messages.error)(request, result.message)
    back = "destinations" if request.POST.get("back") == "destinations" else "dicom"
    return HttpResponseRedirect(reverse(f"dicomconfig:{back}", args=[tenant.slug]))


# ---------------------------------------------------------------------------------------------
# The destinations page
# ---------------------------------------------------------------------------------------------


def _destination_form(
    tenant: Tenant, node: DicomDestination | None, data: Any = None
) -> DestinationForm:
    """The form of one destination (prefix d<id>), or of a new one (prefix new)."""
    if node is None:
        return DestinationForm(data, tenant=tenant, prefix="new", initial={"enabled": True})
    initial = {**_node(node), "description": node.description, "enabled": node.enabled}
    return DestinationForm(
        data, tenant=tenant, instance=node, initial=initial, prefix=f"d{node.pk}"
    )


@login_required
@require_http_methods(["GET", "POST"])
def destinations(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    return _page(
        request,
        tenant_slug,
        change=_destination_change,
        context=_destinations_context,
        name="destinations",
    )


def _destinations_context(tenant: Tenant, failed: Failed) -> dict[str, Any]:
    nodes = DicomDestination.objects.filter(tenant=tenant).order_by("ae_title")
    return {
        "pacs": services.pacs_of(tenant),
        "rows": [(n, failed.get(f"d{n.pk}") or _destination_form(tenant, n)) for n in nodes],
        "new_form": failed.get("new") or _destination_form(tenant, None),
        "delivery": services.delivery_summary(tenant),
    }


def _destination_change(request: HttpRequest, tenant: Tenant, failed: Failed) -> str | None:
    op, post, actor = request.POST.get("op", ""), request.POST, _actor(request)
    if op in ("add", "edit"):
        node = _row(DicomDestination, tenant, post.get("id")) if op == "edit" else None
        form = _destination_form(tenant, node, post)
        if not _valid(form, failed, str(form.prefix)):
            return None
        saved = services.save_destination(
            tenant=tenant, actor=actor, node=node, **form.cleaned_data
        )
        return f"Destination {saved} saved."
    if op == "remove":
        node = _row(DicomDestination, tenant, post.get("id"))
        services.remove_destination(tenant=tenant, actor=actor, node=node)
        return f"Destination {node.ae_title} removed."
    return None
