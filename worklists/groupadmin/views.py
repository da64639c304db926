"""Pages: a hospital's agreements with reading groups (its admins), and a reading group's
overview, credentials, shifts and agreements (its group admins). Anyone else: "not found"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from tenants import audit
from tenants.models import ReadingAgreement
from tenants.onboarding.access import group_for_admin, hospital_for_admin

from ..services import priorities_of
from . import agreements, credentials, shifts
from .access import radiologists


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(request.user, address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The hospital's side
# ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def hospital_agreements(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = hospital_for_admin(request.user, tenant_slug)
    editing = ReadingAgreement.objects.filter(
        tenant=tenant, group__slug=request.GET.get("edit", "")
    ).first()
    initial = agreements.initial_of(editing) if editing else None
    form = agreements.AgreementForm(tenant=tenant, initial=initial)
    status = 200
    if request.method == "POST":
        if request.POST.get("action") == "end":
            agreement_id = _int(request.POST.get("agreement"))
            try:
                ended = agreements.end_agreement(
                    tenant=tenant, actor=_actor(request), agreement_id=agreement_id or 0
                )
            except ReadingAgreement.DoesNotExist:
                raise Http404("No such agreement.") from None
            messages.success(request, f"The agreement with {ended.group.name} has ended.")
            return redirect("groupadmin:hospital-agreements", tenant_slug=tenant.slug)
        form = agreements.AgreementForm(request.POST, tenant=tenant)
        if form.is_valid():
            saved = agreements.save_agreement(
                tenant=tenant, actor=_actor(request), data=form.cleaned_data
            )
            what = "saved" if saved.changed else "unchanged"
            messages.success(request, f"Agreement with {saved.agreement.group.name} {what}.")
            return redirect("groupadmin:hospital-agreements", tenant_slug=tenant.slug)
        status = 400
    rows = agreements.agreements_of_tenant(tenant)
    return render(
        request,
        "groupadmin/hospital_agreements.html",
        {"tenant": tenant, "form": form, "rows": _agreement_rows(rows, form.classes)},
        status=status,
    )


def _agreement_rows(rows: list[ReadingAgreement], classes: list[Any]) -> list[dict[str, Any]]:
    today = timezone.localdate()
    out = []
    for a in rows:
        terms = getattr(a, "terms", None)  # a missing reverse one-to-one is an AttributeError
        sla = terms.sla_minutes if terms else {}
        covered = a.priority_codes or [p.code for p in classes]
        out.append(
            {
                "agreement": a,
                "terms": terms,
                "in_force": agreements.in_force(a, today),
                "sla": [
                    (p.name, sla.get(p.code, p.sla_minutes), p.code in sla)
                    for p in classes
                    if p.code in covered
                ],
            }
        )
    return out


# ---------------------------------------------------------------------------------------------
# The group's side
# ---------------------------------------------------------------------------------------------


@login_required
def home(request: HttpRequest, group_slug: str) -> HttpResponse:
    group = group_for_admin(request.user, group_slug)
    now = timezone.now()
    today = timezone.localdate(now)
    hospitals = [a for a in agreements.agreements_of_group(group) if agreements.in_force(a, today)]
    return render(
        request,
        "groupadmin/home.html",
        {
            "group": group,
            "hospitals": hospitals,
            "members": len(radiologists(group)),
            "on_shift": shifts.on_shift(group, now),
            "expiring": [
                (c, credentials.status_of(c, today)) for c in credentials.expiring(group, today)
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def group_credentials(request: HttpRequest, group_slug: str) -> HttpResponse:
    group = group_for_admin(request.user, group_slug)
    today = timezone.localdate()
    forms_: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        kind, _, verb = action.partition("-")
        if kind not in ("licence", "privilege") or verb not in ("save", "end"):
            return HttpResponse("Unknown action.", status=400)
        obj = None
        if request.POST.get("id"):
            obj = credentials.manageable(group, kind).filter(pk=_int(request.POST["id"])).first()
            if obj is None:
                raise Http404(f"No such {kind}.")
        if verb == "end":
            if obj is None:
                return HttpResponse(f"Name the {kind} to end.", status=400)
            credentials.end(obj=obj, kind=kind, actor=_actor(request), today=today)
            messages.success(request, f"The {kind} of {obj.user} has ended.")
            return redirect("groupadmin:credentials", group_slug=group.slug)
        form_class: Any = (
            credentials.LicenceForm if kind == "licence" else credentials.PrivilegeForm
        )
        form = form_class(request.POST, group=group, today=today, instance=obj)
        if form.is_valid():
            credentials.save(form=form, actor=_actor(request), granted_by=request.user)  # type: ignore[arg-type]
            messages.success(request, f"The {kind} is saved.")
            return redirect("groupadmin:credentials", group_slug=group.slug)
        forms_[kind] = form
        status = 400
    edit_kind, _, edit_id = request.GET.get("edit", "").partition("-")
    for kind, form_class in (
        ("licence", credentials.LicenceForm),
        ("privilege", credentials.PrivilegeForm),
    ):
        if kind in forms_:
            continue
        obj = None
        if edit_kind == kind:
            obj = credentials.manageable(group, kind).filter(pk=_int(edit_id)).first()
        initial = credentials.initial_of(obj) if obj else None
        forms_[kind] = form_class(group=group, today=today, instance=obj, initial=initial)
    # Two queries for every member's credentials, however many members.
    held: dict[int, list[Any]] = {}
    for kind in ("licence", "privilege"):
        qs = credentials.manageable(group, kind).order_by("valid_from", "id")
        if kind == "privilege":
            qs = qs.select_related("tenant")
        for c in qs:
            held.setdefault(c.user_id, []).append((kind, c, credentials.status_of(c, today)))
    members = [(user, held.get(user.pk, [])) for user in radiologists(group)]
    return render(
        request,
        "groupadmin/credentials.html",
        {"group": group, "members": members, "forms": forms_},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def group_shifts(request: HttpRequest, group_slug: str) -> HttpResponse:
    group = group_for_admin(request.user, group_slug)
    form = shifts.ShiftForm(group=group)
    status = 200
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            if not shifts.remove(
                group=group, shift_id=_int(request.POST.get("shift")) or 0, actor=_actor(request)
            ):
                raise Http404("No such shift.")
            messages.success(request, "Shift removed.")
            return redirect("groupadmin:shifts", group_slug=group.slug)
        form = shifts.ShiftForm(request.POST, group=group)
        if form.is_valid():
            shifts.add(group=group, data=form.cleaned_data, actor=_actor(request))
            messages.success(request, "Shift added.")
            return redirect("groupadmin:shifts", group_slug=group.slug)
        status = 400
    now = timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week = shifts.roster(group, start, days=7)
    return render(
        request,
        "groupadmin/shifts.html",
        {
            "group": group,
            "form": form,
            "now": now,
            "on_shift": shifts.on_shift(group, now),
            "today": [s for s in week if s.starts_at < start + timedelta(days=1)],
            "week": week,
        },
        status=status,
    )


@login_required
def group_agreements(request: HttpRequest, group_slug: str) -> HttpResponse:
    group = group_for_admin(request.user, group_slug)
    today = timezone.localdate()
    rows = []
    for a in agreements.agreements_of_group(group):
        rows.append(
            {
                **_agreement_rows([a], priorities_of(a.tenant))[0],
                "in_force": agreements.in_force(a, today),
            }
        )
    return render(request, "groupadmin/agreements.html", {"group": group, "rows": rows})
