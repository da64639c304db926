"""Delivery pages under /reports/delivery/: the reading room's panel, the PDF, retry, settings.

Views parse, call one query or service, render. Anything the user may not see is a 404, the same
as something that does not exist.
"""

from __future__ import annotations

import io
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from PIL import Image, UnidentifiedImageError

from tenants import audit
from tenants.models import AuditAction, DicomDestination, Membership, Role, Tenant, User
from worklists import services as worklist

from . import queries, services
from .content import document
from .models import LOGO_MAX_BYTES, DeliverySettings, DeliveryStatus


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(_me(request), address=request.META.get("REMOTE_ADDR"))


@login_required
@require_GET
def panel(request: HttpRequest, item_id: int) -> HttpResponse:
    """The delivery status of each signed version, per channel (an htmx fragment)."""
    user = _me(request)
    try:
        item, versions = queries.item_deliveries(user, item_id)
    except worklist.NotVisible:
        raise Http404("No such work item.") from None
    manage = worklist.can_manage(user, item)
    rows = [
        {
            "version": v,
            "deliveries": list(v.deliveries.all()),
            "may_retry": manage or user.pk in (v.author_id, v.signed_by_id),
        }
        for v in versions
    ]
    busy = any(
        d.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
        for v in versions
        for d in v.deliveries.all()
    )
    return render(
        request,
        "reports/delivery/panel.html",
        {"item": item, "rows": rows, "busy": busy, "failed": DeliveryStatus.FAILED},
    )


@login_required
@require_GET
def report_pdf(request: HttpRequest, version_id: int) -> HttpResponse:
    """The PDF of a signed version (audited as an export)."""
    try:
        version = queries.signed_version(_me(request), version_id)
    except queries.NotFound:
        raise Http404("No such report.") from None
    doc = document(version)
    data, _ = services.pdf_bytes(doc, services.settings_for(version.tenant_id))
    queries.record_export(version, _actor(request), "pdf")
    response = HttpResponse(data, content_type="application/pdf")
    # Our ids only: the file name must not carry patient data into download folders and logs.
    response["Content-Disposition"] = (
        f'inline; filename="report-{version.report_id}-v{version.number}.pdf"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def retry(request: HttpRequest, delivery_id: int) -> HttpResponse:
    try:
        row = services.retry(delivery_id=delivery_id, user=_me(request), actor=_actor(request))
    except services.NotFound:
        raise Http404("No such delivery.") from None
    except worklist.WorklistError as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain; charset=utf-8")
    item_id = row.version.report.work_item_id
    if getattr(request, "htmx", None):
        return panel(_as_get(request), item_id)
    return HttpResponseRedirect(reverse("worklists:item", args=[item_id]))


def _as_get(request: HttpRequest) -> HttpRequest:
    request.method = "GET"
    return request


# ---------------------------------------------------------------------------------------------
# Settings, for the hospital's admins
# ---------------------------------------------------------------------------------------------


class SettingsForm(forms.ModelForm):
    logo_file = forms.FileField(
        required=False, label="Logo", help_text="PNG or JPEG, at most 256 KB."
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the logo")
    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Receives each report as a FHIR R4 DiagnosticReport (POST).",
    )

    class Meta:
        model = DeliverySettings
        fields = [
            "hospital_name",
            "address",
            "pacs_destination",
            "fhir_enabled",
            "webhook_url",
            "webhook_secret",
            "hl7_enabled",
            "mllp_host",
            "mllp_port",
        ]
        widgets = {
            "address": forms.Textarea(attrs={"rows": 4}),
            # Never sent back to the browser; left empty, the secret stays as it was.
            "webhook_secret": forms.PasswordInput(render_value=False),
        }

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["pacs_destination"])
        field.queryset = DicomDestination.objects.filter(tenant=tenant, enabled=True)

    def clean_webhook_url(self) -> str:
        url = str(self.cleaned_data.get("webhook_url") or "")
        if url and not url.startswith(("https://", "http://")):
            raise forms.ValidationError("The webhook URL starts with https:// (or http://).")
        return url

    def clean_webhook_secret(self) -> str:
        return str(self.cleaned_data.get("webhook_secret") or self.instance.webhook_secret or "")

    def clean_logo_file(self) -> bytes | None:
        upload = self.cleaned_data.get("logo_file")
        if not upload:
            return None
        if upload.size > LOGO_MAX_BYTES:
            raise forms.ValidationError("The logo is larger than 256 KB; make it smaller.")
        data = upload.read()
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ("PNG", "JPEG"):
                    raise forms.ValidationError("The logo must be a PNG or JPEG image.")
        except (UnidentifiedImageError, OSError):
            raise forms.ValidationError("The logo is not an image that can be read.") from None
        return data

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("webhook_url") and not data.get("webhook_secret"):
            self.add_error("webhook_secret", "Set a secret, so the receiver can check each POST.")
        if bool(data.get("mllp_host")) != bool(data.get("mllp_port")):
            self.add_error("mllp_port", "Give both the MLLP host and port, or neither.")
        return data


def _administered(user: User, slug: str) -> Tenant:
    tenant = Tenant.objects.filter(
        slug=slug,
        memberships__user=user,
        memberships__role=Role.TENANT_ADMIN,
        is_active=True,
    ).first()
    if tenant is None or not user.is_active:
        raise Http404("No such hospital.")
    return tenant


@login_required
@require_GET
def settings_index(request: HttpRequest) -> HttpResponse:
    tenants = Tenant.objects.filter(
        id__in=Membership.objects.filter(user=_me(request), role=Role.TENANT_ADMIN).values(
            "tenant_id"
        )
    ).order_by("name")
    if not tenants:
        raise Http404("You administer no hospital.")
    if len(tenants) == 1:
        return HttpResponseRedirect(reverse("reports:delivery:settings", args=[tenants[0].slug]))
    return render(request, "reports/delivery/settings_index.html", {"tenants": tenants})


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    user = _me(request)
    tenant = _administered(user, slug)
    instance = DeliverySettings.objects.filter(tenant=tenant).first() or DeliverySettings(
        tenant=tenant
    )
    form = SettingsForm(
        request.POST or None, request.FILES or None, instance=instance, tenant=tenant
    )
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if form.cleaned_data.get("remove_logo"):
            saved.logo = None
        elif form.cleaned_data.get("logo_file"):
            saved.logo = form.cleaned_data["logo_file"]
        saved.updated_at, saved.updated_by = timezone.now(), user
        saved.save()
        audit.record(
            action=AuditAction.SETTINGS_CHANGE,
            actor=audit.Actor.for_user(user, address=request.META.get("REMOTE_ADDR")),
            tenant=tenant,
            # Field names only: the webhook secret is never written to the log.
            detail={"settings": "delivery", "fields": sorted(form.changed_data)},
        )
        messages.success(
            request, "Delivery settings saved; they apply to reports signed from now on."
        )
        return HttpResponseRedirect(reverse("reports:delivery:settings", args=[tenant.slug]))
    return render(
        request,
        "reports/delivery/settings.html",
        {"form": form, "tenant": tenant, "has_logo": bool(instance.logo)},
        status=400 if request.method == "POST" else 200,
    )
