"""Usage and health pages: a hospital's, a reading group's, and the platform's.

Who may look is decided once at the top of each view; anyone else gets 404 (the page of a
hospital or group they do not administer does not exist for them). The figures come from
figures.py in a fixed number of queries whatever the number of hospitals. Each view is audited
``usage.view`` with the period asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from tenants import audit
from tenants.models import AuditAction, Membership, ReadingAgreement, ReadingGroup, Tenant
from tenants.onboarding.access import group_for_admin, hospital_for_admin

from . import figures
from .figures import Durations, Period
from .forms import PeriodForm


def _actor(request: HttpRequest) -> audit.Actor:
    user = request.user  # signed in: the views are login_required
    return audit.Actor.for_user(user, address=request.META.get("REMOTE_ADDR"))  # type: ignore[arg-type]


@dataclass
class HospitalFigures:
    """One hospital's figures for the period, ready for the templates."""

    tenant: Tenant
    days: list[figures.Day] = field(default_factory=list)
    stored: figures.Stored = field(default_factory=figures.Stored)
    lag: Durations = field(default_factory=Durations)
    rejections: list[figures.Rejection] = field(default_factory=list)
    turnaround: list[figures.Turnaround] = field(default_factory=list)

    @property
    def studies(self) -> int:
        return sum(d.studies for d in self.days)

    @property
    def instances(self) -> int:
        return sum(d.instances for d in self.days)

    @property
    def rejected(self) -> int:
        return sum(r.count for r in self.rejections)

    @property
    def read(self) -> int:
        return sum(t.times.count for t in self.turnaround)

    @property
    def chart_width(self) -> int:
        return len(self.days) * 10

    @property
    def study_bars(self) -> list[figures.Bar]:
        return figures.bars((d.day.isoformat(), d.studies) for d in self.days)

    @property
    def instance_bars(self) -> list[figures.Bar]:
        return figures.bars((d.day.isoformat(), d.instances) for d in self.days)


def hospital_figures(
    tenants: list[Tenant], period: Period, *, unknown_called_ae: bool = False
) -> tuple[list[HospitalFigures], list[figures.Rejection]]:
    """Every figure for these hospitals (six queries), and the rejections that named no
    hospital when ``unknown_called_ae``."""
    ids = [t.pk for t in tenants]
    days = figures.daily(ids, period)
    stored = figures.stored_bytes(ids)
    lag = figures.ingest_lag(ids, period)
    rejections = figures.rejections(ids, period, unknown_called_ae=unknown_called_ae)
    turnaround = figures.turnaround(ids, period)
    result = [
        HospitalFigures(
            tenant=t,
            days=days[t.pk],
            stored=stored[t.pk],
            lag=lag[t.pk],
            rejections=[r for r in rejections if r.tenant_id == t.pk],
            turnaround=[r for r in turnaround if r.tenant_id == t.pk],
        )
        for t in tenants
    ]
    return result, [r for r in rejections if r.tenant_id is None]


def _page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    figures_for: Callable[[Period], dict[str, Any]],
) -> HttpResponse:
    """Check the period; with a bad one, the page with the form's errors, no figures and
    nothing audited (400); else the page with what ``figures_for(period)`` computed."""
    form = PeriodForm(request.GET, today=timezone.localdate())
    context = {**context, "form": form}
    if not form.is_valid():
        return render(request, template, {**context, "figures_shown": False}, status=400)
    period = form.period()
    context.update(figures_for(period), period=period, figures_shown=True)
    return render(request, template, context)


def _audit(
    request: HttpRequest, tenants: list[Tenant | None], period: Period, page: str, **extra: Any
) -> None:
    actor = _actor(request)
    detail = {"page": page, "start": period.start.isoformat(), "end": period.end.isoformat()}
    detail.update(extra)
    audit.record_many(
        audit.build(action=AuditAction.USAGE_VIEW, actor=actor, tenant=t, detail=detail)
        for t in tenants
    )


def _administered(request: HttpRequest, kind: str, slug: str) -> Any:
    """The hospital (``kind`` "tenant") or reading group ("group") the user administers under
    this slug, or 404: missing and not theirs are the same answer."""
    if kind == "tenant":
        return hospital_for_admin(request.user, slug)
    return group_for_admin(request.user, slug)


def _tenant_figures(request: HttpRequest, tenant: Tenant, period: Period) -> dict[str, Any]:
    (hospital,), _ = hospital_figures([tenant], period)
    _audit(request, [tenant], period, "tenant")
    return {"hospital": hospital}


@dataclass
class GroupRow:
    tenant: Tenant
    turnaround: list[figures.Turnaround]

    @property
    def read(self) -> int:
        return sum(t.times.count for t in self.turnaround)


def _group_figures(request: HttpRequest, group: ReadingGroup, period: Period) -> dict[str, Any]:
    """The hospitals the group reads for, and the work its own members read there."""
    tenants = [
        a.tenant
        for a in ReadingAgreement.objects.filter(group=group, is_active=True)
        .select_related("tenant")
        .order_by("tenant__name")
    ]
    readers = Membership.objects.filter(group=group).values("user_id")
    turnaround = figures.turnaround([t.pk for t in tenants], period, read_by=readers)
    rows = [
        GroupRow(tenant=t, turnaround=[r for r in turnaround if r.tenant_id == t.pk])
        for t in tenants
    ]
    _audit(request, list(tenants), period, "group", group=group.slug)
    return {"rows": rows}


def _admin_page(
    kind: str, template: str, figures_of: Callable[..., dict[str, Any]]
) -> Callable[..., HttpResponse]:
    """The page of a hospital or group for its admins: ``figures_of(request, obj, period)``."""

    @login_required
    @require_GET
    def view(request: HttpRequest, **slugs: str) -> HttpResponse:
        administered = _administered(request, kind, slugs[f"{kind}_slug"])
        figures_for = functools.partial(figures_of, request, administered)
        return _page(request, template, {kind: administered}, figures_for)

    return view


tenant_usage = _admin_page("tenant", "usage/tenant.html", _tenant_figures)
group_usage = _admin_page("group", "usage/group.html", _group_figures)


@dataclass
class Totals:
    """The platform's sums over its hospitals (and the rejections that named none)."""

    hospitals: list[HospitalFigures]
    unknown: list[figures.Rejection]

    def _sum(self, each: Any) -> int:
        return sum(each(h) for h in self.hospitals)

    @property
    def studies(self) -> int:
        return self._sum(lambda h: h.studies)

    @property
    def instances(self) -> int:
        return self._sum(lambda h: h.instances)

    @property
    def stored(self) -> str:
        return figures.human_bytes(self._sum(lambda h: h.stored.total))

    @property
    def rejected(self) -> int:
        return self._sum(lambda h: h.rejected) + sum(r.count for r in self.unknown)

    @property
    def read(self) -> int:
        return self._sum(lambda h: h.read)


@login_required
@require_GET
def platform_usage(request: HttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        raise Http404

    def figures_for(period: Period) -> dict[str, Any]:
        tenants = list(Tenant.objects.order_by("name"))
        hospitals, unknown = hospital_figures(tenants, period, unknown_called_ae=True)
        _audit(request, [None], period, "platform")
        return {
            "hospitals": hospitals,
            "unknown": unknown,
            "totals": Totals(hospitals=hospitals, unknown=unknown),
        }

    return _page(request, "usage/platform.html", {}, figures_for)
