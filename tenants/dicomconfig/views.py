"""The DICOM and destinations steps of the set-up wizard, for the hospital's admins only.

Anyone else, and the admin of another hospital, gets "not found". Every change is a POST that
names its operation (``op``) and, for a row, the row's id, which is looked up within the tenant
of the URL; bad input re-renders the page with the form's errors (400) and changes nothing.
"""

from __future__ import annotations

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
    Role,
    Tenant,
    User,
)

from . import services, status
from .echo import echo
from .forms import CalledAETitleForm, CallerForm, DestinationForm, PacsForm


def _administered(request: HttpRequest, tenant_slug: str) -> Tenant:
    user = cast(User, request.user)
    tenant = Tenant.objects.filter(
        slug=tenant_slug,
        is_active=True,
        memberships__user=user,
        memberships__role=Role.TENANT_ADMIN,
    ).first()
    if tenant is None:
        raise Http404("No such hospital.")
    return tenant


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


def _caller_form(tenant: Tenant, rule: AllowedCaller, data: Any = None) -> CallerForm:
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


# ---------------------------------------------------------------------------------------------
# The DICOM page
# ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dicom(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = _administered(request, tenant_slug)
    forms: dict[str, Any] = {}
    if request.method == "POST":
        done = _dicom_change(request, tenant, forms)
        if done is not None:
            messages.success(request, done)
            return HttpResponseRedirect(reverse("dicomconfig:dicom", args=[tenant.slug]))
    titles = list(CalledAETitle.objects.filter(tenant=tenant).order_by("ae_title"))
    rules = list(AllowedCaller.objects.filter(tenant=tenant).order_by("ae_title", "network"))
    pacs = services.pacs_of(tenant)
    context = {
        "tenant": tenant,
        "titles": titles,
        "scp": _scp_address(),
        "title_form": forms.get("title") or CalledAETitleForm(),
        "callers": [
            (rule, forms.get(f"c{rule.pk}") or _caller_form(tenant, rule)) for rule in rules
        ],
        "caller_form": forms.get("caller") or CallerForm(tenant=tenant, prefix="new"),
        "pacs": pacs,
        "pacs_form": forms.get("pacs")
        or PacsForm(tenant=tenant, instance=pacs, initial=_node(pacs)),
        "panel": status.panel(tenant),
        "error": forms.get("error"),
    }
    return render(
        request,
        "dicomconfig/dicom.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


def _node(node: DicomDestination | None) -> dict[str, Any]:
    if node is None:
        return {}
    return {"ae_title": node.ae_title, "host": node.host, "port": node.port}


def _dicom_change(request: HttpRequest, tenant: Tenant, forms: dict[str, Any]) -> str | None:
    """Carry out the posted change; its message, or None with the failing form in ``forms``."""
    op, post, actor = request.POST.get("op", ""), request.POST, _actor(request)
    try:
        if op == "add-title":
            title_form = CalledAETitleForm(post)
            if not title_form.is_valid():
                forms["title"] = title_form
                return None
            row = services.add_called_ae_title(
                tenant=tenant, actor=actor, ae_title=title_form.cleaned_data["ae_title"]
            )
            return f"Called AE title {row.ae_title} added."
        if op == "remove-title":
            row = _row(CalledAETitle, tenant, post.get("id"))
            services.remove_called_ae_title(tenant=tenant, actor=actor, row=row)
            return f"Called AE title {row.ae_title} removed."
        if op in ("add-caller", "edit-caller"):
            rule = _row(AllowedCaller, tenant, post.get("id")) if op == "edit-caller" else None
            form = (
                _caller_form(tenant, rule, post)
                if rule
                else CallerForm(post, tenant=tenant, prefix="new")
            )
            if not form.is_valid():
                forms[f"c{rule.pk}" if rule else "caller"] = form
                return None
            saved = services.save_caller(tenant=tenant, actor=actor, rule=rule, **form.cleaned_data)
            return f"Allowed caller {saved} saved; it applies to the next association."
        if op == "remove-caller":
            rule = _row(AllowedCaller, tenant, post.get("id"))
            services.remove_caller(tenant=tenant, actor=actor, rule=rule)
            return f"Allowed caller {rule} removed; it applies to the next association."
        if op == "pacs":
            pacs = services.pacs_of(tenant)
            pacs_form = PacsForm(post, tenant=tenant, instance=pacs)
            if not pacs_form.is_valid():
                forms["pacs"] = pacs_form
                return None
            node = services.set_pacs(tenant=tenant, actor=actor, **pacs_form.cleaned_data)
            return f"PACS saved: {node}."
    except ValidationError as error:
        forms["error"] = " ".join(error.messages)
        return None
    forms["error"] = "Unknown operation."
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


def _destination_form(tenant: Tenant, node: DicomDestination, data: Any = None) -> DestinationForm:
    initial = {**_node(node), "description": node.description, "enabled": node.enabled}
    return DestinationForm(
        data, tenant=tenant, instance=node, initial=initial, prefix=f"d{node.pk}"
    )


@login_required
@require_http_methods(["GET", "POST"])
def destinations(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = _administered(request, tenant_slug)
    forms: dict[str, Any] = {}
    if request.method == "POST":
        done = _destination_change(request, tenant, forms)
        if done is not None:
            messages.success(request, done)
            return HttpResponseRedirect(reverse("dicomconfig:destinations", args=[tenant.slug]))
    nodes = list(DicomDestination.objects.filter(tenant=tenant).order_by("ae_title"))
    pacs = services.pacs_of(tenant)
    context = {
        "tenant": tenant,
        "pacs": pacs,
        "rows": [
            (node, forms.get(f"d{node.pk}") or _destination_form(tenant, node)) for node in nodes
        ],
        "new_form": forms.get("new")
        or DestinationForm(tenant=tenant, prefix="new", initial={"enabled": True}),
        "delivery": services.delivery_summary(tenant),
        "error": forms.get("error"),
    }
    return render(
        request,
        "dicomconfig/destinations.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


def _destination_change(request: HttpRequest, tenant: Tenant, forms: dict[str, Any]) -> str | None:
    op, post, actor = request.POST.get("op", ""), request.POST, _actor(request)
    try:
        if op in ("add", "edit"):
            node = _row(DicomDestination, tenant, post.get("id")) if op == "edit" else None
            form = (
                _destination_form(tenant, node, post)
                if node
                else DestinationForm(post, tenant=tenant, prefix="new")
            )
            if not form.is_valid():
                forms[f"d{node.pk}" if node else "new"] = form
                return None
            saved = services.save_destination(
                tenant=tenant, actor=actor, node=node, **form.cleaned_data
            )
            return f"Destination {saved} saved."
        if op == "remove":
            node = _row(DicomDestination, tenant, post.get("id"))
            services.remove_destination(tenant=tenant, actor=actor, node=node)
            return f"Destination {node.ae_title} removed."
    except ValidationError as error:
        forms["error"] = " ".join(error.messages)
        return None
    forms["error"] = "Unknown operation."
    return None
